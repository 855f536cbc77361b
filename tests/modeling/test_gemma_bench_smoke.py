"""Smoke run of benchmarks/bench_caption.py --quick: the benchmark keeps working and its engines agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_caption_benchmark_runs_and_tokens_agree():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_caption.py"), "--quick", "--tokens", "6",
         "--uncached-tokens", "3"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "decode speed-up ours / transformers" in out and "ceiling" in out
    assert "identical greedy tokens (6): True" in out
    assert "cache-disabled run agrees on its 3: True" in out
