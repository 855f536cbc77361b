"""Waypoints: hidden vectors that link groups of photos in the vector index's graph (core/store/waypoints.py), and how
VectorIndex keeps them out of every result, count and catalog comparison."""

import json

import numpy as np
import pytest

from vsearch_app.core.store.index_files import IndexDamaged
from vsearch_app.core.store.vector_index import WAYPOINT_BASE, IndexParams, VectorIndex
from vsearch_app.core.store.waypoints import WaypointMaker
from vsearch_app.errors import InvalidArgumentError

DIM = 16


def _unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# -- WaypointMaker --


def test_one_waypoint_per_every_vectors_across_batches_each_a_unit_mix_of_the_batch():
    rng = np.random.default_rng(0)
    maker = WaypointMaker(DIM, every=10, mix=3, partners=64)
    made = []
    for _ in range(20):  # 20 batches of 3: 60 vectors, 6 waypoints, though no single batch reaches 10
        batch = _unit(rng, 3)
        points = maker.waypoints_for(batch)
        for w in points:
            # one of the three mixed in is from this batch: it leans towards it (random 16-d unit vectors: ~0)
            assert np.max(batch @ w) > 0.3
        made.append(points)
    points = np.concatenate(made)
    assert points.shape == (6, DIM) and points.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(points, axis=1), 1.0, rtol=1e-5)


def test_waypoints_mix_earlier_vectors_from_the_reservoir_not_only_the_batch():
    maker = WaypointMaker(DIM, every=1, mix=3, partners=256)
    earlier = np.zeros((200, DIM), dtype=np.float32)
    earlier[:, 0] = 1.0  # everything before points one way ...
    maker.waypoints_for(earlier)
    batch = np.zeros((10, DIM), dtype=np.float32)
    batch[:, 1] = 1.0  # ... the new batch another
    points = maker.waypoints_for(batch)
    assert len(points) == 10
    # The two partners come from a sample of all 210 vectors, so nearly always from the earlier 200.
    assert np.mean(points[:, 0] > 0.8) >= 0.7 and np.all(points[:, 0] > 0.4)


def test_reservoir_is_a_uniform_sample_of_everything_offered():
    maker = WaypointMaker(2, every=100, mix=2, partners=500)
    total = 20_000
    for start in range(0, total, 700):  # batches of uneven size
        n = min(700, total - start)
        positions = np.arange(start, start + n, dtype=np.float32)
        maker.waypoints_for(np.stack([np.cos(positions / total), np.sin(positions / total)], axis=1))
    angles = np.arctan2(maker._reservoir[:, 1].astype(np.float32), maker._reservoir[:, 0].astype(np.float32))
    drawn = angles * total  # back to the positions offered
    assert maker._filled == 500
    # uniform over 0..total: each quarter holds about a quarter (binomial sd ~ 10 of 125)
    counts = np.histogram(drawn, bins=4, range=(0, total))[0]
    assert counts.min() > 85 and counts.max() < 165, counts


def test_seed_stands_for_the_whole_library_so_new_vectors_do_not_flood_the_sample():
    rng = np.random.default_rng(2)
    maker = WaypointMaker(DIM, every=10, mix=3, partners=100, seeded=False)  # as for an index loaded from disk
    assert maker.needs_seed
    assert len(maker.waypoints_for(_unit(rng, 50))) == 0 and maker._seen == 0  # no sample yet: nothing made
    library = _unit(rng, 100)
    maker.seed(library, represents=1_000_000)
    assert not maker.needs_seed
    maker.waypoints_for(_unit(rng, 1000))  # each new vector enters with probability 100 / 1M
    kept = np.isclose(maker._reservoir.astype(np.float32) @ library.T, 1.0, atol=2e-3).any(axis=1)
    assert kept.sum() >= 98


def test_disabled_maker_makes_nothing():
    maker = WaypointMaker(DIM, every=0, mix=3, partners=8)
    assert not maker.enabled and not maker.needs_seed
    assert maker.waypoints_for(_unit(np.random.default_rng(3), 50)).shape == (0, DIM)


# -- VectorIndex with waypoints --

PARAMS = IndexParams(
    M=8, ef_construction=32, ef=20, threads=1, waypoint_every=5, waypoint_min_size=0, ood_min_size=10**9
)


