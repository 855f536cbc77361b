"""Index files deleted or damaged on disk (issue 15): deleted, truncated, bit-flipped, a manifest for another
dimension, a graph file of another dimension under a matching manifest, a manifest that is not JSON. Opening the
library's index rebuilds the damaged shards from the catalog, reporting "rebuilding" progress up to every vector,
and search then finds every photo. A catalog restored from an older backup also makes a newer index rebuild."""

from __future__ import annotations

import json

import hnswlib
import numpy as np
import pytest

from tests.faults import harness
from vsearch_app.core.library.library import INDEX_DIRNAME
from vsearch_app.core.store import index_files

PHOTOS = 10


@pytest.fixture
def indexed(tmp_path):
    root, data = tmp_path / "photos", tmp_path / "data"
    for i in range(PHOTOS):
        harness.make_photo(root / f"p{i}.png", i)
    library = harness.open_library(data)
    library.add_folder(root)
    library.index()
    library.close()
    return root, data


def _shard0(data):
    manifest = next((data / INDEX_DIRNAME).glob("*shard0of2.manifest.json"))
    return manifest, data / INDEX_DIRNAME / json.loads(manifest.read_text())["file"]


def _delete(manifest, graph):
    graph.unlink()


def _truncate(manifest, graph):
    with open(graph, "r+b") as fh:
        fh.truncate(graph.stat().st_size // 2)


def _flip_a_bit(manifest, graph):
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0x10
    graph.write_bytes(bytes(data))


def _delete_everything(manifest, graph):
    for path in manifest.parent.iterdir():
        path.unlink()


def _manifest_of_another_dimension(manifest, graph):
    m = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**m, "dim": harness.DIM * 2}))


def _graph_of_another_dimension(manifest, graph):
    """A well-formed hnswlib file of dimension 16 whose checksum the manifest records: only the header check (the
    stride of each element) can tell, and hnswlib itself would load it without a word."""
    other = hnswlib.Index(space="cosine", dim=harness.DIM * 2)
    m = json.loads(manifest.read_text())
    other.init_index(max_elements=m["max_elements"], M=m["M"], ef_construction=10)
    other.add_items(np.random.default_rng(0).standard_normal((m["count"], harness.DIM * 2)).astype(np.float32))
    other.save_index(str(graph))
    manifest.write_text(json.dumps({**m, "file_size": graph.stat().st_size, "sha256": index_files.sha256_of(graph)}))


def _manifest_not_json(manifest, graph):
    manifest.write_text('{"format": 1, "model_id": ')


DAMAGE = [_delete, _truncate, _flip_a_bit, _delete_everything, _manifest_of_another_dimension,
          _graph_of_another_dimension, _manifest_not_json]


@pytest.mark.parametrize("damage", DAMAGE, ids=[d.__name__.strip("_") for d in DAMAGE])
def test_damaged_index_files_are_rebuilt_from_the_catalog_with_progress(indexed, damage):
    root, data = indexed
    damage(*_shard0(data))
    events = []
    library = harness.open_library(data)
    try:
        index = library.vector_index(progress=events.append)
        assert len(index) == PHOTOS
        rebuilding = [e for e in events if e.phase == "rebuilding"]
        assert rebuilding[0].done == rebuilding[0].total == 0  # "opening" ...
        assert rebuilding[-1].total > 0 and rebuilding[-1].done == rebuilding[-1].total  # ... then the rebuild
        for path in harness.photos_on_disk(root):
            hits = library.search(path, limit=1)
            assert str(hits[0].path) == path and hits[0].score == pytest.approx(1.0, abs=1e-4)
    finally:
        library.close()
    manifest, graph = _shard0(data)
    assert graph.exists() and index_files.load(data / INDEX_DIRNAME, manifest.name.removesuffix(".manifest.json"),
                                               model_id=harness.MODEL_ID, dim=harness.DIM, M=32)
    assert harness.check_index_matches_catalog(data) == PHOTOS


def test_an_intact_index_opens_without_rebuilding(indexed):
    _, data = indexed
    events = []
    library = harness.open_library(data)
    try:
        library.vector_index(progress=events.append)
    finally:
        library.close()
    assert [(e.phase, e.done, e.total) for e in events] == [("rebuilding", 0, 0)]  # loaded, nothing rebuilt


def test_an_index_saved_after_the_catalog_is_rebuilt(indexed):
    """A catalog put back to an older copy (its backup) behind the index's back: the index, saved at a later change
    counter, may label other photos with the same ids, so it is rebuilt rather than trusted."""
    root, data = indexed
    from vsearch_app.core.store import catalog_backup
    from vsearch_app.core.store.catalog import CATALOG_FILENAME

    older = catalog_backup.backup_path(data / CATALOG_FILENAME).read_bytes()
    (root / "p0.png").unlink()
    harness.make_photo(root / "q.png", 50)
    library = harness.open_library(data)
    library.index()
    library.close()
    (data / CATALOG_FILENAME).write_bytes(older)  # as a user restoring a copy by hand would
    for companion in ("-wal", "-shm"):
        (data / (CATALOG_FILENAME + companion)).unlink(missing_ok=True)
    events = []
    library = harness.open_library(data)
    try:
        library.vector_index(progress=events.append)
        assert events[-1].phase == "rebuilding" and events[-1].total == PHOTOS
    finally:
        library.close()
    harness.check_rerun_completes(data, root)
