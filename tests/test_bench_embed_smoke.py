"""bench_embed.py runs end to end in its quick mode and prints both pipelines and their ratio."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_embed_quick_prints_a_ratio():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_embed.py"), "--quick"],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"^reference\s+float32\s+\d", result.stdout, re.M)
    assert re.search(r"^ours\s+\w+\s+\d", result.stdout, re.M)
    assert re.search(r"ratio ours/reference: \d+\.\d+x", result.stdout)
