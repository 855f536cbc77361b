"""The vector index: search, catch-up with the catalog, atomic saves, damage detection and rebuild, locking."""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time

import hnswlib
import numpy as np
import pytest

from tests.support.file_modes import modes_of, posix_modes, umask
from vsearch_app.core.store import index_files
from vsearch_app.core.store import vector_index as vi
from vsearch_app.core.store.read_write_lock import ReadWriteLock
from vsearch_app.core.store.vector_index import IndexParams, VectorIndex
from vsearch_app.errors import InvalidArgumentError

DIM = 16
MODEL = "test/model"
PARAMS = IndexParams(M=8, ef_construction=64, ef=32, initial_capacity=8, threads=1)


def _unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _fill(cat, tmp_path, n: int, seed: int = 0, model: str = MODEL, dim: int = DIM) -> dict[int, np.ndarray]:
    vectors = _unit(np.random.default_rng(seed), n, dim)
    out = {}
    with cat.transaction():
        for i, v in enumerate(vectors):
            fid = cat.record_embedding(tmp_path / "photos" / f"{seed}-{i}.jpg", model, v, size=1, mtime_ns=1)
            out[fid] = v
    return out


def _open(tmp_path, cat, **kw) -> VectorIndex:
    return VectorIndex.open_or_rebuild(tmp_path / "index", MODEL, DIM, cat, params=kw.pop("params", PARAMS), **kw)


class _Spy:
    """Replace hnswlib.Index by a subclass that records every file load_index is asked to read."""

    def __init__(self, monkeypatch):
        self.loaded: list[str] = []
        spy = self

        class SpyIndex(hnswlib.Index):
            def load_index(self, path, *args, **kwargs):
                spy.loaded.append(os.path.basename(path))
                return super().load_index(path, *args, **kwargs)

        monkeypatch.setattr(vi.hnswlib, "Index", SpyIndex)


# --- search ---------------------------------------------------------------------------------------------------------


def test_build_from_catalog_and_search(tmp_path, cat):
    vecs = _fill(cat, tmp_path, 200)
    index = _open(tmp_path, cat)
    assert len(index) == 200
    for fid, v in list(vecs.items())[:20]:
        ids, scores = index.search(v, k=5)
        assert ids[0] == fid and scores[0] == pytest.approx(1.0, abs=1e-5)
        assert ids.dtype == np.int64 and scores.dtype == np.float32 and len(ids) == 5
        assert np.all(np.diff(scores) <= 1e-6)  # best first
    # cosine: the scale of the query does not matter
    fid, v = next(iter(vecs.items()))
    assert index.search(3.0 * v, k=1)[0][0] == fid


def test_search_edge_cases(tmp_path, cat):
    index = _open(tmp_path, cat)
    ids, scores = index.search(np.ones(DIM), k=10)
    assert ids.shape == (0,) and scores.shape == (0,)
    vecs = _fill(cat, tmp_path, 5)
    index.sync(cat)
    ids, _ = index.search(np.ones(DIM), k=100)  # k > count (and > ef)
    assert sorted(ids.tolist()) == sorted(vecs)
    with pytest.raises(InvalidArgumentError):
        index.search(np.ones(DIM + 1), k=1)
    with pytest.raises(InvalidArgumentError):
        index.search(np.zeros(DIM), k=1)
    with pytest.raises(InvalidArgumentError):
        index.search(np.ones(DIM), k=0)
    with pytest.raises(InvalidArgumentError):
        index.add([1], np.ones((1, DIM + 1)))


def test_an_empty_index_saves_and_loads(tmp_path, cat, monkeypatch):
    index = _open(tmp_path, cat)
    assert len(index) == 0 and index.path is not None
    monkeypatch.setattr(VectorIndex, "rebuild", lambda *a, **k: pytest.fail("an empty saved index must load"))
    again = _open(tmp_path, cat)
    assert len(again) == 0 and again.search(np.ones(DIM), k=3)[0].size == 0


