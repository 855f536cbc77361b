"""Opening a library's catalog when the file may be damaged: detect it, keep it, restore or rebuild, and say so.

``open_catalog(path)`` -> ``(Catalog, Recovery | None)``. Before SQLite touches the file, ``header_problem`` reads
its first 100 bytes and its size (microseconds): a file cut short (truncated to zero, inside a page, or shorter
than the page count its header records), or one that is not SQLite at all. Damage SQLite itself finds while
opening (a malformed schema page) arrives as CatalogDamagedError. Damage met later, while the catalog is in use (a
bad page deep in a table), makes the catalog leave a mark (``catalog.sqlite3.check``) and raise CatalogDamagedError;
the next open then runs ``PRAGMA quick_check`` over the whole file once. Whatever found it:

1. the damaged file is renamed ``catalog.sqlite3.damaged-<time>`` (its -wal and -shm beside it), never deleted;
2. the watched folders are read from it where its pages still allow (best effort);
3. the backup ``catalog.sqlite3.bak`` (core/store/catalog_backup.py), if it passes ``PRAGMA quick_check``, is
   copied into place: every vector it holds is kept, and the next scan finds what changed since it was written;
   without a usable backup a new catalog is started with the folders salvaged in step 2, and their photos are
   embedded again by the next index run;
4. the returned Recovery says what happened in one line (LibraryStatus.catalog_notice, the CLI prints it).

All of this happens under the data folder's writer lock (core/store/writer_lock.py): a process that is indexing
has the file open and would go on writing into the copy put aside, so while one runs the damaged catalog is only
reported (CatalogDamagedError), and it is restored by the next open once that process has ended.

The vector index saved from the damaged catalog no longer matches the restored one; it is rebuilt from the
catalog when it opens (VectorIndex refuses an index saved at a later catalog change counter than the catalog's).

A catalog that cannot be opened for another reason (locked, a newer VSearch, permissions) is not damage: its
CatalogError reaches the user unchanged.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vsearch_app.core.store.catalog import CHECK_MARK_SUFFIX, Catalog, display_text
from vsearch_app.core.store.catalog_backup import backup_path, check_file
from vsearch_app.core.store.fsutil import fsync_dir, temp_path_beside
from vsearch_app.core.store.writer_lock import WriterLock
from vsearch_app.errors import CatalogDamagedError, LibraryBusyError, VSearchError

log = logging.getLogger(__name__)

_MAGIC = b"SQLite format 3\x00"
_HEADER_BYTES = 100


@dataclass(frozen=True)
class Recovery:
    """What opening the catalog had to do about a damaged file."""

    problem: str  # what was wrong with the file
    damaged_copy: Path  # where the damaged file now is
    restored_backup: bool  # True: restored from catalog.sqlite3.bak; False: a new catalog was started
    backup_time: float | None  # when the restored backup was written (seconds since the epoch)
    folders: tuple[Path, ...]  # watched folders of the new catalog (restored or salvaged)

    @property
    def message(self) -> str:
        """One line for the user."""
        head = f"the catalog was damaged ({self.problem}) and was put aside as {self.damaged_copy.name}; "
        if self.restored_backup:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.backup_time)) if self.backup_time else "?"
            return head + f"restored its backup from {when}: photos changed since then are scanned again"
        if self.folders:
            return head + (f"there was no usable backup, so a new catalog was started with your {len(self.folders)} "
                           "folder(s): their photos are indexed again")
        return head + ("there was no usable backup and no folder could be read from it: add your photo folders "
                       "again")


def header_problem(path: Path) -> str | None:
    """Why the file at ``path`` cannot be a whole SQLite database, judged from its size and header; None when it
    looks whole (or does not exist yet: a new library)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            header = fh.read(_HEADER_BYTES)
    except FileNotFoundError:
        return None
    except OSError:
        return None  # unreadable (permissions): SQLite's own error says so better
    if size == 0:
        # Empty is also how SQLite leaves a new file for an instant while another process creates the catalog:
        # damage only when a backup shows there was a catalog here (an empty file with none holds nothing anyway).
        return "the file is empty" if backup_path(path).exists() else None
    if len(header) < _HEADER_BYTES:
        return f"the file is {size} bytes, shorter than a database header"
    if header[:16] != _MAGIC:
        return "the file is not a SQLite database"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"its header names an impossible page size ({page_size})"
    if size % page_size:
        return f"the file ends inside a page ({size} bytes, pages of {page_size})"
    pages = int.from_bytes(header[28:32], "big")
    header_current = header[24:28] == header[92:96]  # SQLite's rule for trusting the page count
    wal = path.with_name(path.name + "-wal")
    wal_pending = wal.exists() and wal.stat().st_size > 0  # a checkpoint may be half done: the -wal completes it
    if header_current and not wal_pending and pages * page_size > size:
        return f"the file is cut short ({size} bytes of {pages * page_size})"
    return None


