"""bench_library.py runs end to end in its quick mode and prints hnswlib beside exact search, with the ratio."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_library_quick_prints_both_methods_and_a_ratio():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_library.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "clusters in a 64-d subspace" in out and "text-like" in out  # says how vectors and queries were made
    assert re.search(r"^5,000\s+exact numpy\s+-\s+1\.000\s+1\.000\s+\d", out, re.M)
    # params, recall image / text, p50 image / text, p95, ratio
    numbers = r"\s+M=\d+ efc=\d+\s+(\d\.\d{3})\s+(\d\.\d{3})\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+x"
    plain_row = r"^5,000\s+hnswlib alone ef=\d+" + numbers
    assert re.search(plain_row, out, re.M), out
    # the app's own search path (VectorIndex.search), with per-kind recall and p50
    app_row = r"^5,000\s+app search \(ef=\d+[^)]*\)" + numbers
    row = re.search(app_row, out, re.M)
    assert row, out
    assert float(row.group(1)) > 0.5 and float(row.group(2)) > 0.5  # recall@10 is measured, not a placeholder
    assert re.search(r"ratio exact/ours: [\d.]+x", out)
    # filtered search (1 % camera filter): the app's path is exact below its crossover, so its recall is 1
    filtered = re.search(r"^5,000\s+1% \(50\)\s+app \(exact from the catalog\)\s+(\d\.\d{3})\s+[\d.]+\s+[\d.]+", out,
                         re.M)
    assert filtered and float(filtered.group(1)) == 1.0, out
    after = re.search(r"^5,000\s+1% \(50\)\s+filter after the top 10\s+(\d\.\d{3})", out, re.M)
    assert after and float(after.group(1)) < 0.5  # what filtering the results instead would get
