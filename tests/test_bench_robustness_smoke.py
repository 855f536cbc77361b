"""bench_robustness.py runs end to end in its quick mode and prints each figure beside its baseline."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_robustness_quick_prints_every_section():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_robustness.py"), "--quick"],
                            capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert re.search(r"hostile mix / clean: \d+\.\d+x", out)
    assert re.search(r"^200 MP JPEG, ours \(draft\)\s+\d+\s+2500x1250", out, re.M)
    assert re.search(r"^bomb PNG .*refused: image too large", out, re.M)
    assert re.search(r"isolated / in-process: \d+\.\d+x photos/s, \d+\.\d+x CPU per photo", out)
    assert "kill-point recovery" in out or "4. Recovery after a SIGKILL" in out
