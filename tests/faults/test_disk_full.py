"""A full disk while indexing (issue 15): during a catalog commit and during an index save, injected at the fault
points (vsearch_app/core/store/fault_points.py) and for real on a small tmpfs where the machine allows mounting
one. Either way the run stops with DiskFullError (the CLI: one line, exit 2), nothing committed before is lost,
the previous index stays loadable, and the first run after space returns completes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults import harness
from vsearch_app.core.library.library import INDEX_DIRNAME
from vsearch_app.core.store import catalog_backup, fault_points
from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog
from vsearch_app.errors import CatalogDiskFullError, DiskFullError


@pytest.fixture
def armed():
    yield fault_points.arm
    fault_points.disarm()


def _library_with_new_photos(tmp_path, new=8):
    root, data = tmp_path / "photos", tmp_path / "data"
    for i in range(6):
        harness.make_photo(root / f"a{i}.png", i)
    library = harness.open_library(data)
    library.add_folder(root)
    library.index()
    library.close()
    for i in range(new):
        harness.make_photo(root / "new" / f"b{i}.png", 100 + i)
    return root, data


def _vectors(data: Path) -> dict[int, bytes]:
    with Catalog.open(data / CATALOG_FILENAME) as catalog:
        ids, vectors = catalog.embeddings(harness.MODEL_ID)
    return {int(i): v.tobytes() for i, v in zip(ids, vectors, strict=True)}


def _manifests(data: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((data / INDEX_DIRNAME).glob("*.manifest.json"))}


def test_a_full_disk_during_a_catalog_commit_stops_the_run_and_loses_nothing(tmp_path, armed):
    root, data = _library_with_new_photos(tmp_path)
    before = _vectors(data)
    armed("catalog.mid_commit=enospc@3")  # the scan's commit and one batch go through; the next batch does not
    library = harness.open_library(data)
    try:
        with pytest.raises(CatalogDiskFullError, match=r"^the disk holding the catalog .* is full; nothing was lost"):
            library.index()
    finally:
        library.close()
    assert fault_points.hits("catalog.mid_commit") >= 3
    fault_points.disarm()
    assert harness.integrity(data) == "ok"
    after = _vectors(data)
    assert {k: after[k] for k in before} == before  # every vector from before is still there, unchanged
    assert len(after) == len(before) + 4  # the batch committed before the disk filled is kept too
    assert harness.check_index_matches_catalog(data) == len(after)
    rerun = harness.check_rerun_completes(data, root)
    assert len(rerun) == 4  # only the photos whose batch was refused


@pytest.mark.parametrize("point", ["index.mid_save", "index.before_replace", "index.before_manifest"])
def test_a_full_disk_during_an_index_save_keeps_the_previous_index(tmp_path, armed, point):
    root, data = _library_with_new_photos(tmp_path)
    library = harness.open_library(data, save_every_s=3600)  # one save, at the end of the run
    library.vector_index()  # opened before the fault is armed: it loads, it does not save
    manifests = _manifests(data)
    armed(f"{point}=enospc")
    try:
        with pytest.raises(DiskFullError, match=r"^the disk holding the search index .* is full; what was embedded "
                                                 r"is kept in the catalog"):
            library.index()
    finally:
        library.close()
    fault_points.disarm()
    first_shard = next(name for name in manifests if "shard0of2" in name)  # the save that hit the full disk
    assert _manifests(data)[first_shard] == manifests[first_shard]  # its previous save is still the valid one ...
    with Catalog.open(data / CATALOG_FILENAME) as catalog:
        assert catalog.counts(harness.MODEL_ID)["indexed"] == 14  # ... and every new vector is in the catalog
    assert harness.check_index_matches_catalog(data) == 14  # the old index loads and catches up
    assert harness.check_rerun_completes(data, root) == []


def _cli_index(data: Path, model_dir: Path, faults: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "VSEARCH_DATA_DIR": str(data), fault_points.ENV_VAR: faults, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "vsearch_app", "index", "--model", str(model_dir)], env=env,
                          capture_output=True, text=True, timeout=180, cwd=harness.REPO)


@pytest.mark.slow
def test_the_cli_says_the_disk_is_full_in_one_line(tmp_path, tiny_siglip_dir):
    root, data = tmp_path / "photos", tmp_path / "data"
    for i in range(6):
        harness.make_photo(root / f"p{i}.png", i)
    env = {**os.environ, "VSEARCH_DATA_DIR": str(data)}
    subprocess.run([sys.executable, "-m", "vsearch_app", "folders", "add", str(root)], env=env, check=True,
                   capture_output=True, timeout=120)

    def fails_in_one_line(faults: str, what: str) -> None:
        proc = _cli_index(data, tiny_siglip_dir, faults)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.splitlines() == [proc.stderr.strip()], proc.stderr  # exactly one line
        assert proc.stderr.startswith(f"vsearch: the disk holding {what} ") and " is full; " in proc.stderr

    fails_in_one_line("catalog.mid_commit=enospc@1", "the catalog")  # the scan's commit
    assert _cli_index(data, tiny_siglip_dir).returncode == 0
    harness.make_photo(root / "p6.png", 6)
    fails_in_one_line("index.before_manifest=enospc@1", "the search index")  # the run's save of the loaded index
    assert _cli_index(data, tiny_siglip_dir).returncode == 0
    status = subprocess.run([sys.executable, "-m", "vsearch_app", "status", "--json", "--model", str(tiny_siglip_dir)],
                            env=env, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(status.stdout)["counts"]["indexed"] == 7


# --- a real full disk -----------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (needs root and a kernel that lets this process mount); skipped otherwise."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root on Linux")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` up to the last ``leave`` bytes with one file; returns it (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (65536, 4096, 512, 1):  # unbuffered: every byte that fits is written, then ENOSPC
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
        os.ftruncate(fd, max(os.fstat(fd).st_size - leave, 0))
    finally:
        os.close(fd)
    return filler


@pytest.mark.parametrize("leave", [0, 96 << 10], ids=["full-before-the-run", "fills-during-the-run"])
def test_a_really_full_disk_stops_indexing_with_a_clear_error_and_the_next_run_completes(tmp_path, small_disk,
                                                                                          leave):
    root = tmp_path / "photos"
    data = small_disk / "data"
    for i in range(6):
        harness.make_photo(root / f"a{i}.png", i)
    library = harness.open_library(data)
    library.add_folder(root)
    library.index()
    library.close()
    before = _vectors(data)
    for i in range(60):
        harness.make_photo(root / "new" / f"b{i}.png", 100 + i)
    filler = _fill(small_disk, leave)
    with pytest.raises(DiskFullError, match=r"^the disk holding the (catalog|search index) .* is full; "):
        library = harness.open_library(data)  # with no space left at all, opening already says so
        try:
            library.index()
        finally:
            library.close()
    filler.unlink()
    assert harness.integrity(data) == "ok"
    after = _vectors(data)
    assert {k: after[k] for k in before} == before
    harness.check_rerun_completes(data, root)


def test_a_full_disk_mid_migration_keeps_the_old_catalog_and_the_next_open_migrates(tmp_path, armed):
    from vsearch_app.core.store import schema

    root, data = tmp_path / "photos", tmp_path / "data"
    harness.make_photo(root / "a.png", 1)
    library = harness.open_library(data)
    library.add_folder(root)
    library.index()
    library.close()
    harness.rewind_catalog_to_v4(data)
    armed("schema.mid_migration=enospc@2")  # 4 -> 5 commits, 5 -> 6 hits the full disk
    with pytest.raises(CatalogDiskFullError, match="is full; nothing was lost"):
        Catalog.open(data / CATALOG_FILENAME)
    fault_points.disarm()
    assert harness.integrity(data) == "ok" and harness.raw_schema_version(data) == harness.OLD_SCHEMA + 1
    with Catalog.open(data / CATALOG_FILENAME) as catalog:
        assert catalog.schema_version() == schema.SCHEMA_VERSION and catalog.counts()["indexed"] == 1


def test_a_full_disk_while_backing_up_keeps_the_previous_backup(tmp_path, armed):
    root, data = _library_with_new_photos(tmp_path)
    backup = catalog_backup.backup_path(data / CATALOG_FILENAME)
    previous = backup.read_bytes()
    armed("backup.before_replace=enospc")
    library = harness.open_library(data)
    try:
        library.index()  # the run itself succeeds: the backup is a safety net, its failure only logged
    finally:
        library.close()
    assert backup.read_bytes() == previous
    assert not [p for p in data.iterdir() if p.name.endswith(".tmp")]  # no temp copy left behind
    assert catalog_backup.check_file(backup) == "ok"
