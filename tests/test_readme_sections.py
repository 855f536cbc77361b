"""The README keeps the sections a stranger needs. A bad edit once cut five of them (Command line, Training, Models,
Where data lives, Benchmarks) and every other test stayed green."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
SECTIONS = [
    "Install", "Set up (one command)", "Run the tests", "Using the app", "Command line", "Training and evaluation",
    "Models", "Where data lives", "Benchmarks", "Building the installers", "Layout",
]


def test_the_readme_has_every_top_level_section_in_order():
    headings = re.findall(r"^## (.+)$", README.read_text(encoding="utf-8"), flags=re.M)
    assert [h for h in headings if h in SECTIONS] == SECTIONS


def test_every_benchmark_script_the_readme_names_exists():
    named = set(re.findall(r"benchmarks/(\w+\.py)", README.read_text(encoding="utf-8")))
    assert named and all((README.parent / "benchmarks" / name).is_file() for name in named), named
