"""The catalog's rolling backup, ``<data dir>/catalog.sqlite3.bak``: what a damaged catalog is restored from.

The catalog holds what is expensive to make again (every photo's vector: hours of model time for a big library)
and what the user chose (the watched folders, the search model). A disk error, a crash of the file system or a
sync tool can still damage the file, so after an index run that changed something, ``write_backup`` copies it:

- with SQLite's online backup API (a consistent snapshot; other readers and writers go on) into a temp file beside
  the backup, as a self-contained file (rollback journal, no -wal);
- checked with ``PRAGMA quick_check`` before it may replace anything: a catalog already damaged never overwrites
  the last good backup (it is logged and the previous backup kept);
- fsynced, then renamed over the previous backup (atomic: a crash leaves the old backup or the new one), and the
  folder fsynced;
- at most every BACKUP_EVERY_S, so a watcher that indexes a photo at a time does not copy the catalog each time,
  and never more often than COST_SHARE times the last copy's duration (``next_interval``): a 1M-photo catalog
  (~4.5 GB, ~30 s to copy) is then copied about hourly, so backups never take more than 1% of the time.

Cost (benchmarks/robustness_recovery.py, ``--backup-cost``): see docs/ARCHITECTURE.md for the measured figure at
100k photos. The backup doubles the catalog's disk use.

Migrations keep their own copies (``catalog.sqlite3.bak-v<N>``, core/store/schema.py); core/store/catalog_recovery.py
restores from ``.bak``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

from vsearch_app.core.store import fault_points
from vsearch_app.core.store.catalog import Catalog
from vsearch_app.core.store.fsutil import fsync_dir, temp_path_beside

log = logging.getLogger(__name__)

BACKUP_SUFFIX = ".bak"
BACKUP_EVERY_S = 10 * 60.0
COST_SHARE = 100  # wait at least this many times the last backup's duration before the next one


def next_interval(every_s: float, last_cost_s: float) -> float:
    """Seconds the backup must be old before it is written again, given how long the last one took."""
    return max(every_s, COST_SHARE * last_cost_s)


def backup_path(catalog_path: str | os.PathLike[str]) -> Path:
    path = Path(catalog_path)
    return path.with_name(path.name + BACKUP_SUFFIX)


def backup_age_s(catalog_path: str | os.PathLike[str]) -> float | None:
    """Seconds since the backup was written, or None when there is none."""
    try:
        return max(time.time() - backup_path(catalog_path).stat().st_mtime, 0.0)
    except OSError:
        return None


def check_file(path: str | os.PathLike[str]) -> str:
    """``PRAGMA quick_check`` of a standalone catalog file opened read-only ('ok' when healthy; else the reason)."""
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        return "; ".join(r[0] for r in conn.execute("PRAGMA quick_check").fetchall())
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        conn.close()


def write_backup(catalog: Catalog, *, every_s: float = BACKUP_EVERY_S) -> float | None:
    """Replace the backup with a checked copy of ``catalog`` unless the backup is younger than ``every_s``.
    Returns the seconds it took, or None when no backup was written. Never raises for a disk problem: a backup
    that cannot be written is logged, and the previous one stays."""
    target = backup_path(catalog.path)
    age = backup_age_s(catalog.path)
    if age is not None and age < every_s:
        return None
    started = time.monotonic()
    tmp = None
    try:
        tmp = temp_path_beside(target)
        catalog.copy_to(tmp)
        verdict = check_file(tmp)
        if verdict != "ok":
            log.warning("not backing up the catalog %s: its copy fails a check (%s); the previous backup is kept",
                        catalog.path, verdict)
            tmp.unlink(missing_ok=True)
            return None
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        fault_points.reached("backup.before_replace")
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except (OSError, sqlite3.Error) as exc:
        log.warning("could not back up the catalog to %s: %s (the previous backup is kept)", target, exc)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        return None
    seconds = time.monotonic() - started
    log.debug("backed up the catalog to %s in %.2f s", target, seconds)
    return seconds