def open_catalog(path: str | os.PathLike[str], *, read_only: bool = False) -> tuple[Catalog, Recovery | None]:
    """Open the catalog at ``path``, recovering a damaged one as the module docstring says. ``read_only``: the
    data folder cannot be written, so a damaged catalog cannot be recovered (CatalogDamagedError says so)."""
    path = Path(path)
    mark = path.with_name(path.name + CHECK_MARK_SUFFIX)
    problem = header_problem(path)
    if problem is None:
        try:
            catalog = Catalog.open(path, read_only=read_only)
        except CatalogDamagedError as exc:
            problem = str(exc.__cause__ or exc)
        else:
            if not mark.exists():
                return catalog, None
            problem = _full_check(catalog)  # damage was seen while it was in use: check every page once
            if problem is None:
                if not read_only:
                    mark.unlink(missing_ok=True)
                return catalog, None
    if read_only:
        raise CatalogDamagedError(f"the catalog {path} is damaged ({problem}), and the data folder is read-only, "
                                  "so it cannot be restored from its backup; make the folder writable and run again",
                                  param="data_dir")
    # Only the data folder's writer may swap the file: a process that indexes has it open, and would go on writing
    # into the file put aside. Under the lock, look again: another process may have just restored it.
    try:
        with WriterLock(path.parent, "restoring the damaged catalog"):
            if header_problem(path) is None and not mark.exists():
                try:
                    return Catalog.open(path), None
                except CatalogDamagedError:
                    pass  # still damaged: nobody restored it meanwhile
            catalog, recovery = _recover(path, problem)
            mark.unlink(missing_ok=True)
            return catalog, recovery
    except LibraryBusyError as exc:
        raise CatalogDamagedError(f"the catalog {path} is damaged ({problem}); it is restored when no other VSearch "
                                  f"process uses it: {exc}", param="data_dir") from exc
    except OSError as exc:  # e.g. the file held open by another process (Windows), or no permission to rename it
        raise CatalogDamagedError(f"the catalog {path} is damaged ({problem}) and could not be restored: "
                                  f"{exc.strerror or exc}; close other VSearch windows and run again",
                                  param="data_dir") from exc


def _full_check(catalog: Catalog) -> str | None:
    """Closes ``catalog`` and returns the problem when ``PRAGMA quick_check`` fails; None when it passes."""
    try:
        verdict = catalog.quick_check()
    except CatalogDamagedError as exc:
        verdict = str(exc.__cause__ or exc)
    if verdict == "ok":
        return None
    catalog.close()
    return verdict.split("; ")[0][:200]


def _recover(path: Path, problem: str) -> tuple[Catalog, Recovery]:
    log.info("the catalog %s is damaged (%s); recovering", path, problem)
    aside = _put_aside(path)
    folders = salvage_folders(aside)
    backup = backup_path(path)
    restored = False
    backup_time = None
    if backup.exists():
        verdict = check_file(backup)
        if verdict == "ok":
            backup_time = backup.stat().st_mtime
            _copy_into_place(backup, path)
            restored = True
        else:
            log.info("the catalog backup %s is damaged too (%s); starting a new catalog", backup, verdict)
    catalog = Catalog.open(path)
    try:
        known = {root.path for root in catalog.roots()}
        for folder in folders:  # folders added after the backup, or every folder of a new catalog
            if folder not in known:
                try:
                    catalog.add_root(folder)
                except VSearchError as exc:  # e.g. inside a restored root: already covered
                    log.info("not re-adding %s: %s", display_text(os.fsencode(folder)), exc)
        roots = tuple(root.path for root in catalog.roots())
    except BaseException:
        catalog.close()
        raise
    recovery = Recovery(problem, aside, restored, backup_time, roots)
    log.info("%s", recovery.message)  # the front ends show it (LibraryStatus.catalog_notice)
    return catalog, recovery


def _put_aside(path: Path) -> Path:
    """Rename the damaged file (and its -wal/-shm, so the set stays openable together) to a new, dated name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            os.replace(companion, aside.with_name(aside.name + suffix))
    fsync_dir(path.parent)
    return aside


def salvage_folders(damaged: Path) -> list[Path]:
    """The watched folders still readable from a damaged catalog file (empty when none can be read). Works on a
    copy, padded with zeros to the length its header records (SQLite refuses a file cut short as a whole, though
    the pages that remain are intact)."""
    with tempfile.TemporaryDirectory(prefix="vsearch-salvage-") as tmp:
        copy = Path(tmp) / "catalog.sqlite3"
        try:
            shutil.copyfile(damaged, copy)
            with open(copy, "rb+") as fh:
                header = fh.read(_HEADER_BYTES)
                if len(header) == _HEADER_BYTES and header[:16] == _MAGIC:
                    page_size = int.from_bytes(header[16:18], "big")
                    page_size = 65536 if page_size == 1 else page_size
                    wanted = int.from_bytes(header[28:32], "big") * page_size
                    if wanted > os.fstat(fh.fileno()).st_size:
                        fh.truncate(wanted)
            conn = sqlite3.connect(f"{copy.as_uri()}?mode=ro", uri=True)
        except (OSError, sqlite3.Error) as exc:
            log.info("no folder could be read from the damaged catalog: %s", exc)
            return []
        try:
            rows = conn.execute("SELECT path FROM roots").fetchall()
        except sqlite3.DatabaseError as exc:
            log.info("no folder could be read from the damaged catalog: %s", exc)
            return []
        finally:
            conn.close()
    return [Path(os.fsdecode(bytes(key))) for (key,) in rows if isinstance(key, bytes | memoryview)]


def _copy_into_place(backup: Path, path: Path) -> None:
    """Copy (never move: the backup stays for the next time) ``backup`` to ``path`` atomically and durably."""
    tmp = temp_path_beside(path)
    try:
        shutil.copyfile(backup, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
