"""The vector index of one graph: an hnswlib graph, a rebuildable cache of one model's embeddings in the catalog.

A model's index is a few of these, one per shard (core/store/sharded_index.py: the file ids split by id modulo the
shard count, the shards searched in parallel); this module is one graph and knows nothing of the others.

API summary:

    index = VectorIndex.open_or_rebuild(index_dir, model_id, dim, catalog)   # load if valid, else rebuild; then
                                                                              # catch up with the catalog
    index.sync(catalog) -> int          # apply catalog changes since the last sync (adds, replacements, deletions);
                                        # the library calls it after each committed batch
    index.add(ids, vectors)             # direct edits (labels = catalog file ids; an existing label is replaced)
    index.remove(ids)                   # mark_deleted; unknown or already deleted ids are ignored
    index.search(vector, k, filter_ids=None) -> (ids int64 [<=k], scores float32 cosine similarity, best first)
                                        # (a query far from every photo, e.g. text, gets the wider ood_ef)
    index.save() -> bool                # atomic; False (and an error in the log) if it could not be written
    len(index), index.dim, index.model_id, index.path (current index file), index.size_bytes(), index.pivot_count,
    index.waypoint_count
    VectorIndex.from_hnswlib(graph, index_dir, model_id)   # wrap a graph built elsewhere (the benchmark)
    index.close()

``catalog`` is anything with the EmbeddingSource methods (core.store.catalog.Catalog has them).

Beside this module: the files on disk, how a save commits them and the checks before a load
(core/store/index_files.py); telling far queries (core/store/out_of_distribution.py); waypoints
(core/store/waypoints.py).

Waypoints: with every batch of vectors added, the index also inserts a few hidden vectors (one per
``IndexParams.waypoint_every``) that link groups of photos, so that queries far from every photo (text) find their
neighbours in all the groups they lie between. They are marked deleted at once: searches walk through them, never
return them. Their labels start at WAYPOINT_BASE; len() and every catalog comparison leave them out, and the
manifest counts them.

Space: hnswlib 'cosine'. It normalises vectors on insert and on query and then uses inner product, so it costs the
same as 'ip' on our (already normalised) embeddings but stays correct if a caller hands in a vector that is not
exactly unit length (e.g. a weighted sum of query terms). Scores returned are cosine similarity (1 - distance).

Opening loads the saved graph if it passes every check, else rebuilds it from the catalog (and saves it); either way
it then catches up with the catalog's changes since the saved change counter, so a crash costs a short catch-up, not
a rebuild.

Threads: a reader/writer lock (core/store/read_write_lock.py) guards the graph: many searches at once, or one writer
(add, remove, sync, ef change). hnswlib is not safe for an add during a query. Saving holds the read lock only while
hnswlib writes the temp file; the checksum and verification run without blocking anyone.

(Just over 600 lines: the graph's edits, searches and saves share one lock and one set of labels; what could live
apart, the files, far-query detection and waypoints, does.)
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import hnswlib
import numpy as np

from vsearch_app.core.store import index_files
from vsearch_app.core.store.fsutil import temp_path_beside
from vsearch_app.core.store.index_files import MANIFEST_FORMAT, SPACE, IndexDamaged, model_slug
from vsearch_app.core.store.out_of_distribution import Pivots, build_pivots, choose_pivots, pivots_wanted
from vsearch_app.core.store.read_write_lock import ReadWriteLock
from vsearch_app.core.store.waypoints import WaypointMaker
from vsearch_app.errors import InvalidArgumentError, OperationCancelled

log = logging.getLogger(__name__)

COMPACT_MIN_DELETED = 10_000  # rebuild on open when deleted entries exceed this and the live count
# A filter with at most this many ids in a shard is answered by exact search over hnswlib's stored vectors (~100 us
# each); more are found by the graph's filtered walk, which measured faster from a few thousand ids on
# (core/library/filtered_search.py EXACT_FILTER_LIMIT: the engine scores filters up to that size from the catalog).
_EXACT_FILTER_LIMIT = 1_500
_EXACT_CHUNK = 8192  # vectors read at a time by an exact search
WAYPOINT_BASE = 1 << 62  # graph labels from here up are waypoints (core/store/waypoints.py); catalog ids stay far below


@dataclass(frozen=True)
class IndexParams:
    """hnswlib parameters, per graph, chosen with benchmarks/bench_library.py (clustered 768-d vectors, 2-core CPU)
    to reach recall@10 >= 0.98 at p50 <= 5 ms for image-like and text-like queries at 10k, 100k and 1M photos.
    benchmarks/RESULTS.md has what was measured and tried."""

    # How many graphs a model's index is split into (core/store/sharded_index.py), searched in parallel. Every other
    # parameter here applies to one graph: sizes below count the vectors of one shard.
    shards: int = 2
    M: int = 32
    ef_construction: int = 100
    ef: int = 256  # search breadth; raised to k when k is larger
    initial_capacity: int = 1024
    threads: int = 0  # for adds; 0 = all cores
    verify_reload_max_bytes: int = 2 << 30  # above this the post-save reload check is skipped (memory x2)
    # Out-of-distribution queries (core/store/out_of_distribution.py): a query far from every photo is searched
    # with the wider ood_ef. The pivots that tell such queries are not saved; they are drawn again on open.
    ood_ef: int = 448  # search breadth for a query that looks out of distribution (raised to k when k is larger)
    ood_min_size: int = 25_000  # below this ef already gives such queries recall@10 >= 0.98 (10k: 0.996)
    ood_pivot_every: int = 256  # one pivot per this many vectors ...
    ood_pivots: int = 1024  # ... up to this many (~3.5 MB with their graph)
    ood_below: float = 0.6  # out of distribution: best pivot score < this x the photos' median best pivot score
    # Waypoints (core/store/waypoints.py): hidden vectors that link groups of photos, for queries far from all of them.
    waypoint_every: int = 3  # one waypoint per this many vectors added (0: none); ~33% more memory per vector
    waypoint_min_size: int = 200_000  # below this, ef alone serves far queries and waypoints only slow searches
    waypoint_mix: int = 3  # photos averaged into one waypoint
    waypoint_partners: int = 4096  # the sample of earlier photos a waypoint draws from (float16, 6 MB at 768-d)


class EmbeddingSource(Protocol):
    """What the index needs from the catalog (core.store.catalog.Catalog implements it)."""

    def embedding_seq(self) -> int: ...

    def iter_embeddings(
        self, model_id: str, chunk_size: int = ..., since_seq: int = ...
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...

    def embedding_ids(self, model_id: str) -> np.ndarray: ...

    def deleted_embedding_ids(self, model_id: str, since_seq: int) -> np.ndarray | None: ...


class VectorIndex:
    """See the module docstring."""

    def __init__(  # use the classmethods
        self, index_dir: Path, model_id: str, dim: int, params: IndexParams, slug: str | None = None
    ) -> None:
        self.index_dir = Path(index_dir)
        self.model_id = model_id
        self.dim = int(dim)
        self.params = params
        self.slug = slug or model_slug(model_id)  # file stem; core.store.sharded_index gives each shard its own
        self._lock = ReadWriteLock()
        self._save_lock = threading.Lock()
        self._index = self._new_graph(params.initial_capacity)
        self._deleted: set[int] = set()
        self._ef = params.ef
        self._synced_seq = 0
        self._file: Path | None = None
        self._pivots: Pivots | None = None  # core/store/out_of_distribution.py; None: every query uses ef
        self._waypoints = 0  # waypoints in the graph: labels WAYPOINT_BASE .. WAYPOINT_BASE + _waypoints - 1
        self._waypoint_maker = self._new_waypoint_maker()
        self.save_error: BaseException | None = None  # why the last save() failed (None: it succeeded)

    # -- construction --

    @property
    def manifest_path(self) -> Path:
        return index_files.manifest_path(self.index_dir, self.slug)

    @property
    def path(self) -> Path | None:
        """The index file the current manifest names (None before the first save)."""
        return self._file

    def _new_graph(self, capacity: int) -> hnswlib.Index:
        graph = hnswlib.Index(space=SPACE, dim=self.dim)
        graph.init_index(
            max_elements=max(int(capacity), 1), M=self.params.M, ef_construction=self.params.ef_construction
        )
        graph.set_ef(self.params.ef)
        return graph

    def _new_waypoint_maker(self, seeded: bool = True) -> WaypointMaker:
        """``seeded`` False: for a graph loaded from disk, whose vectors the maker's sample has not seen."""
        p = self.params
        return WaypointMaker(self.dim, p.waypoint_every, p.waypoint_mix, p.waypoint_partners, seeded=seeded)

    def _wants_waypoints(self, size: int) -> bool:
        return self.params.waypoint_every > 0 and size >= self.params.waypoint_min_size

    @classmethod
    def create_empty(
        cls, index_dir: Path, model_id: str, dim: int, params: IndexParams | None = None, slug: str | None = None
    ) -> VectorIndex:
        """A new, empty in-memory index (nothing read; saved on save()). ``slug``: the file stem (default: from
        the model id)."""
        if dim <= 0:
            raise InvalidArgumentError(f"vector dimension must be positive, got {dim}")
        Path(index_dir).mkdir(parents=True, exist_ok=True)
        return cls(Path(index_dir), model_id, dim, params or IndexParams(), slug)

    @classmethod
    def open_or_rebuild(
        cls,
        index_dir: Path,
        model_id: str,
        dim: int,
        catalog: EmbeddingSource,
        params: IndexParams | None = None,
        progress: Callable[[int, int], None] | None = None,
        slug: str | None = None,
        cancel: threading.Event | None = None,
    ) -> VectorIndex:
        """Load the saved index if its manifest and file check out, else rebuild it from ``catalog``; either way
        it is brought up to date with the catalog before returning. A rebuilt index is saved at once. ``cancel``
        stops a rebuild (OperationCancelled; nothing is saved, the next open starts again)."""
        self = cls.create_empty(index_dir, model_id, dim, params, slug)
        try:
            self._load()
            if self._synced_seq > catalog.embedding_seq():
                # Saved from a later catalog than this one (a catalog restored from its backup): its labels may
                # name other photos than the catalog's ids now do, and a catch-up cannot tell.
                raise IndexDamaged(f"saved at catalog change {self._synced_seq}, the catalog is at "
                                   f"{catalog.embedding_seq()}")
            if len(self._deleted) > max(COMPACT_MIN_DELETED, len(self)):
                # mark_deleted keeps the slots; once most of the graph is tombstones, a rebuild is smaller and faster
                raise IndexDamaged(f"{len(self._deleted)} deleted entries against {len(self)} live ones: compacting")
        except IndexDamaged as exc:
            if self.manifest_path.exists() or any(self.index_dir.glob(f"{self.slug}.*.hnsw")):
                log.warning("search index for %s in %s is unusable (%s); rebuilding it from the catalog",
                            model_id, self.index_dir, exc)  # fmt: skip
            else:
                log.info("no search index for %s yet; building it from the catalog", model_id)
            self.rebuild(catalog, progress=progress, cancel=cancel)
            self.save()
        else:
            changed = self.sync(catalog)
            if changed:
                log.info("search index for %s caught up with %d catalog changes", model_id, changed)
        index_files.remove_stale_files(self.index_dir, self.slug, {self._file.name} if self._file else set())
        if self._pivots_stale():  # after a load (rebuild() draws them itself)
            self.refresh_pivots()
        return self

    @classmethod
    def from_hnswlib(
        cls, graph: hnswlib.Index, index_dir: Path, model_id: str, params: IndexParams | None = None
    ) -> VectorIndex:
        """Wrap a graph built elsewhere with hnswlib (space 'cosine', labels = ids, e.g. by a benchmark), so that
        it is searched exactly as the app searches. Nothing is read; save() writes it like any index."""
        if graph.space != SPACE:
            raise InvalidArgumentError(f"the graph's space is {graph.space!r}, expected {SPACE!r}")
        self = cls.create_empty(index_dir, model_id, graph.dim, params)
        graph.set_ef(self._ef)
        self._index = graph
        self.refresh_pivots()
        return self

    def _load(self) -> None:
        """Replace the graph with the saved one (index_files.load checks it; IndexDamaged when it cannot be used)."""
        loaded = index_files.load(self.index_dir, self.slug, model_id=self.model_id, dim=self.dim, M=self.params.M)
        # The saved ef is kept (hnswlib forgets it), unless this version's default is higher: raising the default
        # in an update then takes effect without a rebuild.
        self._ef = max(loaded.ef, self.params.ef, 1)
        loaded.graph.set_ef(self._ef)
        self._index, self._deleted, self._synced_seq, self._file = (loaded.graph, loaded.deleted, loaded.catalog_seq,
                                                                    loaded.file)
        self._waypoints, self._waypoint_maker = loaded.waypoints, self._new_waypoint_maker(seeded=False)  # see add()

    def rebuild(
        self,
        catalog: EmbeddingSource,
        progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> int:
        """Replace the graph with one built from every catalog embedding of this model. Returns the count.
        ``cancel`` is checked after every chunk of 8,192 vectors (a few seconds): OperationCancelled, and the
        graph in use is left as it was."""
        seq = catalog.embedding_seq()  # read first: changes made during the rebuild are caught by the next sync
        total = len(catalog.embedding_ids(self.model_id))
        with_waypoints = self._wants_waypoints(total)
        hidden = total // self.params.waypoint_every if with_waypoints else 0
        graph = self._new_graph(max(total + total // 8 + hidden, self.params.initial_capacity))
        maker, waypoints = self._new_waypoint_maker(), 0  # the new graph's own: searches still use the old one
        done = 0
        for ids, vectors in catalog.iter_embeddings(self.model_id, chunk_size=8192):
            self.check_vectors(vectors)
            waypoints = self._insert(graph, ids, vectors, maker, waypoints, with_waypoints)
            done += len(ids)
            if progress is not None:
                progress(done, total)
            if cancel is not None and cancel.is_set():
                raise OperationCancelled("rebuilding the search index was cancelled")
        with self._lock.write():
            self._index, self._deleted, self._synced_seq = graph, set(), seq
            self._waypoints, self._waypoint_maker = waypoints, maker
            graph.set_ef(self._ef)
        self.refresh_pivots()
        log.info("built search index for %s from the catalog: %d vectors", self.model_id, done)
        return done

    # -- edits --

    def _threads(self) -> int:
        return self.params.threads or (os.cpu_count() or 1)

    def check_vectors(self, vectors: np.ndarray) -> None:
        """Raise InvalidArgumentError unless ``vectors`` is a 2-d array of this index's dimension."""
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise InvalidArgumentError(f"expected vectors of dimension {self.dim}, got shape {vectors.shape}")

    @staticmethod
    def check_ids(ids: np.ndarray) -> None:
        """Raise InvalidArgumentError unless every id can be a photo's label (waypoints own the labels above)."""
        if np.any(ids < 0) or np.any(ids >= WAYPOINT_BASE):
            raise InvalidArgumentError(f"index labels must be file ids from 0 to {WAYPOINT_BASE - 1}")

    def add(self, ids: Iterable[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add or replace vectors under catalog file ids (a deleted id is brought back with the new vector)."""
        ids_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        vecs = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids_arr), -1)
        self.check_vectors(vecs)
        if len(ids_arr) == 0:
            return
        self.check_ids(ids_arr)
        self._seed_waypoint_maker()
        with self._lock.write():
            self._add_locked(ids_arr, vecs)

    def _add_locked(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        with_waypoints = self._wants_waypoints(len(self))
        self._waypoints = self._insert(self._index, ids, vectors, self._waypoint_maker, self._waypoints, with_waypoints)
        self._deleted.difference_update(int(i) for i in ids)

    def _insert(
        self,
        graph: hnswlib.Index,
        ids: np.ndarray,
        vectors: np.ndarray,
        maker: WaypointMaker,
        waypoints: int,
        with_waypoints: bool,
    ) -> int:
        """Add ``vectors`` under ``ids`` to ``graph``, then (``with_waypoints``) the waypoints ``maker`` draws for
        them, marked deleted (hidden from results, still walked by searches). ``waypoints`` is how many the graph
        holds; returns the new count. The caller holds the write lock (or owns ``graph``)."""
        hidden = maker.waypoints_for(vectors, make=with_waypoints)
        needed = graph.element_count + len(ids) + len(hidden)
        capacity = graph.get_max_elements()
        if needed > capacity:
            graph.resize_index(max(2 * capacity, needed))
        # hnswlib re-adding a deleted label unmarks it and stores the new vector (replace_deleted stays off, so
        # freed slots are never handed to another label).
        graph.add_items(vectors, ids.astype(np.uint64), num_threads=self._threads())
        if len(hidden):
            labels = (WAYPOINT_BASE + waypoints + np.arange(len(hidden), dtype=np.int64)).astype(np.uint64)
            graph.add_items(hidden, labels, num_threads=self._threads())
            for label in labels.tolist():
                graph.mark_deleted(label)
        return waypoints + len(hidden)

    def _seed_waypoint_maker(self) -> None:
        """After a load the waypoint maker has no sample of the library yet: draw one from the graph before the
        first add that makes waypoints (once per open; ~0.5 s for 4,096 partners: hnswlib's get_items is slow)."""
        if not self._waypoint_maker.needs_seed or not self._wants_waypoints(len(self)):
            return
        with self._lock.read():
            labels = self._live_labels()
            if len(labels) == 0:
                return
            rng = np.random.default_rng(1)
            chosen = rng.choice(labels, size=min(len(labels), self._waypoint_maker.partner_capacity), replace=False)
            _, vectors = self._vectors_of(np.sort(chosen))
        with self._lock.write():
            if self._waypoint_maker.needs_seed and len(vectors):
                self._waypoint_maker.seed(vectors, represents=len(labels))

    def remove(self, ids: Iterable[int] | np.ndarray) -> int:
        """mark_deleted the given ids; unknown and already deleted ids are ignored. Returns how many were removed."""
        with self._lock.write():
            return self._remove_locked(np.asarray(ids, dtype=np.int64).reshape(-1))

    def _remove_locked(self, ids: np.ndarray) -> int:
        removed = 0
        for label in ids.tolist():
            if label in self._deleted or label >= WAYPOINT_BASE:
                continue
            try:
                self._index.mark_deleted(label)
            except RuntimeError:  # not in the index
                continue
            self._deleted.add(label)
            removed += 1
        return removed

    def sync(self, catalog: EmbeddingSource) -> int:
        """Apply every catalog change since the last sync/rebuild/load. Returns the number of ids touched.

        Idempotent: a change seen twice is applied twice with the same result, so reading the counter before the
        changes is enough to never miss one.
        """
        seq = catalog.embedding_seq()
        if seq == self._synced_seq:
            return 0
        since = self._synced_seq
        touched = 0
        for ids, vectors in catalog.iter_embeddings(self.model_id, chunk_size=4096, since_seq=since):
            self.check_vectors(vectors)
            self._seed_waypoint_maker()  # per chunk: only a catch-up that adds pays, and one that crosses the size
            with self._lock.write():  # per chunk, so searches interleave with a long catch-up
                self._add_locked(ids, vectors)
            touched += len(ids)
        gone = catalog.deleted_embedding_ids(self.model_id, since)
        if gone is None:  # the catalog's deletion log no longer reaches back that far: compare id sets
            gone = self._labels_not_in(catalog.embedding_ids(self.model_id))
        with self._lock.write():
            touched += self._remove_locked(np.asarray(gone, dtype=np.int64))
            self._synced_seq = max(self._synced_seq, seq)
        if self._pivots_stale():
            self.refresh_pivots()
        return touched

    def _labels_not_in(self, keep: np.ndarray) -> np.ndarray:
        with self._lock.read():
            live = self._live_labels()
        return np.setdiff1d(live, keep, assume_unique=False)

    def _live_labels(self) -> np.ndarray:
        """The file ids searches can return (not deleted, not waypoints); caller holds a lock."""
        labels = np.asarray(self._index.get_ids_list(), dtype=np.int64)
        labels = labels[labels < WAYPOINT_BASE]
        if self._deleted:
            labels = labels[~np.isin(labels, np.fromiter(self._deleted, dtype=np.int64, count=len(self._deleted)))]
        return labels

    # -- search --

    def __len__(self) -> int:
        return self._index.element_count - len(self._deleted) - self._waypoints

    @property
    def waypoint_count(self) -> int:
        """Hidden waypoints in the graph (core/store/waypoints.py); not counted in len()."""
        return self._waypoints

    @property
    def ef(self) -> int:
        return self._ef

    def set_ef(self, ef: int) -> None:
        with self._lock.write():
            self._ef = max(int(ef), 1)
            self._index.set_ef(self._ef)

    def search(
        self, vector: np.ndarray, k: int = 10, filter_ids: Iterable[int] | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest photos to ``vector``: (ids int64, cosine similarity float32), best first.

        Fewer than k come back when the index (or the filter) holds fewer. ``filter_ids`` restricts results to
        those file ids: small sets are searched exactly, large ones through hnswlib's filter.
        """
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.dim:
            raise InvalidArgumentError(f"query vector has dimension {query.shape[0]}, the index {self.dim}")
        if k <= 0:
            raise InvalidArgumentError(f"k must be positive, got {k}")
        norm = float(np.linalg.norm(query))
        if not np.isfinite(norm) or norm == 0.0:
            raise InvalidArgumentError("the query vector is zero or not finite")
        if filter_ids is not None:
            return self._search_filtered(query / norm, k, np.asarray(filter_ids, dtype=np.int64).reshape(-1))
        with self._lock.read():
            n = len(self)
            if n == 0:
                return _empty()
            k = min(k, n)
            wide = self._looks_out_of_distribution(query / norm)
            return self._knn(query, k, min(max(k, self._ood_ef), n) if wide else k, None)

    # -- out-of-distribution queries --

    @property
    def _ood_ef(self) -> int:
        return max(self.params.ood_ef, self._ef)

    @property
    def pivot_count(self) -> int:
        """How many pivots tell out-of-distribution queries (0: every query is searched with ``ef``)."""
        pivots = self._pivots
        return pivots.count if pivots is not None else 0

    def _looks_out_of_distribution(self, query: np.ndarray) -> bool:
        """True when the unit ``query`` is far from every photo (e.g. a text query), so it needs the wider
        ``ood_ef`` (core/store/out_of_distribution.py says why)."""
        pivots = self._pivots
        return pivots is not None and pivots.is_far(query)

    def _pivots_stale(self) -> bool:
        n = len(self)
        if self._pivots is None:
            return pivots_wanted(n, self.params.ood_min_size)
        return self._pivots.stale(n, self.params.ood_min_size)

    def refresh_pivots(self) -> None:
        """Draw the pivots again from the current vectors (or drop them below ``ood_min_size``). Called on open,
        after a rebuild and when the index has grown by half; ~0.3 s at 1M vectors. A pivot deleted later
        still works: it is only compared with queries, never returned."""
        p = self.params
        with self._lock.read():
            n = len(self)
            labels = None
            if pivots_wanted(n, p.ood_min_size) and n >= 2:
                labels = self._live_labels()
        pivots = None
        if labels is not None and len(labels) >= 2:
            chosen, others = choose_pivots(labels, p.ood_pivot_every, p.ood_pivots)
            with self._lock.read():
                chosen, vectors = self._vectors_of(chosen)
                _, sample = self._vectors_of(others)
            if len(chosen) and len(sample):
                pivots = build_pivots(vectors, sample, below=p.ood_below, built_for=n, threads=self._threads())
        with self._lock.write():
            self._pivots = pivots

    def _knn(
        self, query: np.ndarray, k: int, wanted: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best k of a search for ``wanted`` (>= k) results, among ``allowed`` labels if given. hnswlib's beam
        is max(its ef, the results asked for), so asking for more results than ef widens this one search exactly as
        raising ef would (the same results), without touching the graph's shared ef: searches never need the write
        lock. The caller holds the read lock.

        hnswlib raises when its search reaches fewer than ``wanted`` live entries: near-duplicate photos (a burst of
        shots) and replaced vectors leave parts of a graph unreachable from its entry point. Then the answer comes
        from an exact search instead, so a search for k results gets k whenever the graph holds k (asking again for
        fewer, as before, returned half of a 1,544-photo shard for --limit 5000)."""
        accept = None if allowed is None else set(allowed.tolist()).__contains__
        try:
            labels, distances = self._index.knn_query(query, k=wanted, num_threads=1, filter=accept)
        except RuntimeError:
            log.debug("hnswlib reached fewer than %d entries; searching exactly", wanted)
            return self._exact(query, k, self._live_labels() if allowed is None else allowed)
        return labels[0, :k].astype(np.int64), (1.0 - distances[0, :k]).astype(np.float32)

    def _exact(self, query: np.ndarray, k: int, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The k best of ``labels`` by exact cosine similarity, from the graph's stored vectors (labels not in the
        graph are skipped; ties keep label order). Read in chunks, so a large shard never needs a full copy. The
        caller holds a lock."""
        unit = query / np.linalg.norm(query)
        best_ids, best_scores = _empty()
        for start in range(0, len(labels), _EXACT_CHUNK):
            present, vectors = self._vectors_of(labels[start : start + _EXACT_CHUNK])
            ids = np.concatenate([best_ids, present])
            scores = np.concatenate([best_scores, (vectors @ unit).astype(np.float32)])
            top = np.argsort(-scores, kind="stable")[:k]
            best_ids, best_scores = ids[top], scores[top]
        return best_ids, best_scores

    def _search_filtered(self, query: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock.read():
            if self._deleted:
                allowed = allowed[~np.isin(allowed, np.fromiter(self._deleted, dtype=np.int64))]
            allowed = np.unique(allowed)
            if len(allowed) == 0 or len(self) == 0:
                return _empty()
            if len(allowed) <= _EXACT_FILTER_LIMIT:
                return self._exact(query, k, allowed)
            k = min(k, len(allowed))
            return self._knn(query, k, k, allowed)

    def _vectors_of(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels present in the graph, their stored vectors); caller holds a lock. hnswlib stores cosine-space
        vectors normalised, so a dot product with a unit query is the cosine similarity."""
        present: list[np.ndarray] = []
        vectors: list[np.ndarray] = []
        for start in range(0, len(labels), 1024):
            part = labels[start : start + 1024]
            try:
                vectors.append(np.asarray(self._index.get_items(part.astype(np.uint64)), dtype=np.float32))
                present.append(part)
                continue
            except RuntimeError:  # some label of this part is not in the graph (a pending or failed file)
                pass
            for label in part.tolist():
                try:
                    vectors.append(np.asarray(self._index.get_items([label]), dtype=np.float32))
                except RuntimeError:
                    continue
                present.append(np.array([label], dtype=np.int64))
        if not present:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(present), np.concatenate(vectors).reshape(-1, self.dim)

    # -- saving --

    def size_bytes(self) -> int:
        """Bytes of the saved index file (0 before the first save)."""
        try:
            return self._file.stat().st_size if self._file else 0
        except OSError:
            return 0

    def save(self) -> bool:
        """Write the index atomically (core/store/index_files.py). Returns False, after logging an error, when it
        could not be written (e.g. a full disk): the previous saved index stays valid and in use."""
        with self._save_lock:
            tmp = None
            try:
                tmp = temp_path_beside(self.index_dir / f"{self.slug}.hnsw")
                with self._lock.read():  # searches go on; edits wait for hnswlib to write the file
                    self._index.save_index(str(tmp))
                    count = self._index.element_count
                    capacity = self._index.get_max_elements()
                    deleted = sorted(self._deleted)
                    waypoints = self._waypoints
                    seq = self._synced_seq
                    ef = self._ef
                manifest = {
                    "format": MANIFEST_FORMAT,
                    "model_id": self.model_id,
                    "dim": self.dim,
                    "space": SPACE,
                    "count": count,
                    "live": count - len(deleted) - waypoints,
                    "waypoints": waypoints,
                    "max_elements": capacity,
                    "deleted": deleted,
                    "M": self.params.M,
                    "ef_construction": self.params.ef_construction,
                    "ef": ef,
                    "catalog_seq": seq,
                    "hnswlib": asdict(self.params) | {"version": getattr(hnswlib, "__version__", "unknown")},
                }
                final = index_files.commit(tmp, self.index_dir, self.slug, manifest, dim=self.dim, M=self.params.M,
                                           count=count, capacity=capacity,
                                           verify_reload_max_bytes=self.params.verify_reload_max_bytes)
            except (OSError, IndexDamaged, RuntimeError) as exc:
                # A full disk or a read-only one is the user's to fix and the library says so itself (DiskFullError,
                # or DataDirError when indexing): logged quietly, so a search on a read-only library stays quiet.
                expected = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS)
                log.log(logging.INFO if expected else logging.ERROR,
                        "could not save the search index to %s: %s. The previous index is kept; it is brought up to "
                        "date from the catalog on the next start (free disk space if it is full)",
                        self.index_dir, exc)  # fmt: skip
                if tmp is not None:
                    tmp.unlink(missing_ok=True)  # gone already when the failure came after the rename
                self.save_error = exc
                return False
            self.save_error = None
            previous, self._file = self._file, final
            if previous is not None and previous != final:
                try:
                    previous.unlink(missing_ok=True)
                except OSError as exc:  # e.g. still open in another process on Windows: removed on a later open
                    log.debug("could not remove the previous index file %s: %s", previous, exc)
            return True

    def close(self) -> None:
        """Release the graph's memory (the saved file is untouched). The index is empty afterwards and is not to be
        used again (Library refuses any use after its close with LibraryClosedError)."""
        with self._lock.write():
            self._index = self._new_graph(1)
            self._deleted = set()
            self._pivots = None
            self._waypoints, self._waypoint_maker = 0, self._new_waypoint_maker()


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
