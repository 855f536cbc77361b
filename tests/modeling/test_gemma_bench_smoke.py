"""Smoke run of benchmarks/bench_caption.py --quick: the benchmark keeps working and its engines agree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_caption_benchmark_runs_and_tokens_agree():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_caption.py"), "--quick", "--tokens", "6",
         "--uncached-tokens", "3", "--cold-runs", "1", "--gui-runs", "1"],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "decode speed-up ours / transformers" in out and "ceiling" in out
    assert "identical greedy tokens (6): True" in out
    assert "cache-disabled run agrees on its 3: True" in out
    # Cold start: all three engines were started from outside and produced a first token.
    for engine in ("ours: vsearch caption", "ours, packed at load (before)", "transformers"):
        assert re.search(rf"^{re.escape(engine)} +\d+\.\d+ +\d+\.\d+", out, re.M), engine
    assert "cold TTFT ours / transformers:" in out
    # The GUI path streamed every token asked for, as the engine did, through the queued signal.
    gui = re.search(r"^GUI: LibraryService.caption on a QThread, queued +[\d.]+ +[\d.]+ +[\d.]+ +(\d+)$", out, re.M)
    engine = re.search(r"^engine: Captioner.caption on a thread +[\d.]+ +[\d.]+ +[\d.]+ +(\d+)$", out, re.M)
    assert gui and engine and gui.group(1) == engine.group(1) == "6", out[-1500:]
    assert "GUI path cost:" in out
