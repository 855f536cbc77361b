"""bench_caption_fusion.py runs end to end in its quick mode: Recall@1 off and on, latency with and without fusion."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_caption_fusion_quick_prints_recall_off_and_on_and_a_latency_ratio():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_caption_fusion.py"), "--quick"],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "5,000 photos" in out and "250 captioned (5.0%), 40 of them with a made-up name" in out
    off = re.search(r"^0 \(off\)\s+(\d\.\d{3})", out, re.M)
    on = re.search(r"^1 \(default\)\s+(\d\.\d{3})", out, re.M)
    assert off and on, out
    assert float(off.group(1)) <= 0.05 and float(on.group(1)) == 1.0  # measured: chance, then every name found
    for label in ("name queries", "everyday-word queries"):
        assert re.search(rf"^{label}\s+[\d.]+\s+[\d.]+\s+[\d.]+x", out, re.M), out