def test_k_larger_than_ef_is_answered_completely(tmp_path, cat):
    _fill(cat, tmp_path, 300)
    index = _open(tmp_path, cat, params=IndexParams(M=8, ef_construction=64, ef=10, threads=1))
    ids, _ = index.search(np.ones(DIM), k=150)
    assert len(ids) == 150 and len(set(ids.tolist())) == 150
    assert index.ef == 10  # the temporary raise is undone


@pytest.mark.parametrize("exact_limit", [50_000, 0], ids=["exact-small-filter", "hnsw-filter"])
def test_filtered_search(tmp_path, cat, monkeypatch, exact_limit):
    monkeypatch.setattr(vi, "_EXACT_FILTER_LIMIT", exact_limit)
    vecs = _fill(cat, tmp_path, 300)
    index = _open(tmp_path, cat)
    ids_all = sorted(vecs)
    allowed = np.array(ids_all[::3] + [10**9], dtype=np.int64)  # includes an id the index does not have
    index.remove([ids_all[0]])
    query = vecs[ids_all[1]]  # not allowed itself
    ids, scores = index.search(query, k=10, filter_ids=allowed)
    assert len(ids) == 10 and set(ids.tolist()) <= set(allowed.tolist()) - {ids_all[0]}
    exact = sorted((float(vecs[i] @ query), i) for i in ids_all[3::3])[::-1][:10]
    assert ids[0] == exact[0][1] and scores[0] == pytest.approx(exact[0][0], abs=1e-5)
    assert index.search(query, k=10, filter_ids=[])[0].size == 0


# --- edits and catch-up ---------------------------------------------------------------------------------------------


def test_add_replace_remove_and_grow(tmp_path):
    index = VectorIndex.create_empty(tmp_path / "index", MODEL, DIM, PARAMS)
    rng = np.random.default_rng(1)
    v = _unit(rng, 100)
    index.add(np.arange(100), v)  # initial capacity 8: grows by doubling
    assert len(index) == 100 and index._index.get_max_elements() >= 100
    assert index.remove([3, 3, 5, 999]) == 2
    assert len(index) == 98
    assert 3 not in index.search(v[3], k=10)[0].tolist()
    index.add([3], v[50:51])  # a deleted label comes back with a new vector
    assert len(index) == 99
    ids, scores = index.search(v[50], k=2)
    assert set(ids.tolist()) == {3, 50} and scores[1] == pytest.approx(1.0, abs=1e-5)
    index.add([7], v[60:61])  # replacing a live label keeps the count
    assert len(index) == 99 and index.search(v[60], k=2)[0].tolist().count(7) == 1


def test_sync_follows_catalog_changes(tmp_path, cat):
    vecs = _fill(cat, tmp_path, 50)
    index = _open(tmp_path, cat)
    ids = sorted(vecs)
    photos = tmp_path / "photos"
    new_vec = _unit(np.random.default_rng(9), 1)[0]
    cat.record_embedding(photos / "0-1.jpg", MODEL, new_vec, size=2, mtime_ns=2)  # replaced (file edited)
    cat.delete_file(photos / "0-2.jpg")  # gone
    cat.record_failure(photos / "0-3.jpg", "broken now", size=3, mtime_ns=3)  # failed: vector dropped
    cat.remove_root(photos)
    cat.add_root(photos)
    added = _fill(cat, tmp_path, 5, seed=7)
    assert index.sync(cat) > 0
    assert len(index) == 5
    assert index.sync(cat) == 0  # nothing new
    got = index.search(next(iter(added.values())), k=10)[0]
    assert set(got.tolist()) == set(added) and not set(got.tolist()) & set(ids)


def test_sync_falls_back_to_id_comparison_when_the_log_was_pruned(tmp_path, cat):
    vecs = _fill(cat, tmp_path, 30)
    index = _open(tmp_path, cat)
    for i in range(10):
        cat.delete_file(tmp_path / "photos" / f"0-{i}.jpg")
    cat.prune_embedding_log(keep=0)
    assert cat.deleted_embedding_ids(MODEL, index._synced_seq) is None
    index.sync(cat)
    assert len(index) == 20
    assert set(index.search(np.ones(DIM), k=30)[0].tolist()) == set(sorted(vecs)[10:])


