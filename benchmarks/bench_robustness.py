"""Robustness costs, each beside a baseline measured in the same run:

1. indexing throughput (photos/s, the whole pipeline: scan, facts, isolated decode, model, catalog commits) on a
   folder where a quarter of the files are hostile (tests/faults/hostile_files.py: truncated, empty, bomb, CMYK,
   16-bit, 10,000 frames, ...) against the same number of clean photos;
2. peak memory of decoding the 200-megapixel JPEG (ours: draft decode) against a plain full Pillow decode of it,
   and of the decompression bomb (refused at its header) against a clean 12-megapixel photo, each in a child process;
3. the cost of decoder isolation: photos/s of the Embedder with photo decoding in worker processes against decoding
   in its own threads, on the same clean photos (alternating runs, best of each);
4. time to recover from each store kill point, from benchmarks/robustness_recovery.py when it is present.

The model is a tiny random SigLIP at the production input size (224 px), so the figures are about decoding and
bookkeeping, not the network. Usage:
    python benchmarks/bench_robustness.py [--quick] [--photos N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from _common import ROOT, print_table
from PIL import Image

# A child's ru_maxrss starts at its parent's peak on Linux (kept across fork and exec), so a child that decodes
# less than the parent once held would show no growth; the kernel's VmHWM is per address space and starts afresh.
PEAK_RSS_SOURCE = (
    "def peak_rss_mb():\n"
    "    try:\n"
    "        with open('/proc/self/status') as status:\n"
    "            return next(int(l.split()[1]) for l in status if l.startswith('VmHWM:')) / 1024\n"
    "    except (OSError, StopIteration):\n"
    "        import resource\n"
    "        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "        return peak / 2**20 if sys.platform == 'darwin' else peak / 1024\n"
)
CLEAN_SIZE = (2048, 1536)  # 3 MP: a phone photo's decode cost at 1/8 draft without a minute of set-up


def make_model(folder: Path) -> Path:
    from vsearch_app.training.tiny_models import make_tiny_siglip

    return make_tiny_siglip(folder, image_size=224, patch_size=32, hidden=32, layers=2)


def make_clean_photos(folder: Path, count: int, size: tuple[int, int] = CLEAN_SIZE) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size[1] // 16, size[0] // 16, 3), dtype=np.uint8)
    paths = []
    for i in range(count):
        # Smooth content (an upscaled noise field, shifted per photo) encodes like a photo, not like noise.
        tile = np.roll(base, i * 7, axis=1)
        image = Image.fromarray(tile).resize(size, Image.Resampling.BILINEAR)
        path = folder / f"IMG_{i:04d}.jpg"
        image.save(path, quality=88)
        paths.append(path)
    return paths


def index_rate(folder: Path, model: Path, data_dir: Path, warm_up: Path) -> tuple[float, int, int]:
    """(files/s, embedded, failed) for a first index of ``folder`` with the app's library. The embedder decodes
    ``warm_up`` first, so torch's first call and the decoder workers' start are not timed."""
    from vsearch_app.core.engine.embedder import Embedder
    from vsearch_app.core.library.library import Library

    embedder = Embedder.load(model, device="cpu", dtype="float32", model_id="bench", isolate_decoding=True)
    embedder.embed_images([str(warm_up)] * 2)
    library = Library(data_dir, model_id="bench", embedder_factory=lambda: embedder)
    try:
        library.add_folder(folder)
        started = time.perf_counter()
        report = library.index()
        seconds = time.perf_counter() - started
    finally:
        library.close()
    return (report.embedded + report.failed) / seconds, report.embedded, report.failed


def embed_rate(paths: list[Path], model: Path, isolate: bool, repeats: int) -> tuple[float, float]:
    """(best photos/s, least CPU ms per photo) of ``repeats`` runs of Embedder.embed_images over ``paths``, workers
    started beforehand. CPU time is this process's plus the decoder workers' (Linux; NaN elsewhere): on a shared
    machine it moves less than wall time, and it shows what isolation costs in work, not only in waiting."""
    from vsearch_app.core.engine.embedder import Embedder

    embedder = Embedder.load(model, device="cpu", dtype="float32", model_id="bench", isolate_decoding=isolate)
    try:
        embedder.embed_images([str(p) for p in paths[:4]])  # warm-up: torch, and the decoder workers
        best, least_cpu = 0.0, float("inf")
        for _ in range(repeats):
            cpu_before = _cpu_seconds(embedder)
            started = time.perf_counter()
            result = embedder.embed_images([str(p) for p in paths])
            best = max(best, len(result.indices) / (time.perf_counter() - started))
            least_cpu = min(least_cpu, (_cpu_seconds(embedder) - cpu_before) * 1000 / len(paths))
            assert not result.failures, result.failures
        return best, least_cpu
    finally:
        embedder.close()


def _cpu_seconds(embedder) -> float:
    """CPU seconds used so far by this process and the embedder's decoder workers."""
    total = time.process_time()
    if embedder.decoder is not None:
        for pid in embedder.decoder.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return float("nan")
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return total