def _filled(tmp_path, n: int = 300, params: IndexParams = PARAMS) -> tuple[VectorIndex, np.ndarray]:
    x = _unit(np.random.default_rng(4), n)
    index = VectorIndex.create_empty(tmp_path / "index", "test/model", DIM, params)
    for start in range(0, n, 25):
        index.add(np.arange(start, min(start + 25, n)), x[start : start + 25])
    return index, x


def _labels_in_graph(index: VectorIndex) -> np.ndarray:
    return np.asarray(index._index.get_ids_list(), dtype=np.int64)


def test_waypoints_are_in_the_graph_but_never_in_results_or_counts(tmp_path):
    index, x = _filled(tmp_path)
    assert index.waypoint_count == 300 // 5 and len(index) == 300
    hidden = _labels_in_graph(index)
    assert (hidden >= WAYPOINT_BASE).sum() == 60
    for q in _unit(np.random.default_rng(5), 20):
        ids, _ = index.search(q, k=300)  # every photo, so any waypoint would have to show
        assert sorted(ids.tolist()) == list(range(300))
    index.remove([0, 1])
    assert len(index) == 298 and index.waypoint_count == 60
    assert index._labels_not_in(np.arange(2, 250)).tolist() == list(range(250, 300))
    assert index.remove([WAYPOINT_BASE]) == 0  # a waypoint is not a file id: ignored


def test_waypoints_survive_save_and_load_still_hidden(tmp_path):
    index, x = _filled(tmp_path)
    assert index.save()
    manifest = json.loads(index.manifest_path.read_text())
    assert manifest["waypoints"] == 60 and manifest["count"] == 360 and manifest["live"] == 300
    loaded = VectorIndex.create_empty(tmp_path / "index", "test/model", DIM, PARAMS)
    loaded._load()
    assert loaded.waypoint_count == 60 and len(loaded) == 300
    ids, _ = loaded.search(x[7], k=300)
    assert sorted(ids.tolist()) == list(range(300))  # hnswlib kept the waypoints' deleted marks in the file


def test_first_add_after_a_load_seeds_the_partners_from_the_library(tmp_path):
    index, x = _filled(tmp_path)
    assert index.save()
    loaded = VectorIndex.create_empty(tmp_path / "index", "test/model", DIM, PARAMS)
    loaded._load()
    assert loaded._waypoint_maker.needs_seed
    batch = np.zeros((10, DIM), dtype=np.float32)
    batch[:, 0] = 1.0  # an import of ten near-identical photos
    loaded.add(np.arange(1000, 1010), batch)
    maker = loaded._waypoint_maker
    assert maker._filled == maker._seen == 310  # capacity 4,096: the whole library, plus the new ones
    assert loaded.waypoint_count == 60 + 2


def test_waypoints_start_once_the_library_reaches_the_minimum_size(tmp_path):
    params = IndexParams(M=8, ef_construction=32, ef=20, threads=1, waypoint_every=5, waypoint_min_size=100)
    index, x = _filled(tmp_path, n=100, params=params)  # batches of 25: the last one is added at 75 < 100
    assert index.waypoint_count == 0 and index._waypoint_maker._seen == 100  # the sample is kept all along
    more = _unit(np.random.default_rng(6), 50)
    index.add(np.arange(100, 150), more)
    assert index.waypoint_count == 10 and len(index) == 150


def test_a_small_loaded_library_is_not_sampled_until_it_needs_waypoints(tmp_path, monkeypatch):
    params = IndexParams(M=8, ef_construction=32, ef=20, threads=1, waypoint_every=5, waypoint_min_size=120)
    index, _ = _filled(tmp_path, n=100, params=params)
    assert index.save()
    loaded = VectorIndex.create_empty(tmp_path / "index", "test/model", DIM, params)
    loaded._load()
    fetched = []
    real = VectorIndex._vectors_of
    monkeypatch.setattr(
        VectorIndex, "_vectors_of", lambda self, labels: fetched.append(len(labels)) or real(self, labels)
    )
    loaded.add(np.arange(100, 125), _unit(np.random.default_rng(7), 25))  # 100 < 120: no waypoints, no sample
    assert fetched == [] and loaded.waypoint_count == 0 and loaded._waypoint_maker.needs_seed
    loaded.add(np.arange(125, 150), _unit(np.random.default_rng(8), 25))  # 125: sampled from the graph first
    assert fetched == [125] and loaded.waypoint_count == 5 and not loaded._waypoint_maker.needs_seed


