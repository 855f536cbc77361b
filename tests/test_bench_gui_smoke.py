"""bench_gui.py runs end to end in its quick mode and prints its three tables (no timing is asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_gui_quick_prints_startup_latency_and_stalls(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TMPDIR": str(tmp_path)}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gui.py"), "--quick"],
                            capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert re.search(r"^bare PySide6 window\s+\d+\.\d\d\s", out, re.M), out
    assert re.search(r"^VSearch window \(python -m vsearch_app\)\s+\d+\.\d\d\s.*\d+\.\d\dx$", out, re.M), out
    assert re.search(r"^GUI, stub library of 10,000 photos \(all returned\)\s+\d+\s", out, re.M), out
    assert re.search(r"^GUI, real library of 40 photos \(tiny model\)\s+\d+\s", out, re.M), out
    assert re.search(r"^CLI `vsearch search Q --json`, same library .*\s+\d+\s", out, re.M), out
    assert re.search(r"^indexing 40 photos \(tiny model\)\s+\d+\s+\d+\s+\d+\s", out, re.M), out
    assert not list(tmp_path.glob("bench-gui-*"))  # the temporary library is removed
