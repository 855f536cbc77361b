"""The kill-point matrix (issue 15): every named fault point of the store, three runs each, the indexing process
killed with SIGKILL exactly there (vsearch_app/core/store/fault_points.py). After each kill:

- ``PRAGMA integrity_check`` is ok and the catalog opens without any recovery (a kill never damages it);
- the vector index loads, or rebuilds, and then holds exactly the catalog's vectors;
- a rerun completes: every photo on disk is in the catalog exactly once, indexed, with one vector; it embeds exactly
  the photos whose vectors the killed run had not committed (no photo is embedded twice); the backup stays usable.

Each run starts from a library indexed once (so saves replace a previous index and backup), with photos added,
changed and removed since, and the kill lands on the n-th time the point is reached (different moments of a run:
the scan's commit or a batch's, the first or second shard's save). The migration point starts from a schema-v4
catalog (two migration steps) instead.
"""

from __future__ import annotations

import sys

import pytest

from tests.faults import harness
from vsearch_app.core.store import catalog_backup, schema
from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

# point -> the kills of each of its three runs (fault_points "action@n" suffixes, applied one after another)
MATRIX = {
    "catalog.mid_commit": [("@1",), ("@2",), ("@4",)],
    "index.mid_save": [("@1",), ("@2",), ("@5",)],
    "index.before_replace": [("@1",), ("@2",), ("@5",)],
    "index.before_manifest": [("@1",), ("@2",), ("@5",)],
    "backup.before_replace": [("@1",), ("@1", "@1"), ("@1", "@1", "@1")],
    "schema.mid_migration": [("@1",), ("@2",), ("@1", "@2")],
}
CASES = [(point, run, kills) for point, runs in MATRIX.items() for run, kills in enumerate(runs, 1)]
PHOTOS = 12


def _indexed_library(tmp_path, *, schema_version: int | None = None):
    """A library indexed once (at ``schema_version``, if given), then 12 new photos, one changed, one removed."""
    root = tmp_path / "photos"
    data = tmp_path / "data"
    for i in range(PHOTOS):
        harness.make_photo(root / f"a{i:02d}.png", i)
    library = harness.open_library(data)
    try:
        library.add_folder(root)
        library.index()
    finally:
        library.close()
    if schema_version is not None:
        assert schema_version == harness.OLD_SCHEMA
        harness.rewind_catalog_to_v4(data)
    for i in range(PHOTOS):
        harness.make_photo(root / "new" / f"b{i:02d}.png", 100 + i)
    harness.make_photo(root / "a01.png", 999)  # changed content: its vector is stale
    (root / "a02.png").unlink()
    return root, data


@pytest.mark.parametrize(("point", "run", "kills"), CASES, ids=[f"{p}-run{r}" for p, r, _ in CASES])
def test_killed_at_a_point_loses_nothing(tmp_path, point, run, kills):
    migrating = point == "schema.mid_migration"
    root, data = _indexed_library(tmp_path, schema_version=harness.OLD_SCHEMA if migrating else None)
    for k, hit in enumerate(kills):
        if k:  # work for the next run: a backup, for one, is only written after a run that changed something
            harness.make_photo(root / "later" / f"c{k}.png", 200 + k)
        result = harness.run_child(data, f"{point}=kill{hit}")
        assert result.killed, f"{point}{hit} was not reached (exit {result.returncode}):\n{result.stderr}"
        assert "Traceback" not in result.stderr
        assert harness.integrity(data) == "ok"
        if migrating:  # each step commits or not at all; opening it here would finish the migration
            assert harness.raw_schema_version(data) in (harness.OLD_SCHEMA, harness.OLD_SCHEMA + 1)
        else:
            harness.check_index_matches_catalog(data)
    with Catalog.open(data / CATALOG_FILENAME) as catalog:  # migrates what a kill left half done
        assert catalog.schema_version() == schema.SCHEMA_VERSION
    harness.check_index_matches_catalog(data)
    if point == "backup.before_replace":
        assert catalog_backup.check_file(catalog_backup.backup_path(data / CATALOG_FILENAME)) == "ok"
    not_committed = harness.still_to_embed(data, root)
    rerun = harness.check_rerun_completes(data, root)
    assert sorted(rerun) == sorted(not_committed), "the rerun embedded a photo whose vector was committed"
    if migrating:
        assert (data / f"{CATALOG_FILENAME}.bak-v{harness.OLD_SCHEMA}").exists()
    assert harness.check_rerun_completes(data, root) == []  # and then nothing is left to do


def test_every_fault_point_is_in_the_matrix():
    from vsearch_app.core.store import fault_points

    assert set(MATRIX) == set(fault_points.POINTS)
