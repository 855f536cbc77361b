"""`--limit N` returns N hits whenever the library has N searchable photos (issue 10, defect 4).

hnswlib cannot always reach every entry of its graph: near-duplicate vectors (a burst of shots) and replaced vectors
leave parts of it unreachable from the entry point, and a search asking for more results than it reaches raises.
The index used to ask again for half as many, so `search --limit 5000` over 3,088 photos returned 2,316 (one of the
two shards gave half of its 1,544). It now answers such a search exactly.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.core.library_fakes import DIM, FakeEmbedder
from vsearch_app.core.engine.embedder import ImageEmbeddings
from vsearch_app.core.library.library import Library
from vsearch_app.core.store import vector_index
from vsearch_app.core.store.sharded_index import ShardedIndex
from vsearch_app.core.store.vector_index import IndexParams, VectorIndex

BASE = np.random.default_rng(7).standard_normal(16).astype(np.float32)


def _unreachable_graph(tmp_path, n: int = 300) -> tuple[VectorIndex, np.ndarray]:
    """n identical vectors, each replaced once (single-threaded adds, so the graph is the same every run)."""
    index = VectorIndex.create_empty(tmp_path, "m", 16, IndexParams(threads=1))
    ids = np.arange(1, n + 1)
    for _ in range(2):
        index.add(ids, np.tile(BASE, (n, 1)))
    return index, ids


def test_hnswlib_alone_cannot_reach_every_entry_of_this_graph(tmp_path):
    """The precondition of the tests below: they really exercise the exact fallback."""
    index, ids = _unreachable_graph(tmp_path)
    with pytest.raises(RuntimeError):
        index._index.knn_query(BASE, k=len(ids))


@pytest.mark.parametrize("k", [1, 10, 299, 300, 301, 5000])
def test_search_returns_min_k_and_n_even_when_the_graph_cannot_reach_them(tmp_path, k):
    index, ids = _unreachable_graph(tmp_path)
    found, scores = index.search(BASE, k=k)
    assert len(found) == min(k, len(ids)) == len(set(found.tolist()))
    assert set(found.tolist()) <= set(ids.tolist())
    assert np.all(np.diff(scores) <= 1e-6) and scores[0] == pytest.approx(1.0, abs=1e-4)


def test_exact_fallback_leaves_out_deleted_entries_and_keeps_the_best_first(tmp_path):
    index, ids = _unreachable_graph(tmp_path)
    index.remove(ids[:50])
    other = np.random.default_rng(3).standard_normal(16).astype(np.float32)
    index.add([1000], [other])  # the one vector unlike the others: last for BASE, first for ``other``
    found, _ = index.search(BASE, k=1000)
    assert len(found) == 251 and not set(found.tolist()) & set(ids[:50].tolist()) and found[-1] == 1000
    found, _ = index.search(other, k=400)
    assert found[0] == 1000 and len(found) == 251


def test_large_filter_through_hnswlib_still_returns_every_allowed_photo(tmp_path, monkeypatch):
    monkeypatch.setattr(vector_index, "_EXACT_FILTER_LIMIT", 10)  # make 150 ids a "large" filter
    index, ids = _unreachable_graph(tmp_path)
    allowed = np.concatenate([ids[::2], [99_999]])  # an id not in the graph (a pending photo) is ignored
    found, _ = index.search(BASE, k=500, filter_ids=allowed)
    assert sorted(found.tolist()) == sorted(ids[::2].tolist())


def test_sharded_index_returns_min_k_and_n(tmp_path):
    rng = np.random.default_rng(5)
    index = ShardedIndex.create_empty(tmp_path, "m", 16, IndexParams(threads=1, ef=16))
    ids = np.arange(1, 401)
    for _ in range(2):
        index.add(ids, BASE + 1e-4 * rng.standard_normal((len(ids), 16)).astype(np.float32))
    index.remove(ids[:7])
    for k in (5, 16, 17, 392, 393, 394, 10_000):  # below, at and above ef and the index size
        found, _ = index.search(BASE, k=k)
        assert len(found) == min(k, 393) == len(set(found.tolist()))


class BurstEmbedder(FakeEmbedder):
    """One vector for every photo, as for a burst of near-identical shots: the graph hnswlib builds over them
    cannot reach them all (before the exact fallback, a search for 239 of these 240 returned as few as 139)."""

    def embed_images(self, sources, **kwargs):
        result = super().embed_images(sources, **kwargs)
        vectors = np.tile(BASE[:DIM] / np.linalg.norm(BASE[:DIM]), (len(result.indices), 1))
        return ImageEmbeddings(vectors.astype(np.float32), result.indices, result.failures)


def _photo(path, tag: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"IMG" + tag.encode() * 8)
    return path


@pytest.mark.parametrize("embedder_class", [FakeEmbedder, BurstEmbedder], ids=["spread", "burst"])
def test_library_search_returns_min_limit_and_searchable(tmp_path, embedder_class):
    """Deleted, edited (re-embedded), offline and failed photos, then several limits including more than the
    index holds: exactly min(limit, searchable) distinct, online, best-first hits each time."""
    home, away = tmp_path / "photos", tmp_path / "drive"
    kept = [_photo(home / f"p{i:03d}.jpg", f"home{i}") for i in range(260)]
    for i in range(40):
        _photo(away / f"q{i:03d}.jpg", f"away{i}")
    (home / "broken.jpg").write_bytes(b"BAD image")
    lib = Library(tmp_path / "data", model_id="fake-model", embedder_factory=embedder_class, commit_every=32)
    try:
        lib.add_folder(home)
        lib.add_folder(away)
        lib.index()
        for path in kept[:20]:
            path.unlink()
        for i, path in enumerate(kept[20:50]):
            _photo(path, f"edited{i}")
        lib.index()
        os.rename(away, tmp_path / "unplugged")
        lib.reconcile()
        counts = lib.catalog.counts()
        assert counts == {"indexed": 240, "failed": 1, "offline": 40, "pending": 0}
        assert len(lib.vector_index()) == 280  # offline photos keep their vectors; they are skipped at search
        for limit in (1, 20, 239, 240, 241, 280, 5000):
            hits = lib.search("anything", limit=limit)
            paths = [str(h.path) for h in hits]
            assert len(hits) == min(limit, 240) == len(set(paths)), limit
            assert all(p.startswith(str(home)) for p in paths)
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    finally:
        lib.close()