@posix_modes
def test_index_files_and_manifest_get_the_users_normal_mode(tmp_path, cat):
    _fill(cat, tmp_path, 30)
    with umask(0o022) as normal:
        index = _open(tmp_path, cat)
        index.remove([next(iter(cat.embeddings(MODEL)[0].tolist()))])
        assert index.save()
    modes = modes_of(tmp_path / "index")
    assert index.path.name in modes and index.manifest_path.name in modes
    assert set(modes.values()) == {normal}, modes  # 0644 like the user's other files, not 0600


def test_reopen_loads_and_catches_up_without_rebuilding(tmp_path, cat, monkeypatch):
    vecs = _fill(cat, tmp_path, 100)
    index = _open(tmp_path, cat)
    index.set_ef(77)
    index.remove([min(vecs)])  # the index may be ahead of the catalog: the catalog still wins on reopen
    assert index.save()
    manifest = json.loads(index.manifest_path.read_text())
    assert manifest["model_id"] == MODEL and manifest["dim"] == DIM and manifest["count"] == 100
    assert manifest["ef"] == 77 and manifest["file"] == index.path.name
    later = _fill(cat, tmp_path, 10, seed=3)
    cat.delete_file(tmp_path / "photos" / "0-5.jpg")

    def no_rebuild(*a, **k):
        raise AssertionError("a valid index must not be rebuilt")

    monkeypatch.setattr(VectorIndex, "rebuild", no_rebuild)
    again = _open(tmp_path, cat)
    assert again.ef == 77
    assert len(again) == 100 - 1 + 10 - 1
    fid = next(iter(later))
    assert again.search(later[fid], k=1)[0][0] == fid


def test_an_index_saved_with_another_M_is_rebuilt_with_the_new_one(tmp_path, cat, caplog):
    """Changing IndexParams.M in an update must rebuild existing users' indexes (manifest and header both say M)."""
    vecs = _fill(cat, tmp_path, 60)
    old = _open(tmp_path, cat)
    old_file = old.path
    newer = IndexParams(M=12, ef_construction=64, ef=32, initial_capacity=8, threads=1)
    with caplog.at_level(logging.WARNING):
        again = _open(tmp_path, cat, params=newer)
    assert "manifest M is 8, expected 12" in caplog.text
    assert json.loads(again.manifest_path.read_text())["M"] == 12 and again.path != old_file
    index_files.check_hnsw_header(again.path, DIM, 12, 60)
    fid = next(iter(vecs))
    assert again.search(vecs[fid], k=1)[0][0] == fid


def test_mostly_deleted_index_is_compacted_on_open(tmp_path, cat, monkeypatch):
    monkeypatch.setattr(vi, "COMPACT_MIN_DELETED", 5)
    vecs = _fill(cat, tmp_path, 40)
    index = _open(tmp_path, cat)
    for i in range(30):
        cat.delete_file(tmp_path / "photos" / f"0-{i}.jpg")
    index.sync(cat)
    assert index.save() and len(index._deleted) == 30
    again = _open(tmp_path, cat)
    assert len(again) == 10 and again._deleted == set() and again._index.element_count == 10
    assert set(again.search(np.ones(DIM), k=40)[0].tolist()) == set(sorted(vecs)[30:])


