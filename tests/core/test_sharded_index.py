"""The sharded vector index: routing by file id, parallel search merged exactly, per-shard saves, damage and
catch-up, and indexes saved before shards existed."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from vsearch_app.core.store import sharded_index as si
from vsearch_app.core.store.sharded_index import ShardedIndex, ShardOfCatalog, saved_index_bytes, shard_slug
from vsearch_app.core.store.vector_index import IndexParams, VectorIndex
from vsearch_app.errors import InvalidArgumentError

DIM = 16
MODEL = "test/model"
PARAMS = IndexParams(shards=2, M=8, ef_construction=64, ef=64, initial_capacity=8, threads=1)


def _fill(cat, tmp_path, n: int, seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with cat.transaction():
        return {cat.record_embedding(tmp_path / "photos" / f"{seed}-{i}.jpg", MODEL, v, size=1, mtime_ns=1): v
                for i, v in enumerate(vectors)}  # fmt: skip


def _open(tmp_path, cat, params: IndexParams = PARAMS, **kw) -> ShardedIndex:
    return ShardedIndex.open_or_rebuild(tmp_path / "index", MODEL, DIM, cat, params=params, **kw)


def _exact(vecs: dict[int, np.ndarray], query: np.ndarray, k: int) -> list[int]:
    ids = np.array(list(vecs))
    scores = np.stack(list(vecs.values())) @ (query / np.linalg.norm(query))
    return ids[np.argsort(-scores, kind="stable")[:k]].tolist()


def test_each_photo_lives_in_the_shard_of_its_id_and_search_merges_them(tmp_path, cat):
    vecs = _fill(cat, tmp_path, 300)
    index = _open(tmp_path, cat)
    assert index.shard_count == 2 and len(index) == 300
    for i, shard in enumerate(index.shards):
        held = {fid for fid in vecs if shard.search(vecs[fid], k=1)[0].tolist() == [fid]}
        assert held == {fid for fid in vecs if fid % 2 == i}
    rng = np.random.default_rng(5)
    for query in rng.standard_normal((20, DIM)).astype(np.float32):
        ids, scores = index.search(query, k=10)
        assert ids.tolist() == _exact(vecs, query, 10)  # tiny graphs at ef 64: exact
        assert ids.dtype == np.int64 and scores.dtype == np.float32 and np.all(np.diff(scores) <= 1e-6)
    everything, _ = index.search(np.ones(DIM), k=1000)  # more than either shard holds
    assert sorted(everything.tolist()) == sorted(vecs)
    index.close()


def test_one_core_searches_the_shards_in_turn_with_the_same_results(tmp_path, cat, monkeypatch):
    vecs = _fill(cat, tmp_path, 120)
    parallel = _open(tmp_path, cat)
    monkeypatch.setattr(si.os, "cpu_count", lambda: 1)
    serial = _open(tmp_path, cat)
    assert parallel._pool is not None and serial._pool is None
    for fid, v in list(vecs.items())[:10]:
        a, b = parallel.search(v, k=7), serial.search(v, k=7)
        assert a[0].tolist() == b[0].tolist() and a[0][0] == fid
        np.testing.assert_array_equal(a[1], b[1])
    parallel.close()
    serial.close()


def test_edits_route_by_id_and_a_bad_batch_changes_no_shard(tmp_path, cat):
    index = ShardedIndex.create_empty(tmp_path / "index", MODEL, DIM, PARAMS)
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((6, DIM)).astype(np.float32)
    index.add([10, 11, 12, 13, 14, 15], vectors)
    assert [len(s) for s in index.shards] == [3, 3]
    assert index.remove([11, 12, 99]) == 2 and len(index) == 4
    assert 11 not in index.search(vectors[1], k=6)[0].tolist()
    with pytest.raises(InvalidArgumentError):
        index.add([20, -1], vectors[:2])  # -1 is refused before id 20 lands in shard 0
    with pytest.raises(InvalidArgumentError):
        index.add([20, 21], np.ones((2, DIM + 1)))
    assert len(index) == 4
    for bad in (np.ones(DIM + 1), np.zeros(DIM)):
        with pytest.raises(InvalidArgumentError):
            index.search(bad, k=1)
    with pytest.raises(InvalidArgumentError):
        index.search(np.zeros(DIM), k=1, filter_ids=[])  # the query is checked even when the filter names nothing
    assert index.search(np.ones(DIM), k=1, filter_ids=[])[0].size == 0
    index.close()


def test_filtered_search_covers_every_shard(tmp_path, cat):
    vecs = _fill(cat, tmp_path, 200)
    index = _open(tmp_path, cat)
    allowed = [fid for fid in vecs if fid % 5 == 0]  # ids in both shards
    query = np.random.default_rng(2).standard_normal(DIM).astype(np.float32)
    ids, _ = index.search(query, k=8, filter_ids=allowed)
    assert ids.tolist() == _exact({f: vecs[f] for f in allowed}, query, 8)
    odd_only = [fid for fid in allowed if fid % 2]
    assert set(index.search(query, k=50, filter_ids=odd_only)[0].tolist()) == set(odd_only)
    assert index.search(query, k=3, filter_ids=[10**9])[0].size == 0
    index.close()


def test_saved_shards_load_without_rebuilding_and_catch_up_with_the_catalog(tmp_path, cat, monkeypatch):
    vecs = _fill(cat, tmp_path, 150)
    index = _open(tmp_path, cat)
    assert index.save()
    files = index.files
    assert len(files) == 2 and all(f.name.startswith(shard_slug(MODEL, i, 2) + ".") for i, f in enumerate(files))
    assert saved_index_bytes(tmp_path / "index", MODEL) == index.size_bytes() == sum(f.stat().st_size for f in files)
    index.close()
    more = _fill(cat, tmp_path, 40, seed=1)
    gone = [cat.delete_file(tmp_path / "photos" / f"0-{i}.jpg") for i in range(7)]  # in both shards
    assert {fid % 2 for fid in gone} == {0, 1}
    monkeypatch.setattr(VectorIndex, "rebuild", lambda *a, **k: pytest.fail("valid shards must load"))
    again = _open(tmp_path, cat)
    assert len(again) == 150 + 40 - 7
    for fid in gone:
        assert fid not in again.search(vecs[fid], k=5)[0].tolist()
    fid = next(iter(more))
    assert again.search(more[fid], k=1)[0].tolist() == [fid]
    again.close()


def test_a_damaged_shard_is_rebuilt_alone(tmp_path, cat, monkeypatch):
    vecs = _fill(cat, tmp_path, 120)
    index = _open(tmp_path, cat)
    assert index.save()
    damaged = index.shards[1].path
    index.close()
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    rebuilt: list[str] = []
    real_rebuild = VectorIndex.rebuild

    def spy(self, *args, **kwargs):
        rebuilt.append(self.slug)
        return real_rebuild(self, *args, **kwargs)

    monkeypatch.setattr(VectorIndex, "rebuild", spy)
    again = _open(tmp_path, cat)
    assert rebuilt == [shard_slug(MODEL, 1, 2)]
    assert len(again) == len(vecs)
    for fid, v in list(vecs.items())[:10]:
        assert again.search(v, k=1)[0].tolist() == [fid]
    again.close()


def test_a_crash_between_two_shard_saves_is_caught_up_on_open(tmp_path, cat):
    _fill(cat, tmp_path, 60)
    index = _open(tmp_path, cat)
    assert index.save()
    more = _fill(cat, tmp_path, 30, seed=3)
    index.sync(cat)
    assert index.shards[0].save()  # the process dies before shard 1 is saved
    index.close()
    again = _open(tmp_path, cat)
    assert len(again) == 90
    for fid, v in more.items():
        assert again.search(v, k=1)[0].tolist() == [fid]
    again.close()


def test_an_index_saved_before_shards_is_used_as_one_shard(tmp_path, cat, monkeypatch):
    vecs = _fill(cat, tmp_path, 80)
    single = VectorIndex.open_or_rebuild(tmp_path / "index", MODEL, DIM, cat, params=PARAMS)  # the old layout
    assert single.save() and single.path.name.startswith(shard_slug(MODEL, 0, 1) + ".")
    single.close()
    monkeypatch.setattr(VectorIndex, "rebuild", lambda *a, **k: pytest.fail("the old index must be kept"))
    index = _open(tmp_path, cat)
    assert index.shard_count == 1 and len(index) == 80
    fid = next(iter(vecs))
    assert index.search(vecs[fid], k=1)[0].tolist() == [fid]
    assert saved_index_bytes(tmp_path / "index", MODEL) == index.size_bytes() > 0
    index.close()


def test_rebuild_progress_counts_over_all_shards(tmp_path, cat):
    _fill(cat, tmp_path, 100)
    seen: list[tuple[int, int]] = []
    index = _open(tmp_path, cat, progress=lambda done, total: seen.append((done, total)))
    assert seen and {total for _, total in seen} == {100}
    assert [done for done, _ in seen] == sorted(done for done, _ in seen) and seen[-1][0] == 100
    seen.clear()
    assert index.rebuild(cat, progress=lambda done, total: seen.append((done, total))) == 100
    assert {total for _, total in seen} == {100} and seen[-1][0] == 100
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    index.close()


def test_shard_view_of_the_catalog_keeps_only_its_ids(tmp_path, cat):
    vecs = _fill(cat, tmp_path, 50)
    view = ShardOfCatalog(cat, 1, 3)
    assert view.embedding_ids(MODEL).tolist() == sorted(fid for fid in vecs if fid % 3 == 1)
    chunks = list(view.iter_embeddings(MODEL, chunk_size=4))
    ids = np.concatenate([c[0] for c in chunks])
    assert ids.tolist() == sorted(fid for fid in vecs if fid % 3 == 1)
    for chunk_ids, chunk_vectors in chunks:
        for fid, v in zip(chunk_ids.tolist(), chunk_vectors, strict=True):
            np.testing.assert_allclose(v, vecs[fid], rtol=1e-6)
    assert view.embedding_seq() == cat.embedding_seq()


def test_search_parameters_reach_every_shard(tmp_path, cat):
    _fill(cat, tmp_path, 30)
    index = _open(tmp_path, cat)
    index.params = replace(index.params, ood_ef=999)
    assert all(shard.params.ood_ef == 999 for shard in index.shards)
    index.set_ef(77)
    assert index.ef == 77 and all(shard.ef == 77 for shard in index.shards)
    manifest = json.loads(index.shards[0].manifest_path.read_text())
    assert manifest["count"] == len(index.shards[0])
    index.close()
