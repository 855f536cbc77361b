"""How long VSearch takes to be usable again after a crash at each store fault point, and what the catalog backup
costs.

Recovery: for every point of vsearch_app/core/store/fault_points.py, a library of ``--photos`` photos (indexed once,
then as many new photos added) is indexed by a child process that is SIGKILLed at that point; then the time from
restart to a usable library is measured in this process: open the library (catalog checks, migration, recovery),
open its vector index (load and catch up, or rebuild) and answer one search. The baseline is the same restart after
a clean exit, measured in the same run; the ratio is restart-after-kill / clean restart. A last row restarts with a
truncated catalog (restored from its backup). The embedder is the tests' content hash (tests/faults/harness.py), so
the figures are the store's own work, not a model's.

Backup cost (``--backup-photos N``, 0 to skip): a catalog of N photos with 768-d vectors is built once (cached under
.bench_cache/robustness_recovery/), then ``catalog_backup.write_backup`` is timed against a plain file copy of the
same catalog (the baseline), with ``PRAGMA quick_check`` alone and ``Catalog.open`` for scale.

``recovery_times()`` returns [(point, seconds)] for benchmarks/bench_robustness.py.

Usage:
    python benchmarks/robustness_recovery.py [--photos 200] [--backup-photos 100000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import CACHE, print_table  # noqa: E402
from tests.faults import harness  # noqa: E402
from vsearch_app.core.store import catalog_backup, fault_points  # noqa: E402
from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog  # noqa: E402

KILL_AT = {"schema.mid_migration": "@2", "backup.before_replace": "@1"}  # others: "@3" (a batch or save mid-run)


def _prepare(folder: Path, photos: int, *, schema_version: int | None = None) -> tuple[Path, Path]:
    root, data = folder / "photos", folder / "data"
    for i in range(photos):
        harness.make_photo(root / f"a{i:05d}.png", i)
    library = harness.open_library(data, save_every_s=0.0)
    library.add_folder(root)
    library.index()
    library.close()
    if schema_version is not None:  # an old library, so that the restart migrates
        assert schema_version == harness.OLD_SCHEMA
        harness.rewind_catalog_to_v4(data)
    for i in range(photos):
        harness.make_photo(root / "new" / f"b{i:05d}.png", 10**6 + i)
    return root, data


def _restart_seconds(data: Path) -> float:
    """Open the library, its index, and answer a search: the time until the user can search again."""
    started = time.perf_counter()
    library = harness.open_library(data)
    try:
        library.vector_index()
        library.search("anything", limit=5)
        return time.perf_counter() - started
    finally:
        library.close()


def _clean_restart(photos: int) -> float:
    with tempfile.TemporaryDirectory(prefix="vsearch-recovery-") as tmp:
        _, data = _prepare(Path(tmp), photos)
        result = harness.run_child(data)
        if result.returncode:
            raise RuntimeError(f"the clean run failed: {result.stderr}")
        return _restart_seconds(data)


def _after_kill(point: str, photos: int) -> float:
    with tempfile.TemporaryDirectory(prefix="vsearch-recovery-") as tmp:
        old = harness.OLD_SCHEMA if point == "schema.mid_migration" else None
        _, data = _prepare(Path(tmp), photos, schema_version=old)
        result = harness.run_child(data, f"{point}=kill{KILL_AT.get(point, '@3')}")
        if not result.killed:
            raise RuntimeError(f"{point} was not reached: {result.stderr}")
        return _restart_seconds(data)


def _after_truncation(photos: int) -> float:
    with tempfile.TemporaryDirectory(prefix="vsearch-recovery-") as tmp:
        _, data = _prepare(Path(tmp), photos)
        catalog = data / CATALOG_FILENAME
        with open(catalog, "r+b") as fh:
            fh.truncate(os.path.getsize(catalog) // 2)
        return _restart_seconds(data)


def recovery_times(photos: int = 200) -> list[tuple[str, float]]:
    """(fault point, seconds from restart to a usable library after a kill there), then the clean restart and a
    truncated catalog restored from its backup."""
    rows = [(point, _after_kill(point, photos)) for point in fault_points.POINTS]
    rows.append(("catalog truncated (restored from backup)", _after_truncation(photos)))
    rows.append(("clean restart (baseline)", _clean_restart(photos)))
    return rows


# --- backup cost ----------------------------------------------------------------------------------------------------


def _big_catalog(photos: int, dim: int = 768) -> Path:
    path = CACHE / "robustness_recovery" / f"catalog-{photos}.sqlite3"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(path.name + ".building")
    for leftover in path.parent.glob(building.name + "*"):
        leftover.unlink()
    rng = np.random.default_rng(0)
    root = Path("/photos")
    with Catalog.open(building) as catalog:
        catalog.add_root(root)
        for start in range(0, photos, 2000):
            vectors = rng.standard_normal((min(2000, photos - start), dim)).astype(np.float32)
            with catalog.transaction():
                for i, vector in enumerate(vectors, start):
                    catalog.record_embedding(root / f"{i // 1000:03d}" / f"IMG_{i:06d}.jpg", "model", vector,
                                             size=3_000_000 + i, mtime_ns=i, fingerprint=f"{i:032x}",
                                             captured_at="2024-05-01T10:00:00", width=4032, height=3024)
    os.replace(building, path)
    return path


def backup_cost(photos: int) -> list[list[str]]:
    source = _big_catalog(photos)
    with tempfile.TemporaryDirectory(prefix="vsearch-backup-") as tmp:
        work = Path(tmp) / CATALOG_FILENAME
        shutil.copyfile(source, work)
        size_mb = work.stat().st_size / 1e6
        started = time.perf_counter()
        shutil.copyfile(work, Path(tmp) / "plain-copy")
        with open(Path(tmp) / "plain-copy", "rb+") as fh:
            os.fsync(fh.fileno())
        plain = time.perf_counter() - started
        started = time.perf_counter()
        catalog = Catalog.open(work)
        opened = time.perf_counter() - started
        try:
            started = time.perf_counter()
            verdict = catalog.quick_check()
            check = time.perf_counter() - started
            started = time.perf_counter()
            written = catalog_backup.write_backup(catalog, every_s=0.0)
            backup = time.perf_counter() - started
        finally:
            catalog.close()
        if verdict != "ok" or written is None:
            raise RuntimeError(f"backup not written (quick_check: {verdict})")
    return [
        [f"{photos:,}", f"{size_mb:.0f} MB", f"{backup:.2f} s", f"{plain:.2f} s", f"{backup / plain:.1f}x",
         f"{check:.2f} s", f"{opened * 1000:.0f} ms"],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=200, help="photos in the library (and as many added)")
    parser.add_argument("--backup-photos", type=int, default=100_000, help="catalog size for the backup cost; 0: skip")
    args = parser.parse_args(argv)
    rows = recovery_times(args.photos)
    baseline = rows[-1][1]
    print_table(f"Restart to a usable library after SIGKILL at each fault point ({args.photos} + {args.photos} photos)",
                ["point", "seconds", "vs clean restart"],
                [[name, f"{seconds:.2f}", f"{seconds / baseline:.1f}x"] for name, seconds in rows])
    if args.backup_photos:
        print_table("Catalog backup after an index run (catalog_backup.write_backup)",
                    ["photos", "catalog", "backup", "plain copy+fsync", "ratio", "quick_check", "open"],
                    backup_cost(args.backup_photos))
    return 0


if __name__ == "__main__":
    sys.exit(main())