def test_a_manifest_with_impossible_waypoint_counts_is_rejected(tmp_path):
    index, _ = _filled(tmp_path)
    assert index.save()
    manifest = json.loads(index.manifest_path.read_text())
    manifest["waypoints"] = manifest["count"] + 1
    index.manifest_path.write_text(json.dumps(manifest))
    again = VectorIndex.create_empty(tmp_path / "index", "test/model", DIM, PARAMS)
    with pytest.raises(IndexDamaged, match="counts disagree"):
        again._load()


def test_file_ids_in_the_waypoint_range_are_refused(tmp_path):
    index = VectorIndex.create_empty(tmp_path, "test/model", DIM, PARAMS)
    with pytest.raises(InvalidArgumentError, match="file ids"):
        index.add([WAYPOINT_BASE], np.ones((1, DIM), dtype=np.float32))


def _clustered_with_far_queries(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated clusters in a low-dimensional subspace, and text-like queries: between two clusters, plus a
    direction outside the subspace (bench_library.py's model, scaled down)."""
    rng = np.random.default_rng(seed)
    dim, sub, clusters = 48, 12, 150
    basis = np.linalg.qr(rng.standard_normal((dim, sub)))[0]
    centres = rng.standard_normal((clusters, sub))
    centres[:, 0] += 3
    labels = rng.integers(0, clusters, 4000)
    x = (centres[labels] + 0.35 * rng.standard_normal((4000, sub))) @ basis.T + 0.02 * rng.standard_normal((4000, dim))
    pairs = rng.integers(0, clusters, (60, 2))
    between = (0.5 * (centres[pairs[:, 0]] + centres[pairs[:, 1]]) + 0.6 * rng.standard_normal((60, sub))) @ basis.T
    gap = rng.standard_normal(dim)
    gap -= basis @ (basis.T @ gap)
    queries = 0.3 * between / np.linalg.norm(between, axis=1, keepdims=True) + 0.95 * gap / np.linalg.norm(gap)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), queries.astype(np.float32)


def test_waypoints_raise_recall_for_queries_between_clusters(tmp_path):
    """The reason waypoints exist: with a deliberately narrow search, queries far from every photo find more of
    their true top 10 when the graph has waypoints (measured at this size: 0.51 -> 0.56 on average)."""
    recalls = {}
    for every in (0, 10):
        params = IndexParams(
            M=4, ef_construction=16, ef=10, threads=1, waypoint_every=every, waypoint_min_size=0, ood_min_size=10**9
        )
        hits = []
        for seed in range(3):
            x, queries = _clustered_with_far_queries(seed)
            truth = np.argsort(-(queries @ x.T), axis=1)[:, :10]
            index = VectorIndex.create_empty(tmp_path / f"{every}-{seed}", "test/model", x.shape[1], params)
            for start in range(0, len(x), 50):  # in indexer-sized batches
                index.add(np.arange(start, start + 50), x[start : start + 50])
            found = [index.search(q, 10)[0] for q in queries]
            hits += [len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True)]
        recalls[every] = np.mean(hits) / 10
    assert recalls[10] >= recalls[0] + 0.03, recalls


class _DeletionsOnly:
    """A catalog whose only change since the index was saved is one deleted file."""

    def embedding_seq(self):
        return 1

    def iter_embeddings(self, model_id, chunk_size=4096, since_seq=0):
        return iter(())

    def embedding_ids(self, model_id):
        return np.arange(1, 300)

    def deleted_embedding_ids(self, model_id, since_seq):
        return np.array([0])


def test_a_catch_up_that_only_deletes_does_not_sample_the_graph(tmp_path, monkeypatch):
    index, _ = _filled(tmp_path)
    assert index.save()
    loaded = VectorIndex.create_empty(tmp_path / "index", "test/model", DIM, PARAMS)
    loaded._load()
    monkeypatch.setattr(VectorIndex, "_vectors_of", lambda *a: pytest.fail("no add: no sample needed"))
    assert loaded.sync(_DeletionsOnly()) == 1
    assert len(loaded) == 299 and loaded._waypoint_maker.needs_seed