def peak_rss_growth_mb(path: Path, how: str) -> tuple[float, str]:
    """Peak resident memory growth of decoding ``path`` in a fresh process: "ours" (open_image at 224 px) or
    "full" (Image.open + load with no pixel limit, as a plain script would). Returns (MB, outcome)."""
    script = "import sys\n" + PEAK_RSS_SOURCE + textwrap.dedent(f"""
        sys.path.insert(0, {str(ROOT)!r})
        from PIL import Image
        from vsearch_app.preprocessing.image import open_image
        from vsearch_app.errors import ImageDecodeError
        before = peak_rss_mb()
        try:
            if {how!r} == "ours":
                image = open_image({str(path)!r}, target_size=(224, 224))
            else:
                Image.MAX_IMAGE_PIXELS = None
                image = Image.open({str(path)!r})
                image.load()
            outcome = "%dx%d" % image.size
        except ImageDecodeError as exc:
            outcome = "refused: " + exc.reason
        except MemoryError:
            outcome = "MemoryError"
        print(peak_rss_mb() - before, "|", outcome)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        return float("nan"), f"exit {out.returncode}: {out.stderr.strip().splitlines()[-1:]}"
    mb, outcome = out.stdout.strip().split("|", 1)
    return float(mb), outcome.strip()


def recovery_rows() -> list[list[str]] | str:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        from robustness_recovery import recovery_times
    except ImportError:
        return "kill-point recovery: see benchmarks/robustness_recovery.py (not in this checkout)"
    return [[name, f"{seconds:.2f}"] for name, seconds in recovery_times()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=96, help="clean photos (the hostile mix adds a third more)")
    parser.add_argument("--quick", action="store_true", help="few photos and small images (a smoke run)")
    args = parser.parse_args()
    from tests.faults.hostile_files import write_big_jpeg, write_hostile_folder

    photos = 12 if args.quick else args.photos
    size = (640, 480) if args.quick else CLEAN_SIZE
    repeats = 1 if args.quick else 5
    work = Path(tempfile.mkdtemp(prefix="vsearch-bench-robustness-"))
    if hasattr(os, "getloadavg"):
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    try:
        print(f"preparing {photos} clean photos of {size[0]}x{size[1]}, the hostile files and the 200 MP JPEG ...",
              flush=True)
        model = make_model(work / "model")
        clean = make_clean_photos(work / "clean", photos, size)
        big = write_big_jpeg(work / "panorama-200mp.jpg")

        # 1. Hostile mix against clean, same number of clean photos in both.
        mixed = work / "mixed"
        shutil.copytree(work / "clean", mixed)
        cases = write_hostile_folder(mixed / "hostile", work / "outside", big_jpeg=big)
        hostile = sum(1 for c in cases if c.state is not None)
        best = {"clean": (0.0, 0, 0), "mixed": (0.0, 0, 0)}
        folders = {"clean": work / "clean", "mixed": mixed}
        for round_ in range(repeats):  # alternating which goes first, best of each: the machine's speed drifts
            for name in (("clean", "mixed") if round_ % 2 == 0 else ("mixed", "clean")):
                result = index_rate(folders[name], model, work / f"data-{name}-{round_}", clean[0])
                best[name] = max(best[name], result)
        (clean_rate, clean_ok, _), (mixed_rate, mixed_ok, mixed_failed) = best["clean"], best["mixed"]
        print_table(f"1. Indexing throughput (whole pipeline, first index of the folder, best of {repeats})",
                    ["folder", "files", "indexed", "failed", "files/s"],
                    [["clean photos", str(photos), str(clean_ok), "0", f"{clean_rate:.1f}"],
                     [f"clean + {hostile} hostile", str(photos + hostile), str(mixed_ok), str(mixed_failed),
                      f"{mixed_rate:.1f}"]])
        print(f"hostile mix / clean: {mixed_rate / clean_rate:.2f}x")

        # 2. Peak memory, each in a child process.
        bomb = work / "bomb.png"
        from tests.faults.hostile_files import bomb_png

        bomb.write_bytes(bomb_png())
        twelve = make_clean_photos(work / "twelve", 1, (4000, 3000))[0]
        rows = []
        figures = {}
        for label, path, how in [("200 MP JPEG, ours (draft)", big, "ours"),
                                 ("200 MP JPEG, full Pillow decode", big, "full"),
                                 ("bomb PNG (10 gigapixels claimed), ours", bomb, "ours"),
                                 ("12 MP JPEG, ours", twelve, "ours")]:
            mb, outcome = peak_rss_growth_mb(path, how)
            figures[label] = mb
            rows.append([label, f"{mb:.0f}", outcome])
        print_table("2. Peak memory growth of one decode (child process)", ["file", "MB", "outcome"], rows)
        full, ours = figures["200 MP JPEG, full Pillow decode"], figures["200 MP JPEG, ours (draft)"]
        print(f"200 MP: full decode / ours: {full / max(ours, 1):.1f}x")

        # 3. Isolation cost, alternating so drift hits both.
        rates = {False: (0.0, float("inf")), True: (0.0, float("inf"))}
        for _ in range(2):
            for isolate in (False, True):
                rate, cpu = embed_rate(clean, model, isolate=isolate, repeats=repeats)
                rates[isolate] = (max(rates[isolate][0], rate), min(rates[isolate][1], cpu))
        (in_process, in_process_cpu), (isolated, isolated_cpu) = rates[False], rates[True]
        print_table("3. Decoder isolation (Embedder.embed_images on the clean photos, best run)",
                    ["decoding", "photos/s", "CPU ms/photo"],
                    [["in-process threads (2)", f"{in_process:.1f}", f"{in_process_cpu:.1f}"],
                     ["worker processes (2)", f"{isolated:.1f}", f"{isolated_cpu:.1f}"]])
        print(f"isolated / in-process: {isolated / in_process:.2f}x photos/s, "
              f"{isolated_cpu / in_process_cpu:.2f}x CPU per photo")

        # 4. Store kill points.
        recovery = recovery_rows()
        if isinstance(recovery, str):
            print(f"\n4. {recovery}")
        else:
            print_table("4. Recovery after a SIGKILL at each store kill point", ["kill point", "seconds"], recovery)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
