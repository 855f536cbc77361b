"""What the installers' portable hnswlib costs: the bundle's build (compiled without -march=native, so no AVX) against
the developer's native build, on the same vectors in the same run, one thread.

The two builds live in different environments, so each is timed in its own interpreter running the same snippet:
native = the Python running this script (the dev venv's hnswlib, built by pip with -march=native); portable = the
installer's build venv (``installer/build.py`` makes it; ``--portable-python`` picks another). Each child reports
whether its hnswlib library contains AVX (VEX) instructions, so a mix-up shows. Reported per build: index build
rate (vectors/s), query p50 latency (k=10, ef=128), and the ratios portable/native.

Usage: python benchmarks/bench_hnswlib_portable.py [--n 20000] [--dim 768] [--queries 500] [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "installer"))
import bundle_checks  # noqa: E402

CHILD = r"""
import json, sys, time
import numpy as np
import hnswlib
n, dim, queries = (int(v) for v in sys.argv[1:4])
rng = np.random.default_rng(0)
data = rng.standard_normal((n, dim), dtype=np.float32)
data /= np.linalg.norm(data, axis=1, keepdims=True)
probe = rng.standard_normal((queries, dim), dtype=np.float32)
index = hnswlib.Index(space="ip", dim=dim)
index.init_index(max_elements=n, M=16, ef_construction=200)
index.set_num_threads(1)
started = time.perf_counter()
index.add_items(data, np.arange(n), num_threads=1)
build_s = time.perf_counter() - started
index.set_ef(128)
latencies = []
for q in probe:
    started = time.perf_counter()
    index.knn_query(q, k=10, num_threads=1)
    latencies.append(time.perf_counter() - started)
print(json.dumps({"library": hnswlib.__file__, "build_rate": n / build_s,
                  "p50_ms": 1000 * float(np.median(latencies))}))
"""


def measure(python: str, n: int, dim: int, queries: int) -> dict:
    done = subprocess.run([python, "-c", CHILD, str(n), str(dim), str(queries)], capture_output=True, text=True,
                          check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["avx"] = bundle_checks.vex_instruction_count(Path(result["library"]))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, help="vectors (default 20,000; --quick 2,000)")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, help="queries timed (default 500; --quick 100)")
    parser.add_argument("--quick", action="store_true", help="fewer vectors and queries")
    parser.add_argument("--portable-python", help="a Python whose hnswlib is the portable build")
    args = parser.parse_args()
    args.n = args.n or (2000 if args.quick else 20000)
    args.queries = args.queries or (100 if args.quick else 500)
    portable = args.portable_python or next(iter(sorted(REPO.glob(".installer-cache/venv-*/bin/python"))), None)
    if portable is None:
        print("no build venv: run python installer/build.py first, or pass --portable-python", file=sys.stderr)
        return 2
    rows = {"native": measure(sys.executable, args.n, args.dim, args.queries),
            "portable": measure(str(portable), args.n, args.dim, args.queries)}
    print(f"{args.n:,} x {args.dim} vectors, ip, M=16, ef_construction=200; {args.queries} queries, k=10, ef=128; "
          "one thread")
    print(f"{'build':10} {'AVX instr.':>10} {'build vec/s':>12} {'query p50 ms':>13}")
    for name, row in rows.items():
        avx = "?" if row["avx"] is None else f"{row['avx']:,}"
        print(f"{name:10} {avx:>10} {row['build_rate']:12,.0f} {row['p50_ms']:13.3f}")
    native, port = rows["native"], rows["portable"]
    print(f"portable / native: build {native['build_rate'] / port['build_rate']:.2f}x slower, "
          f"query {port['p50_ms'] / native['p50_ms']:.2f}x slower")
    return 0


if __name__ == "__main__":
    sys.exit(main())