def test_rebuild_progress_and_model_switch(tmp_path, cat):
    _fill(cat, tmp_path, 20)
    _fill(cat, tmp_path, 12, seed=5, model="other/model", dim=8)
    seen = []
    a = _open(tmp_path, cat, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (20, 20)
    b = VectorIndex.open_or_rebuild(tmp_path / "index", "other/model", 8, cat, params=PARAMS)
    assert len(a) == 20 and len(b) == 12 and a.path != b.path
    assert len(list((tmp_path / "index").glob("*.manifest.json"))) == 2


# --- damage and atomic saves ----------------------------------------------------------------------------------------


def _saved(tmp_path, cat, n=120):
    vecs = _fill(cat, tmp_path, n)
    index = _open(tmp_path, cat)
    assert index.path is not None and index.path.exists()
    return vecs, index


def _truncate(index):
    data = index.path.read_bytes()
    index.path.write_bytes(data[: len(data) // 2])


def _flip(index):
    data = bytearray(index.path.read_bytes())
    for pos in (200, len(data) // 2, len(data) - 3):
        data[pos] ^= 0xFF
    index.path.write_bytes(bytes(data))


def _wrong_dim(index):
    """A well-formed hnswlib file of another dimension with a manifest that matches it byte for byte (as if the
    manifest were trusted blindly): the header check must still catch it."""
    other = hnswlib.Index(space="cosine", dim=DIM * 2)
    other.init_index(200, M=PARAMS.M, ef_construction=32)
    other.add_items(_unit(np.random.default_rng(0), 120, DIM * 2), np.arange(120))
    other.save_index(str(index.path))
    manifest = json.loads(index.manifest_path.read_text())
    manifest["file_size"] = index.path.stat().st_size
    manifest["sha256"] = index_files.sha256_of(index.path)
    index.manifest_path.write_text(json.dumps(manifest))


def _no_manifest(index):
    index.manifest_path.unlink()


def _other_model(index):
    manifest = json.loads(index.manifest_path.read_text())
    manifest["model_id"] = "someone/else"
    index.manifest_path.write_text(json.dumps(manifest))


def _garbage_manifest(index):
    index.manifest_path.write_text("{not json")


def _file_missing(index):
    index.path.unlink()


@pytest.mark.parametrize(
    "damage", [_truncate, _flip, _wrong_dim, _no_manifest, _other_model, _garbage_manifest, _file_missing]
)
def test_damaged_index_is_rebuilt_and_never_handed_to_hnswlib(tmp_path, cat, monkeypatch, caplog, damage):
    vecs, index = _saved(tmp_path, cat)
    damaged_name = index.path.name
    damage(index)
    spy = _Spy(monkeypatch)
    with caplog.at_level(logging.INFO, logger="vsearch_app.core.store.vector_index"):
        again = _open(tmp_path, cat)
    assert damaged_name not in spy.loaded
    # the only loads allowed are the post-save verification of the new (temp) file
    assert all(name.startswith(".") for name in spy.loaded), spy.loaded
    assert "rebuild" in caplog.text or "building it" in caplog.text
    assert len(again) == len(vecs)
    fid, v = next(iter(vecs.items()))
    assert again.search(v, k=1)[0][0] == fid
    # and the rebuilt index was saved: a third open loads it without rebuilding
    monkeypatch.setattr(VectorIndex, "rebuild", lambda *a, **k: pytest.fail("rebuilt twice"))
    assert len(_open(tmp_path, cat)) == len(vecs)


def test_header_check_rejects_crafted_headers(tmp_path):
    graph = hnswlib.Index(space="cosine", dim=DIM)
    graph.init_index(10, M=8)
    graph.add_items(_unit(np.random.default_rng(0), 4), np.arange(4))
    path = tmp_path / "x.hnsw"
    graph.save_index(str(path))
    index_files.check_hnsw_header(path, DIM, 8, 4)
    for wrong in [dict(dim=DIM + 1), dict(M=16), dict(count=5)]:
        args = dict(dim=DIM, M=8, count=4) | wrong
        with pytest.raises(index_files.IndexDamaged):
            index_files.check_hnsw_header(path, **args)
    data = bytearray(path.read_bytes())
    data[16:24] = (10**12).to_bytes(8, "little")  # absurd element count
    path.write_bytes(bytes(data))
    with pytest.raises(index_files.IndexDamaged):
        index_files.check_hnsw_header(path, DIM, 8, 10**12)
    path.write_bytes(b"\0" * 10)
    with pytest.raises(index_files.IndexDamaged, match="shorter"):
        index_files.check_hnsw_header(path, DIM, 8, 4)


def test_full_disk_keeps_the_old_index(tmp_path, cat, monkeypatch, caplog):
    vecs, index = _saved(tmp_path, cat)
    old_file, old_manifest = index.path, index.manifest_path.read_bytes()
    index.add([10**6], _unit(np.random.default_rng(5), 1))

    def enospc(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", enospc)
    with caplog.at_level(logging.INFO):  # logged quietly: the library raises DiskFullError from save_error
        assert index.save() is False
    monkeypatch.undo()
    assert "No space left on device" in caplog.text and "previous index is kept" in caplog.text
    assert isinstance(index.save_error, OSError) and index.save_error.errno == errno.ENOSPC
    assert index.manifest_path.read_bytes() == old_manifest and old_file.exists() and index.path == old_file
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == sorted([old_file.name, index.manifest_path.name])
    assert len(_open(tmp_path, cat)) == len(vecs)


def test_a_silently_short_write_is_caught_by_verification(tmp_path, cat, monkeypatch, caplog):
    """hnswlib reports no error when the disk fills up mid-write: the read-back check must notice."""
    vecs, index = _saved(tmp_path, cat)
    old_manifest = index.manifest_path.read_bytes()
    real_save = hnswlib.Index.save_index

    class ShortWrite(hnswlib.Index):
        def save_index(self, path):
            real_save(self, path)
            with open(path, "r+b") as fh:
                fh.truncate(os.path.getsize(path) // 3)

    graph = ShortWrite(space="cosine", dim=DIM)
    graph.init_index(1000, M=PARAMS.M, ef_construction=PARAMS.ef_construction)
    ids, vectors = cat.embeddings(MODEL)
    graph.add_items(vectors, ids)
    index._index = graph
    with caplog.at_level(logging.ERROR):
        assert index.save() is False
    assert index.manifest_path.read_bytes() == old_manifest
    assert len(_open(tmp_path, cat)) == len(vecs)


def test_crash_leftovers_are_cleaned_up(tmp_path, cat):
    _, index = _saved(tmp_path, cat)
    stale_tmp = tmp_path / "index" / f".{index.slug}.hnsw.abc.tmp"
    stale_tmp.write_bytes(b"half")
    orphan = tmp_path / "index" / f"{index.slug}.0123456789abcdef.hnsw"
    orphan.write_bytes(b"old")
    unrelated = tmp_path / "index" / "notes.txt"
    unrelated.write_text("keep me")
    young = tmp_path / "index" / f".{index.slug}.hnsw.def.tmp"  # maybe another process saving right now
    young.write_bytes(b"in flight")
    hour_ago = time.time() - 3600
    for leftover in (stale_tmp, orphan, unrelated):
        os.utime(leftover, (hour_ago, hour_ago))
    again = _open(tmp_path, cat)
    assert not stale_tmp.exists() and not orphan.exists() and unrelated.exists() and again.path.exists()
    assert young.exists()


def test_a_save_by_another_process_between_manifest_and_file_read_is_not_damage(tmp_path, cat, monkeypatch):
    """Process A reads the manifest, process B saves a new index and removes the old file, A opens the file."""
    _, index = _saved(tmp_path, cat)
    _fill(cat, tmp_path, 10, seed=4)
    writer = _open(tmp_path, cat)  # "process B", same folder
    real_read = index_files.read_manifest
    calls = {"n": 0}
    extra = _unit(np.random.default_rng(1), 1)

    def racing_read(path):
        manifest = real_read(path)
        calls["n"] += 1
        if calls["n"] == 1:  # B saves right after A read the manifest
            writer.add([10**6], extra)
            assert writer.save()
            assert not (path.parent / manifest["file"]).exists()
        return manifest

    monkeypatch.setattr(index_files, "read_manifest", racing_read)
    monkeypatch.setattr(VectorIndex, "rebuild", lambda *a, **k: pytest.fail("a concurrent save is not damage"))
    reader = _open(tmp_path, cat)
    assert calls["n"] >= 2 and reader.path == writer.path
    assert reader.search(extra[0], k=1)[0].tolist() == [10**6]  # it loaded B's file, not a rebuild of the catalog


# --- concurrency ----------------------------------------------------------------------------------------------------


def test_rwlock_many_readers_or_one_writer():
    lock = ReadWriteLock()
    state = {"readers": 0, "max_readers": 0, "writer": False}
    guard = threading.Lock()
    errors = []

    def reader():
        for _ in range(200):
            with lock.read():
                with guard:
                    if state["writer"]:
                        errors.append("reader inside a write")
                    state["readers"] += 1
                    state["max_readers"] = max(state["max_readers"], state["readers"])
                time.sleep(0.0002)
                with guard:
                    state["readers"] -= 1

    def writer():
        for _ in range(50):
            with lock.write():
                with guard:
                    if state["readers"] or state["writer"]:
                        errors.append("writer not alone")
                    state["writer"] = True
                time.sleep(0.0002)
                with guard:
                    state["writer"] = False

    threads = [threading.Thread(target=reader) for _ in range(4)] + [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    assert state["max_readers"] > 1  # readers do run together


def test_searches_run_while_a_writer_adds(tmp_path):
    index = VectorIndex.create_empty(tmp_path / "index", MODEL, DIM, PARAMS)
    rng = np.random.default_rng(2)
    vectors = _unit(rng, 2000)
    index.add(np.arange(100), vectors[:100])
    errors: list[BaseException] = []
    done = threading.Event()

    def writer():
        try:
            for start in range(100, 2000, 50):
                index.add(np.arange(start, start + 50), vectors[start : start + 50])
                if start % 500 == 0:
                    index.remove(np.arange(start - 10, start))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()

    def searcher():
        try:
            while not done.is_set():
                ids, scores = index.search(vectors[int(rng.integers(0, 100))], k=10)
                assert len(ids) == 10 and np.all(np.isfinite(scores))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=searcher), threading.Thread(target=searcher)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    assert len(index) == 2000 - 30


_SAVER = """
import sys
import numpy as np
from vsearch_app.core.store.vector_index import IndexParams, VectorIndex
index = VectorIndex.create_empty(sys.argv[1], "test/model", 16, IndexParams(M=8, ef_construction=32, threads=1))
rng = np.random.default_rng(0)
label = 0
while True:
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    index.add(np.arange(label, label + 300), vectors)
    label += 300
    assert index.save()
    print("saved", label, flush=True)
"""


class _NoChanges:
    """An EmbeddingSource that reports nothing new, so opening must not need the catalog at all."""

    def embedding_seq(self):
        return 0

    def iter_embeddings(self, model_id, chunk_size=0, since_seq=0):
        return iter(())

    def embedding_ids(self, model_id):
        return np.zeros(0, dtype=np.int64)

    def deleted_embedding_ids(self, model_id, since_seq):
        return np.zeros(0, dtype=np.int64)


def test_kill_9_during_saves_never_leaves_a_mismatched_pair(tmp_path, monkeypatch):
    """The manifest replace is the commit point: after a SIGKILL at any moment the saved index loads as it is."""
    import signal
    import subprocess
    import sys

    folder = tmp_path / "index"
    rng = np.random.default_rng(3)
    monkeypatch.setattr(VectorIndex, "rebuild", lambda *a, **k: pytest.fail("a kill during save forced a rebuild"))
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(folder)], stdout=subprocess.PIPE)
        first = proc.stdout.readline()
        assert first.startswith(b"saved"), first
        time.sleep(float(rng.uniform(0.0, 0.5)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        index = VectorIndex.open_or_rebuild(folder, MODEL, DIM, _NoChanges(), params=IndexParams(M=8, threads=1))
        assert len(index) % 300 == 0 and len(index) >= 300
        assert len(list(folder.glob("*.manifest.json"))) == 1
