"""A catalog damaged on disk (issue 15): truncated, overwritten, or with a bad page deep inside. Opening the library
detects it, puts the file aside (never deletes it), restores the last backup (or starts a new catalog with the
folders it could still read), says so in one line, and never crashes or silently starts empty. Also the backup
itself: when it is written, and that a damaged catalog never replaces a good backup."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.faults import harness
from vsearch_app.core.store import catalog_backup
from vsearch_app.core.store.catalog import CATALOG_FILENAME, CHECK_MARK_SUFFIX, Catalog
from vsearch_app.core.store.catalog_recovery import header_problem, open_catalog
from vsearch_app.errors import CatalogDamagedError


def _library(tmp_path, photos=8):
    """A library indexed once (so it has a backup), then 3 photos added that the backup does not know."""
    root, data = tmp_path / "photos", tmp_path / "data"
    for i in range(photos):
        harness.make_photo(root / f"a{i}.png", i)
    library = harness.open_library(data)
    library.add_folder(root)
    library.index()
    library.close()
    assert catalog_backup.backup_path(data / CATALOG_FILENAME).exists()
    for i in range(3):
        harness.make_photo(root / "later" / f"b{i}.png", 100 + i)
    library = harness.open_library(data, backup_every_s=3600)  # indexed, but the backup is too recent to redo
    library.index()
    library.close()
    return root, data


def _truncate(path, size):
    with open(path, "r+b") as fh:
        fh.truncate(size)


def _overwrite(path, offset, data):
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def _damaged_copies(data):
    return sorted(p.name for p in data.glob(f"{CATALOG_FILENAME}.damaged-*") if not p.name.endswith(("-wal", "-shm")))


DAMAGE = {
    "truncated to half": lambda p: _truncate(p, os.path.getsize(p) // 2),
    "truncated inside a page": lambda p: _truncate(p, os.path.getsize(p) - 1000),
    "emptied": lambda p: _truncate(p, 0),
    "header overwritten": lambda p: _overwrite(p, 0, b"\x00" * 100),
    "schema page overwritten": lambda p: _overwrite(p, 100, os.urandom(3000)),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_catalog_is_restored_from_its_backup_and_the_user_is_told(tmp_path, damage):
    root, data = _library(tmp_path)
    catalog = data / CATALOG_FILENAME
    DAMAGE[damage](catalog)
    damaged_bytes = catalog.read_bytes()
    library = harness.open_library(data)
    try:
        recovery = library.recovery
        assert recovery is not None and recovery.restored_backup
        assert recovery.message.startswith("the catalog was damaged (")
        assert "restored its backup from " in recovery.message
        assert library.catalog.integrity_check() == "ok"
        assert [r.path for r in library.catalog.roots()] == [root]
        assert library.catalog.counts()["indexed"] == 8  # what the backup held: its vectors are kept
    finally:
        library.close()
    kept = _damaged_copies(data)
    assert len(kept) == 1 and (data / kept[0]).read_bytes() == damaged_bytes  # put aside, never deleted
    assert recovery.damaged_copy == data / kept[0]
    rerun = harness.check_rerun_completes(data, root)
    assert sorted(rerun) == harness.photos_on_disk(root / "later")  # only what the backup did not know


def test_without_a_backup_a_new_catalog_keeps_the_folders_it_could_read(tmp_path):
    root, data = _library(tmp_path)
    catalog = data / CATALOG_FILENAME
    catalog_backup.backup_path(catalog).unlink()
    _truncate(catalog, os.path.getsize(catalog) - 4096)  # the last page gone: the roots are still readable
    library = harness.open_library(data)
    try:
        recovery = library.recovery
        assert recovery is not None and not recovery.restored_backup
        assert "no usable backup, so a new catalog was started with your 1 folder(s)" in recovery.message
        assert [r.path for r in library.catalog.roots()] == [root]
    finally:
        library.close()
    assert len(harness.check_rerun_completes(data, root)) == 11  # every photo is embedded again


def test_without_a_backup_or_readable_folders_it_says_to_add_them_again(tmp_path):
    root, data = _library(tmp_path)
    catalog = data / CATALOG_FILENAME
    catalog_backup.backup_path(catalog).write_bytes(b"not a database either")
    _overwrite(catalog, 0, b"garbage" * 20)
    library = harness.open_library(data)
    try:
        assert library.recovery is not None and not library.recovery.restored_backup
        assert library.recovery.message.endswith("add your photo folders again")
        assert library.catalog.roots() == []
        assert library.catalog.integrity_check() == "ok"
    finally:
        library.close()
    assert len(_damaged_copies(data)) == 1


def _corrupt_a_table_page(catalog_path, table="files") -> None:
    """Overwrite the root page of a table's b-tree (not read when the catalog opens)."""
    conn = sqlite3.connect(catalog_path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root_page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    conn.close()
    _overwrite(catalog_path, (root_page - 1) * page_size, b"\xff" * page_size)


def test_damage_met_while_in_use_is_checked_and_restored_at_the_next_open(tmp_path):
    root, data = _library(tmp_path)
    catalog = data / CATALOG_FILENAME
    _corrupt_a_table_page(catalog)
    assert header_problem(catalog) is None  # the file looks whole ...
    library = harness.open_library(data)
    try:
        assert library.recovery is None
        with pytest.raises(CatalogDamagedError, match="is damaged .*run VSearch again: it checks the catalog"):
            library.catalog.files_under(root)  # ... until a read meets the bad page
    finally:
        library.close()
    assert catalog.with_name(catalog.name + CHECK_MARK_SUFFIX).exists()
    library = harness.open_library(data)
    try:
        assert library.recovery is not None and library.recovery.restored_backup
        assert library.catalog.counts()["indexed"] == 8
    finally:
        library.close()
    assert not catalog.with_name(catalog.name + CHECK_MARK_SUFFIX).exists()
    harness.check_rerun_completes(data, root)


def test_a_check_mark_on_a_healthy_catalog_is_cleared_without_recovery(tmp_path):
    _, data = _library(tmp_path)
    mark = data / (CATALOG_FILENAME + CHECK_MARK_SUFFIX)
    mark.touch()
    catalog, recovery = open_catalog(data / CATALOG_FILENAME)
    catalog.close()
    assert recovery is None and not mark.exists()


def test_the_backup_is_written_after_a_run_that_changed_something_at_most_every_n_seconds(tmp_path):
    root, data = tmp_path / "photos", tmp_path / "data"
    harness.make_photo(root / "a.png", 1)
    backup = catalog_backup.backup_path(data / CATALOG_FILENAME)
    library = harness.open_library(data, backup_every_s=3600)
    try:
        library.add_folder(root)
        library.index()
        assert backup.exists()
        first = backup.stat().st_mtime_ns
        harness.make_photo(root / "b.png", 2)
        library.index()
        assert backup.stat().st_mtime_ns == first  # younger than an hour: not written again
        two_hours_ago = time.time() - 7200
        os.utime(backup, (two_hours_ago, two_hours_ago))
        aged = backup.stat().st_mtime_ns
        library.index()  # nothing changed: no backup needed
        assert backup.stat().st_mtime_ns == aged
        harness.make_photo(root / "c.png", 3)
        library.index()
        assert backup.stat().st_mtime_ns > first
    finally:
        library.close()
    with Catalog.open(backup) as copy:
        assert copy.counts()["indexed"] == 3
    assert catalog_backup.check_file(backup) == "ok"
    assert not list(data.glob(".*.tmp"))  # no temp file left behind


def test_a_damaged_catalog_never_replaces_a_good_backup(tmp_path):
    root, data = _library(tmp_path)
    catalog_path = data / CATALOG_FILENAME
    backup = catalog_backup.backup_path(catalog_path)
    good = backup.read_bytes()
    catalog = Catalog.open(catalog_path)
    try:
        _corrupt_a_table_page(catalog_path)
        time.sleep(0.01)
        assert catalog_backup.write_backup(catalog, every_s=0) is None
    finally:
        catalog.close()
    assert backup.read_bytes() == good


def test_a_read_only_data_folder_cannot_recover_and_says_why(tmp_path):
    _, data = _library(tmp_path)
    _truncate(data / CATALOG_FILENAME, 0)
    with pytest.raises(CatalogDamagedError, match=r"damaged \(the file is empty\), and the data folder is read-only"):
        open_catalog(data / CATALOG_FILENAME, read_only=True)


def test_the_cli_prints_the_recovery_in_one_line(tmp_path):
    root, data = _library(tmp_path)
    _truncate(data / CATALOG_FILENAME, 0)
    env = {**os.environ, "VSEARCH_DATA_DIR": str(data)}
    proc = subprocess.run([sys.executable, "-m", "vsearch_app", "folders", "list"], env=env, capture_output=True,
                          text=True, timeout=120, cwd=harness.REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(root)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vsearch: the catalog was damaged (the file is empty)"), lines
    again = subprocess.run([sys.executable, "-m", "vsearch_app", "folders", "list"], env=env, capture_output=True,
                           text=True, timeout=120, cwd=harness.REPO)
    assert again.stderr == ""  # said once, by the run that recovered


def test_the_cli_says_damage_met_in_use_in_one_line_and_the_next_run_restores(tmp_path):
    root, data = _library(tmp_path)
    _corrupt_a_table_page(data / CATALOG_FILENAME, "roots")
    env = {**os.environ, "VSEARCH_DATA_DIR": str(data)}

    def folders_list():
        return subprocess.run([sys.executable, "-m", "vsearch_app", "folders", "list"], env=env, capture_output=True,
                              text=True, timeout=120, cwd=harness.REPO)

    failed = folders_list()
    assert failed.returncode == 2 and failed.stdout == ""
    assert failed.stderr.splitlines() == [failed.stderr.strip()], failed.stderr
    assert failed.stderr.startswith("vsearch: the catalog ") and "is damaged (database disk image is malformed)" \
        in failed.stderr and failed.stderr.strip().endswith("restores it from its backup")
    restored = folders_list()
    assert restored.returncode == 0 and restored.stdout.strip() == str(root), restored.stderr
    assert restored.stderr.startswith("vsearch: the catalog was damaged (database disk image is malformed)")


def test_a_damaged_catalog_that_cannot_be_put_aside_is_a_one_line_error(tmp_path, monkeypatch):
    _, data = _library(tmp_path)
    _truncate(data / CATALOG_FILENAME, 0)
    real_replace = os.replace

    def refuse_the_catalog(src, dst):
        if str(src).endswith(CATALOG_FILENAME):
            raise PermissionError(13, "Permission denied")  # as Windows says for a file another process holds
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", refuse_the_catalog)
    with pytest.raises(CatalogDamagedError, match=r"damaged \(the file is empty\) and could not be restored: "
                                                  r"Permission denied; close other VSearch windows"):
        harness.open_library(data)
    monkeypatch.undo()
    assert (data / CATALOG_FILENAME).stat().st_size == 0  # untouched: the next open tries again
    library = harness.open_library(data)
    assert library.recovery is not None and library.recovery.restored_backup
    library.close()


def test_a_slow_backup_is_spaced_out_by_what_it_cost():
    assert catalog_backup.next_interval(600, 0.5) == 600  # cheap: every 10 minutes at most
    assert catalog_backup.next_interval(600, 30) == 3000  # a 30 s copy: at most 1% of the time


def test_a_damaged_catalog_is_not_swapped_under_a_process_that_is_indexing(tmp_path):
    from vsearch_app.core.store.writer_lock import WriterLock

    _, data = _library(tmp_path)
    _truncate(data / CATALOG_FILENAME, 0)
    with WriterLock(data, "indexing"):  # as another VSearch process indexing this library would hold it
        with pytest.raises(CatalogDamagedError, match=r"damaged \(the file is empty\); it is restored when no other "
                                                      r"VSearch process uses it: .* is indexing this library"):
            open_catalog(data / CATALOG_FILENAME)
    assert _damaged_copies(data) == []  # nothing was moved
    catalog, recovery = open_catalog(data / CATALOG_FILENAME)
    catalog.close()
    assert recovery is not None and recovery.restored_backup
