"""The vector index's handling of out-of-distribution queries (text-like: far from every photo, between clusters):
pivots tell them apart, and they are searched with the wider ``ood_ef``."""

from __future__ import annotations

import numpy as np

from vsearch_app.core.store.vector_index import IndexParams, VectorIndex

DIM = 32
MODEL = "test/model"
# A deliberately weak graph and beam, so that the plain search visibly misses on this small data set.
PLAIN = IndexParams(M=4, ef_construction=16, ef=10, ood_ef=100, threads=1, ood_min_size=10**9, ood_pivot_every=16)
OOD = IndexParams(M=4, ef_construction=16, ef=10, ood_ef=100, threads=1, ood_min_size=100, ood_pivot_every=16)


def _clustered(seed: int = 0, n: int = 3000, low: int = 8, clusters: int = 30):
    """Photos: tight clusters in an 8-d subspace (+ a shared offset, + a little noise). Text-like queries: the
    midpoint of two cluster centres plus a large component orthogonal to the photos (a modality gap), so that
    their best cosine is low and their true top 10 are spread over two clusters. Image-like queries: photos
    with a little noise."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((DIM, low)))[0]
    centres = rng.standard_normal((clusters, low))
    centres[:, 0] += 3.0
    labels = rng.integers(0, clusters, n)
    x = (centres[labels] + 0.25 * rng.standard_normal((n, low))) @ basis.T + 0.01 * rng.standard_normal((n, DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pairs = rng.integers(0, clusters, (20, 2))
    mid = 0.5 * (centres[pairs[:, 0]] + centres[pairs[:, 1]]) @ basis.T
    mid /= np.linalg.norm(mid, axis=1, keepdims=True)
    gap = rng.standard_normal(DIM)
    gap -= basis @ (basis.T @ gap)
    gap /= np.linalg.norm(gap)
    text = 0.3 * mid + 0.95 * gap
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    image = x[:20] + 0.05 * rng.standard_normal((20, DIM))
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    return x.astype(np.float32), text.astype(np.float32), image.astype(np.float32)


def _index(tmp_path, params: IndexParams, x: np.ndarray) -> VectorIndex:
    index = VectorIndex.create_empty(tmp_path / "index", MODEL, DIM, params)
    index.add(np.arange(len(x)), x)
    index.refresh_pivots()
    return index


def _hits(index: VectorIndex, queries: np.ndarray, x: np.ndarray) -> list[int]:
    truth = np.argsort(-(queries @ x.T), axis=1)[:, :10]
    return [len(set(index.search(q, 10)[0].tolist()) & set(t.tolist())) for q, t in zip(queries, truth, strict=True)]


def test_text_like_queries_are_told_apart_from_image_like_ones(tmp_path):
    x, text, image = _clustered()
    index = _index(tmp_path, OOD, x)
    assert 0 < index.pivot_count < len(x)
    assert all(index._looks_out_of_distribution(q) for q in text)
    assert not any(index._looks_out_of_distribution(q) for q in image)
    assert not any(index._looks_out_of_distribution(v) for v in x[::100])


def test_out_of_distribution_queries_find_what_the_plain_search_misses(tmp_path):
    x, text, image = _clustered()
    plain = _hits(_index(tmp_path / "plain", PLAIN, x), text, x)
    wider = _hits(_index(tmp_path / "ood", OOD, x), text, x)
    assert sum(plain) < 0.7 * 10 * len(text)  # the weak beam misses many (the case this is for)
    assert sum(wider) > 0.9 * 10 * len(text)
    recovered = sum(p < 10 and w == 10 for p, w in zip(plain, wider, strict=True))
    assert recovered >= 5  # queries whose exact top 10 only the out-of-distribution search returns


def test_only_out_of_distribution_queries_pay_for_the_wider_search(tmp_path, monkeypatch):
    x, text, image = _clustered()
    index = _index(tmp_path, OOD, x)
    asked: list[int] = []  # results asked of hnswlib per search: its beam is max(ef, that)

    class Recorder:  # hnswlib.Index's methods are read-only: wrap the graph to see every query and ef change
        def __init__(self, graph) -> None:
            self.graph = graph

        def knn_query(self, query, k=1, **kwargs):
            asked.append(k)
            return self.graph.knn_query(query, k=k, **kwargs)

        def set_ef(self, ef: int) -> None:
            raise AssertionError("a search must not change the graph's shared ef")

        def __getattr__(self, name: str):
            return getattr(self.graph, name)

    def no_writer():
        raise AssertionError("searches run under the read lock only, so they never wait for the indexer")

    monkeypatch.setattr(index, "_index", Recorder(index._index))
    monkeypatch.setattr(index._lock, "write", no_writer)
    for q in image:
        ids, scores = index.search(q, 10)
        assert len(ids) == 10
    assert set(asked) == {10}  # image-like: the plain search, beam = ef
    asked.clear()
    ids, scores = index.search(text[0], 10)
    assert asked == [OOD.ood_ef] and len(ids) == 10  # widened for this query only, the best 10 kept
    assert np.all(np.diff(scores) <= 1e-6)
    asked.clear()
    ids, _ = index.search(text[0], 150)  # k above ood_ef: the beam follows k
    assert len(ids) == 150 and asked == [150]


def test_asking_for_more_results_is_the_same_search_as_a_wider_ef(tmp_path):
    """The trick search() relies on (hnswlib's beam is max(ef, k)), checked on this hnswlib build."""
    x, text, _ = _clustered()
    index = _index(tmp_path, OOD, x)
    graph = index._index
    graph.set_ef(OOD.ood_ef)
    wide = graph.knn_query(text, k=10)[0]
    graph.set_ef(OOD.ef)
    assert np.array_equal(graph.knn_query(text, k=OOD.ood_ef)[0][:, :10], wide)
    assert not np.array_equal(graph.knn_query(text, k=10)[0], wide)  # the narrow beam does differ here


def test_deleted_photos_are_never_returned_to_out_of_distribution_queries(tmp_path):
    x, text, _ = _clustered()
    index = _index(tmp_path, OOD, x)
    first, _ = index.search(text[0], 10)
    index.remove(first[:5])
    again, scores = index.search(text[0], 10)
    assert len(again) == 10 and not set(first[:5].tolist()) & set(again.tolist())
    assert np.all(np.diff(scores) <= 1e-6)  # best first


def test_no_pivots_below_the_minimum_size_and_after_shrinking(tmp_path):
    x, text, _ = _clustered(n=600)
    params = IndexParams(M=4, ef_construction=16, ef=10, ood_ef=100, threads=1, ood_min_size=500, ood_pivot_every=16)
    small = _index(tmp_path / "small", params, x[:400])
    assert small.pivot_count == 0 and not small._looks_out_of_distribution(text[0])
    index = _index(tmp_path / "big", params, x)
    assert index.pivot_count == 600 // 16
    index.remove(np.arange(200))
    index.refresh_pivots()
    assert index.pivot_count == 0


def _record(cat, tmp_path, x: np.ndarray, start: int) -> None:
    with cat.transaction():
        for i, v in enumerate(x):
            cat.record_embedding(tmp_path / "photos" / f"{start + i}.jpg", MODEL, v, size=1, mtime_ns=1)


def test_pivots_are_drawn_on_open_after_rebuild_and_load_and_follow_growth(tmp_path, cat):
    x, text, _ = _clustered()
    params = IndexParams(M=4, ef_construction=16, ef=10, ood_ef=100, threads=1, ood_min_size=500, ood_pivot_every=16)
    _record(cat, tmp_path, x[:1000], 0)
    built = VectorIndex.open_or_rebuild(tmp_path / "index", MODEL, DIM, cat, params=params)
    assert built.pivot_count == 1000 // 16 and built._looks_out_of_distribution(text[0])
    built.close()
    loaded = VectorIndex.open_or_rebuild(tmp_path / "index", MODEL, DIM, cat, params=params)  # from the saved file
    assert loaded.pivot_count == 1000 // 16
    _record(cat, tmp_path, x[1000:1400], 1000)
    loaded.sync(cat)
    assert loaded.pivot_count == 1000 // 16  # grown by 40%: the pivots are kept
    _record(cat, tmp_path, x[1400:], 1400)
    loaded.sync(cat)
    assert loaded.pivot_count == len(x) // 16  # grown by more than half: drawn again
