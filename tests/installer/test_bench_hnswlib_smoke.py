"""benchmarks/bench_hnswlib_portable.py runs end to end and prints both builds and the ratio (here both sides are the
dev venv's hnswlib, so it needs no build venv; the figures themselves are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_hnswlib_portable_prints_both_builds_and_the_ratio():
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_hnswlib_portable.py"), "--quick",
                           "--n", "300", "--queries", "20", "--portable-python", sys.executable],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("300 x 768 vectors")
    assert [line.split()[0] for line in lines[2:4]] == ["native", "portable"]
    assert lines[-1].startswith("portable / native: build ")
