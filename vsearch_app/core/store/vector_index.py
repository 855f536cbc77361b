"""The vector index: an hnswlib graph, a rebuildable cache of the catalog's embeddings of one model.

A model's index is a few of these, one per shard (core/store/sharded_index.py: the file ids split by id modulo the shard
count, the shards searched in parallel); this module is one graph and knows nothing of the others.

API summary:

    index = VectorIndex.open_or_rebuild(index_dir, model_id, dim, catalog)   # load if valid, else rebuild; then
                                                                              # catch up with the catalog
    index.sync(catalog) -> int          # apply catalog changes since the last sync (adds, replacements, deletions);
                                        # the indexer calls it after each committed batch
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

Waypoints: with every batch of vectors added, the index also inserts a few hidden vectors (one per
``IndexParams.waypoint_every``; see core/store/waypoints.py) that link groups of photos, so that queries far from every
photo (text) find their neighbours in all the groups they lie between. They are marked deleted at once: searches
walk through them, never return them. Their labels start at WAYPOINT_BASE; len() and every catalog comparison
leave them out, and the manifest counts them.

Space: hnswlib 'cosine'. It normalises vectors on insert and on query and then uses inner product, so it costs the
same as 'ip' on our (already normalised) embeddings but stays correct if a caller hands in a vector that is not
exactly unit length (e.g. a weighted sum of query terms). Scores returned are cosine similarity (1 - distance).

On disk, per model: ``<slug>.manifest.json`` and the index file it names, ``<slug>.<sha8>.hnsw``. Saving writes
the graph to a temp file in the same folder, fsyncs it, verifies it (header, size and checksum read back from the
disk, and a reload with hnswlib), renames it to its final content-addressed name, fsyncs the folder, and only then
replaces the manifest (temp + fsync + os.replace + fsync of the folder). The manifest replace is the single commit
point: a crash at any moment leaves the old manifest with its old file, or the new manifest with its new file.
(This is why the index file is not os.replace'd onto a fixed name: that would open a window in which the manifest
and the file disagree, and a 1M-vector rebuild takes minutes.) Files no manifest names are removed on open.

Loading never hands hnswlib a file it has not checked first: the manifest must name this model, dimension and space,
and the file's size and SHA-256 must match, and its header must be consistent with the dimension and M (hnswlib can
crash on a crafted header and loads a wrong dimension silently). Any mismatch logs a warning and rebuilds from the
catalog. The manifest also keeps ``ef`` (hnswlib does not save it) and the catalog change counter the file reflects,
so that opening catches up incrementally instead of rebuilding.

Threads: a reader/writer lock guards the graph: many searches at once, or one writer (add, remove, sync, ef
change). hnswlib is not safe for an add during a query. Saving holds the read lock only while hnswlib writes the
temp file; the checksum and verification run without blocking anyone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import hnswlib
import numpy as np

from vsearch_app.core.store.fsutil import fsync_dir, temp_path_beside
from vsearch_app.core.store.waypoints import WaypointMaker
from vsearch_app.errors import InvalidArgumentError, OperationCancelled

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
SPACE = "cosine"
_HEADER = struct.Struct("<6Q i I 3Q d Q")  # hnswlib HierarchicalNSW::saveIndex header (96 bytes)
STALE_AFTER_S = 600  # leftover files older than this are removed on open
COMPACT_MIN_DELETED = 10_000  # rebuild on open when deleted entries exceed this and the live count
_EXACT_FILTER_LIMIT = 50_000  # a folder filter with at most this many ids is answered by exact search
_EXACT_CHUNK = 8192  # vectors read at a time by an exact search
WAYPOINT_BASE = 1 << 62  # graph labels from here up are waypoints (core/store/waypoints.py); catalog ids stay far below


@dataclass(frozen=True)
class IndexParams:
    """hnswlib parameters, chosen with benchmarks/bench_library.py (clustered 768-d vectors, 2-core CPU; its
    output is in the issue 4 notes and the README).

    In-distribution (image-like) queries are easy: recall@10 1.000 at ef=256 up to 1M vectors (p50 ~1 ms).
    Text queries are hard for a graph search: they sit away from every photo (SigLIP's modality gap) and between
    groups of similar photos, and their true top 10 lie on the edges of several groups (1.8 on average at 1M).
    hnswlib's greedy descent commits to one group and its beam rarely crosses to the others, as the graph has few
    links between well-separated groups (at 1M, 89% of the misses were in a group none of the results came from).
    M=32 (not 16) was the first step: at 100k text-like recall@10 0.98 instead of 0.90 at ef=256. Beyond that,
    measured at 1M on text-like queries (p50 on the shared machine, under the bench lock):
    - plain ef=256: 0.737 at 1.2 ms; ef=1024: 0.901 at 3.3-4.0 ms; ef=4096: 0.967 at ~14 ms. M=48: no better.
    - ef_construction=200: 0.943 at ef=1024 / 5.0 ms, but a graph built half as fast.
    - steering extra searches towards the best pivots and re-ranking exactly: 0.95, ~18 ms (hnswlib's get_items
      builds Python floats, ~100 us per vector).
    - k-means partitions with a graph each (IVF-HNSW), searched by centroid order: worse on both kinds; routing by
      centroid misses the groups whose edges hold the top 10.
    - waypoints (core/store/waypoints.py: hidden means of 3 photos, walked but never returned), with the wider
      ``ood_ef`` for queries that look out of distribution: one per 5 photos 0.956 at ood_ef=768 / 3.7 ms; one per
      3 photos 0.973 at 768 / 4.5 ms and 0.982 at 1024 / 6.6 ms (one graph: just short of the target). Image-like
      queries stay at 1.000, p50 1.1-1.2 ms.
    - two shards (core/store/sharded_index.py: ids split by parity, a graph of half the size with its own waypoints,
      searched at once on the two cores): text-like recall@10 at 1M 0.977 / 3.1 ms at ood_ef=384, 0.984 / 4.1 ms at
      448, 0.986 / 4.6 ms at 512, 0.990 / 7.4 ms at 768; image-like 1.000 at 2.1-2.5 ms (ef=256). At 100k (two
      graphs of 50k, no waypoints): 0.979 / 3.1 ms at 384, 0.984 / 3.5 ms at 448 and 512, 0.991 / 4.9 ms at 768.
    Adopted: two shards; in each, one waypoint per 3 photos from 200k photos up (+33% memory per vector there,
    rebuilds ~830 vectors/s instead of ~2,400), ood_ef=448 from 25k photos up (``ood_min_size``: out-of-distribution
    search from 50k photos in all). Below 200k per graph waypoints cost image-like searches far more than they give
    (one 100k graph: p50 1.6 -> 5.4 ms with one per 3, 1.7 -> 3.0 with one per 5). This meets the target,
    recall@10 >= 0.98 at p50 <= 5 ms, for both query kinds at 10k, 100k and 1M."""

    # How many graphs a model's index is split into (core/store/sharded_index.py), searched in parallel. Every other
    # parameter here applies to one graph: sizes below count the vectors of one shard.
    shards: int = 2
    M: int = 32
    ef_construction: int = 100
    ef: int = 256  # search breadth; raised to k when k is larger
    initial_capacity: int = 1024
    threads: int = 0  # for adds; 0 = all cores
    verify_reload_max_bytes: int = 2 << 30  # above this the post-save reload check is skipped (memory x2)
    # Out-of-distribution queries (see above); the pivots are not saved, they are drawn again on open.
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


@dataclass
class _Pivots:
    """A sample of the stored vectors, to tell out-of-distribution queries (see VectorIndex.search)."""

    graph: hnswlib.Index  # the pivots' vectors, labels 0..count-1 (a graph of its own: read-only, thread-safe)
    threshold: float  # a query whose best pivot score is below this is out of distribution
    built_for: int  # live vectors when drawn


class EmbeddingSource(Protocol):
    """What the index needs from the catalog (core.store.catalog.Catalog implements it)."""

    def embedding_seq(self) -> int: ...

    def iter_embeddings(
        self, model_id: str, chunk_size: int = ..., since_seq: int = ...
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...

    def embedding_ids(self, model_id: str) -> np.ndarray: ...

    def deleted_embedding_ids(self, model_id: str, since_seq: int) -> np.ndarray | None: ...


class RWLock:
    """Many readers or one writer. Writers are preferred: once a writer waits, new readers queue behind it, so a
    steady stream of searches cannot starve the indexer. Not re-entrant."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class IndexDamaged(Exception):
    """Internal: the saved index cannot be trusted (the caller rebuilds)."""


class _FileMissing(IndexDamaged):
    """The manifest names a file that is not there (possibly replaced by another process a moment ago)."""


def model_slug(model_id: str) -> str:
    """A file-name-safe, collision-free stem for a model id."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("._")[:60] or "model"
    return f"{readable}-{hashlib.sha256(model_id.encode('utf-8')).hexdigest()[:8]}"


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def check_hnsw_header(path: Path, dim: int, M: int, count: int) -> None:
    """Check an hnswlib file's header against what we expect, without hnswlib. Raises IndexDamaged."""
    size = path.stat().st_size
    if size < _HEADER.size:
        raise IndexDamaged(f"file is {size} bytes, shorter than an hnswlib header")
    with open(path, "rb") as fh:
        fields = _HEADER.unpack(fh.read(_HEADER.size))
    (offset_level0, max_elements, cur_count, size_per_element, label_offset, offset_data,
     max_level, _enter, max_m, max_m0, m, _mult, _efc) = fields  # fmt: skip
    links0 = max_m0 * 4 + 4
    expected = {
        "offsetLevel0": (offset_level0, 0),
        "M": (m, M),
        "maxM": (max_m, M),
        "maxM0": (max_m0, 2 * M),
        "offsetData": (offset_data, links0),
        "size_data_per_element": (size_per_element, links0 + 4 * dim + 8),
        "label_offset": (label_offset, links0 + 4 * dim),
        "cur_element_count": (cur_count, count),
    }
    for name, (got, want) in expected.items():
        if got != want:
            raise IndexDamaged(f"header field {name} is {got}, expected {want}")
    lowest_level = -1 if cur_count == 0 else 0  # an empty graph has no entry point (level -1)
    if max_elements < cur_count or max_level < lowest_level or max_level > 64:
        raise IndexDamaged("header capacity or level out of range")
    minimum = _HEADER.size + cur_count * (size_per_element + 4)
    if size < minimum:
        raise IndexDamaged(f"file is {size} bytes, the header needs at least {minimum}")


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
        self._lock = RWLock()
        self._save_lock = threading.Lock()
        self._index = self._new_graph(params.initial_capacity)
        self._deleted: set[int] = set()
        self._ef = params.ef
        self._synced_seq = 0
        self._file: Path | None = None
        self._pivots: _Pivots | None = None
        self._waypoints = 0  # waypoints in the graph: labels WAYPOINT_BASE .. WAYPOINT_BASE + _waypoints - 1
        self._waypoint_maker = self._new_waypoint_maker()

    # -- construction --

    @property
    def manifest_path(self) -> Path:
        return self.index_dir / f"{self.slug}.manifest.json"

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
        self._remove_stale_files()
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

    def _read_manifest(self) -> dict:
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise IndexDamaged("no manifest") from exc
        except (OSError, ValueError) as exc:
            raise IndexDamaged(f"manifest unreadable: {exc}") from exc
        if not isinstance(manifest, dict):
            raise IndexDamaged("manifest is not a JSON object")
        return manifest

    def _load(self) -> None:
        for attempt in range(3):
            try:
                self._load_checked()
                return
            except _FileMissing:
                # Another process may have saved (and removed the old file) between our manifest read and the
                # file open: read the manifest again before giving up on it.
                if attempt == 2:
                    raise
            except OSError as exc:  # unreadable file or folder: treat like damage, the catalog still has everything
                raise IndexDamaged(f"cannot read it: {exc}") from exc

    def _load_checked(self) -> None:
        m = self._read_manifest()
        try:
            checks = {
                "format": (m["format"], MANIFEST_FORMAT),
                "model_id": (m["model_id"], self.model_id),
                "dim": (m["dim"], self.dim),
                "space": (m["space"], SPACE),
                "M": (m["M"], self.params.M),
            }
            for name, (got, want) in checks.items():
                if got != want:
                    raise IndexDamaged(f"manifest {name} is {got!r}, expected {want!r}")
            file = self.index_dir / str(m["file"])
            if file.parent != self.index_dir or not file.name.startswith(self.slug + "."):
                raise IndexDamaged(f"manifest names an unexpected file {m['file']!r}")
            count, capacity, size = int(m["count"]), int(m["max_elements"]), int(m["file_size"])
            deleted = {int(x) for x in m["deleted"]}
            ef, seq, sha = int(m["ef"]), int(m["catalog_seq"]), str(m["sha256"])
            waypoints = int(m.get("waypoints", 0))  # absent in manifests written before waypoints existed
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexDamaged(f"manifest incomplete: {exc!r}") from exc
        if not 0 <= waypoints <= count or len(deleted) > count - waypoints:
            raise IndexDamaged(f"manifest counts disagree: {count} entries, {waypoints} waypoints, {len(deleted)} gone")
        try:
            actual_size = file.stat().st_size
        except FileNotFoundError as exc:
            raise _FileMissing(f"index file {file.name} is missing") from exc
        if actual_size != size:
            raise IndexDamaged(f"index file is {actual_size} bytes, the manifest says {size}")
        check_hnsw_header(file, self.dim, self.params.M, count)
        if _sha256_of(file) != sha:
            raise IndexDamaged("index file checksum does not match the manifest")
        graph = hnswlib.Index(space=SPACE, dim=self.dim)
        try:
            graph.load_index(str(file), max_elements=max(capacity, count, 1))
        except (RuntimeError, MemoryError, ValueError) as exc:
            raise IndexDamaged(f"hnswlib could not load it: {exc}") from exc
        if graph.dim != self.dim or graph.element_count != count:
            raise IndexDamaged(f"loaded {graph.element_count} x {graph.dim}, expected {count} x {self.dim}")
        # The saved ef is kept (hnswlib forgets it), unless this version's default is higher: raising the default
        # in an update then takes effect without a rebuild.
        self._ef = max(ef, self.params.ef, 1)
        graph.set_ef(self._ef)
        self._index, self._deleted, self._synced_seq, self._file = graph, deleted, seq, file
        self._waypoints, self._waypoint_maker = waypoints, self._new_waypoint_maker(seeded=False)  # see add()
        log.debug("loaded search index %s: %d vectors (%d deleted)", file.name, count, len(deleted))

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
        return pivots.graph.element_count if pivots is not None else 0

    def _looks_out_of_distribution(self, query: np.ndarray) -> bool:
        """True when the unit ``query`` is far from every photo (e.g. a text query: modality gap, between
        clusters). Its true neighbours then lie on the edges of several clusters, and hnswlib's beam only reaches
        those of the cluster its greedy descent chose unless it is much wider (IndexParams' docstring has the
        measurements). Costs one search of the small pivot graph; a pivot is a stored vector, so an
        in-distribution query scores about as well against its best pivot as the photos themselves do."""
        pivots = self._pivots
        if pivots is None:
            return False
        _, distances = pivots.graph.knn_query(query, k=1, num_threads=1)
        return float(1.0 - distances[0, 0]) < pivots.threshold

    def _pivots_stale(self) -> bool:
        n = len(self)
        if self._pivots is None:
            return n >= self.params.ood_min_size
        return n < self.params.ood_min_size or n > 1.5 * self._pivots.built_for

    def refresh_pivots(self) -> None:
        """Draw the pivots again from the current vectors (or drop them below ``ood_min_size``). Called on open,
        after a rebuild and when the index has grown by half; ~0.3 s at 1M vectors. A pivot deleted later
        still works: it is only compared with queries, never returned."""
        p = self.params
        with self._lock.read():
            n = len(self)
            labels = None
            if n >= p.ood_min_size and n >= 2:
                labels = self._live_labels()
        pivots = None
        if labels is not None and len(labels) >= 2:
            rng = np.random.default_rng(0)  # deterministic: the same library gets the same pivots
            count = int(min(p.ood_pivots, max(len(labels) // max(p.ood_pivot_every, 1), 1)))
            order = rng.permutation(len(labels))
            chosen = np.sort(labels[order[:count]])
            # The photos' own best pivot score, from photos that are not pivots themselves (else it would be 1).
            others = np.sort(labels[order[count : count + 512]])
            with self._lock.read():
                chosen, vectors = self._vectors_of(chosen)
                _, sample = self._vectors_of(others)
            if len(chosen) and len(sample):
                graph = hnswlib.Index(space=SPACE, dim=self.dim)
                graph.init_index(max_elements=len(chosen), M=16, ef_construction=100)
                graph.add_items(vectors, np.arange(len(chosen)), num_threads=self._threads())
                graph.set_ef(16)  # only the best score matters, and only roughly: the threshold has a wide margin
                typical = float(np.median(1.0 - graph.knn_query(sample, k=1, num_threads=self._threads())[1][:, 0]))
                pivots = _Pivots(graph=graph, threshold=p.ood_below * typical, built_for=n)
                log.debug("%d pivots for out-of-distribution queries, threshold %.3f", len(chosen), pivots.threshold)
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
        """Write the index atomically (see the module docstring). Returns False, after logging an error, when it
        could not be written (e.g. a full disk): the previous saved index stays valid and in use."""
        with self._save_lock:
            tmp = None
            try:
                tmp = temp_path_beside(self.index_dir / f"{self.slug}.hnsw")
                with self._lock.read():
                    self._index.save_index(str(tmp))
                    count = self._index.element_count
                    capacity = self._index.get_max_elements()
                    deleted = sorted(self._deleted)
                    waypoints = self._waypoints
                    seq = self._synced_seq
                    ef = self._ef
                with open(tmp, "rb+") as fh:  # hnswlib does not fsync (and reports no write errors)
                    os.fsync(fh.fileno())
                size = tmp.stat().st_size
                check_hnsw_header(tmp, self.dim, self.params.M, count)
                sha = _sha256_of(tmp)
                if size <= self.params.verify_reload_max_bytes:
                    probe = hnswlib.Index(space=SPACE, dim=self.dim)
                    probe.load_index(str(tmp), max_elements=max(capacity, 1))
                    if probe.element_count != count or probe.dim != self.dim:
                        raise IndexDamaged(f"reloaded {probe.element_count} x {probe.dim}, wrote {count} x {self.dim}")
                    del probe
                final = self.index_dir / f"{self.slug}.{sha[:16]}.hnsw"
                os.replace(tmp, final)
                tmp = None
                fsync_dir(self.index_dir)
                manifest = {
                    "format": MANIFEST_FORMAT,
                    "model_id": self.model_id,
                    "dim": self.dim,
                    "space": SPACE,
                    "file": final.name,
                    "file_size": size,
                    "sha256": sha,
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
                self._write_manifest(manifest)
            except (OSError, IndexDamaged, RuntimeError) as exc:
                log.error("could not save the search index to %s: %s. The previous index is kept; it is brought "
                          "up to date from the catalog on the next start (free disk space if it is full)",
                          self.index_dir, exc)  # fmt: skip
                if tmp is not None:
                    tmp.unlink(missing_ok=True)
                return False
            previous, self._file = self._file, final
            if previous is not None and previous != final:
                try:
                    previous.unlink(missing_ok=True)
                except OSError as exc:  # e.g. still open in another process on Windows: removed on a later open
                    log.debug("could not remove the previous index file %s: %s", previous, exc)
            return True

    def _write_manifest(self, manifest: dict) -> None:
        tmp = temp_path_beside(self.manifest_path)
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(manifest, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.manifest_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(self.index_dir)

    def _remove_stale_files(self) -> None:
        """Delete our own leftovers: index files no manifest names and temp files of crashed saves. Files younger
        than STALE_AFTER_S are left alone: another VSearch process (a CLI search beside a running indexer) may be
        in the middle of a save, and its new file is named by the manifest only at the end."""
        keep = {self._file.name} if self._file else set()
        try:
            keep.add(str(self._read_manifest()["file"]))  # another process may have saved since we loaded
        except (IndexDamaged, KeyError):
            pass
        now = time.time()
        for candidate in self.index_dir.iterdir():
            name = candidate.name
            ours = (name.startswith(self.slug + ".") and name.endswith(".hnsw")) or name.startswith(
                (f".{self.slug}.hnsw.", f".{self.slug}.manifest.json.")
            )
            if not ours or name in keep:
                continue
            try:
                if now - candidate.stat().st_mtime < STALE_AFTER_S:
                    continue
                log.debug("removing stale index file %s", candidate)
                candidate.unlink()
            except OSError:
                continue

    def close(self) -> None:
        """Release the graph's memory (the saved file is untouched). Further use is an error."""
        with self._lock.write():
            self._index = self._new_graph(1)
            self._deleted = set()
            self._pivots = None
            self._waypoints, self._waypoint_maker = 0, self._new_waypoint_maker()


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
