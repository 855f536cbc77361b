"""A model's vector index split into a few hnswlib graphs ("shards"), searched in parallel and merged.

API summary (the same shape as a single VectorIndex; core.library.library uses this one):

    index = ShardedIndex.open_or_rebuild(index_dir, model_id, dim, catalog)   # each shard loaded or rebuilt
    index.sync(catalog) -> int; index.add(ids, vectors); index.remove(ids) -> int
    index.search(vector, k, filter_ids=None) -> (ids int64, cosine similarity float32, best first)
    index.save() -> bool; len(index); index.shard_count; index.files; index.size_bytes(); index.close()
    saved_index_bytes(index_dir, model_id)   # the saved size without loading anything

Why shards: at 1M photos a text query, which sits away from every photo, needs a wide beam to find its true top 10
in one big graph. Recall at a given beam width falls with the graph's size, so two graphs of half the size, each
searched on its own core, give a text query more recall in the same wall time (benchmarks/RESULTS.md). With one
core the shards are searched one after the other.

A photo's shard is its catalog file id modulo the shard count, so adds and deletions need no map. Every shard is
a complete VectorIndex of its own: its own manifest and file (``<slug>-shard<i>of<K>``), its own atomic save,
damage check and rebuild, and its own catalog change counter. A crash between two shards' saves therefore leaves
each one consistent on its own, and the next open catches each up from the catalog. Parameters in IndexParams
apply per shard (waypoint_min_size and ood_min_size count the vectors of one graph).

An index saved before shards existed (one graph, ``<slug>.manifest.json``) is kept and used as it is, one shard,
rather than rebuilt on the first start after an update; it is split when it is next rebuilt from nothing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from vsearch_app.core.store.index_files import model_slug
from vsearch_app.core.store.vector_index import EmbeddingSource, IndexParams, VectorIndex
from vsearch_app.errors import InvalidArgumentError, OperationCancelled

log = logging.getLogger(__name__)


def shard_slug(model_id: str, shard: int, count: int) -> str:
    """File stem of one shard. One shard keeps the single-graph name, so an index from before shards still opens."""
    base = model_slug(model_id)
    return base if count == 1 else f"{base}-shard{shard}of{count}"


class ShardOfCatalog:
    """The catalog as one shard sees it: only the embeddings whose file id falls in that shard."""

    def __init__(self, source: EmbeddingSource, shard: int, count: int) -> None:
        self._source, self.shard, self.count = source, shard, count

    def _mine(self, ids: np.ndarray) -> np.ndarray:
        return ids % self.count == self.shard

    def embedding_seq(self) -> int:
        return self._source.embedding_seq()

    def iter_embeddings(
        self, model_id: str, chunk_size: int = 8192, since_seq: int = 0
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # Read chunks K times larger, so that each shard still inserts chunks of about ``chunk_size``.
        for ids, vectors in self._source.iter_embeddings(model_id, chunk_size=chunk_size * self.count,
                                                         since_seq=since_seq):  # fmt: skip
            mine = self._mine(ids)
            if mine.any():
                yield ids[mine], vectors[mine]

    def embedding_ids(self, model_id: str) -> np.ndarray:
        ids = self._source.embedding_ids(model_id)
        return ids[self._mine(ids)]

    def deleted_embedding_ids(self, model_id: str, since_seq: int) -> np.ndarray | None:
        gone = self._source.deleted_embedding_ids(model_id, since_seq)
        return None if gone is None else gone[self._mine(gone)]


class ShardedIndex:
    """See the module docstring."""

    def __init__(self, index_dir: Path, model_id: str, dim: int, shards: list[VectorIndex]) -> None:
        self.index_dir, self.model_id, self.dim = Path(index_dir), model_id, int(dim)  # use the classmethods
        self._shards = tuple(shards)
        workers = min(len(shards), os.cpu_count() or 1) - 1  # the caller's thread searches one shard itself
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="vsearch-shard") if workers > 0 else None

    # -- construction --

    @staticmethod
    def _shard_count(index_dir: Path, model_id: str, params: IndexParams) -> int:
        wanted = max(int(params.shards), 1)
        if wanted == 1:
            return 1
        sharded = all((index_dir / f"{shard_slug(model_id, i, wanted)}.manifest.json").exists() for i in range(wanted))
        legacy = (index_dir / f"{shard_slug(model_id, 0, 1)}.manifest.json").exists()
        return 1 if legacy and not sharded else wanted

    @classmethod
    def create_empty(cls, index_dir: Path, model_id: str, dim: int, params: IndexParams | None = None) -> ShardedIndex:
        """A new, empty in-memory index of ``params.shards`` shards (nothing read; saved on save())."""
        params = params or IndexParams()
        count = max(int(params.shards), 1)
        shards = [VectorIndex.create_empty(index_dir, model_id, dim, params, slug=shard_slug(model_id, i, count))
                  for i in range(count)]  # fmt: skip
        return cls(index_dir, model_id, dim, shards)

    @classmethod
    def open_or_rebuild(
        cls,
        index_dir: Path,
        model_id: str,
        dim: int,
        catalog: EmbeddingSource,
        params: IndexParams | None = None,
        progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> ShardedIndex:
        """Open every shard (each loaded if its manifest and file check out, else rebuilt from the catalog and
        saved), caught up with the catalog. ``progress(done, total)`` counts rebuilt vectors over all shards.
        ``cancel`` is checked between shards and during a rebuild: OperationCancelled (shards already rebuilt
        were saved and load quickly next time)."""
        params = params or IndexParams()
        if dim <= 0:
            raise InvalidArgumentError(f"vector dimension must be positive, got {dim}")
        index_dir = Path(index_dir)
        index_dir.mkdir(parents=True, exist_ok=True)
        count = cls._shard_count(index_dir, model_id, params)
        shards: list[VectorIndex] = []
        rebuilt = [0]  # vectors rebuilt by the shards before this one
        total: list[int] = []  # all of this model's embeddings, read once and only if a shard rebuilds

        def shard_progress(done: int, _shard_total: int) -> None:
            if progress is None:
                return
            if not total:
                total.append(len(catalog.embedding_ids(model_id)))
            progress(rebuilt[0] + done, total[0])

        try:
            for i in range(count):
                if cancel is not None and cancel.is_set():
                    raise OperationCancelled("opening the search index was cancelled")
                view, slug = ShardOfCatalog(catalog, i, count), shard_slug(model_id, i, count)
                shard = VectorIndex.open_or_rebuild(index_dir, model_id, dim, view, params, shard_progress, slug,
                                                    cancel)
                shards.append(shard)
                rebuilt[0] += len(shard)
            if total and progress is not None:  # a shard rebuilt before others loaded: the bar still ends full
                progress(total[0], total[0])
        except BaseException:
            for shard in shards:
                shard.close()
            raise
        return cls(index_dir, model_id, dim, shards)

    # -- properties --

    @property
    def shards(self) -> tuple[VectorIndex, ...]:
        return self._shards

    @property
    def shard_count(self) -> int:
        return len(self._shards)

    @property
    def params(self) -> IndexParams:
        return self._shards[0].params

    @params.setter
    def params(self, params: IndexParams) -> None:
        """New search-time parameters for every shard (e.g. a benchmark sweeping ood_ef); graphs are not rebuilt."""
        for shard in self._shards:
            shard.params = params  # frozen: one instance can be shared

    @property
    def ef(self) -> int:
        return self._shards[0].ef

    def set_ef(self, ef: int) -> None:
        for shard in self._shards:
            shard.set_ef(ef)

    def __len__(self) -> int:
        return sum(len(shard) for shard in self._shards)

    @property
    def pivot_count(self) -> int:
        return sum(shard.pivot_count for shard in self._shards)

    @property
    def waypoint_count(self) -> int:
        return sum(shard.waypoint_count for shard in self._shards)

    @property
    def files(self) -> list[Path]:
        """The saved graph files (one per saved shard)."""
        return [shard.path for shard in self._shards if shard.path is not None]

    def size_bytes(self) -> int:
        return sum(shard.size_bytes() for shard in self._shards)

    # -- edits --

    def _split(self, ids: np.ndarray) -> Iterator[tuple[VectorIndex, np.ndarray]]:
        """(shard, positions in ``ids`` of its ids) for every shard with some."""
        count = len(self._shards)
        if count == 1:
            yield self._shards[0], np.arange(len(ids))
            return
        owner = ids % count
        for i, shard in enumerate(self._shards):
            positions = np.flatnonzero(owner == i)
            if len(positions):
                yield shard, positions

    def add(self, ids: Iterable[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add or replace vectors under catalog file ids, each in its shard."""
        ids_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        vecs = np.asarray(vectors, dtype=np.float32).reshape(len(ids_arr), -1)
        # Checked here, before any shard changes: a bad batch must not land half in one shard.
        self._shards[0].check_vectors(vecs)
        VectorIndex.check_ids(ids_arr)
        for shard, positions in self._split(ids_arr):
            shard.add(ids_arr[positions], vecs[positions])

    def remove(self, ids: Iterable[int] | np.ndarray) -> int:
        ids_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        return sum(shard.remove(ids_arr[positions]) for shard, positions in self._split(ids_arr))

    def sync(self, catalog: EmbeddingSource) -> int:
        """Apply every catalog change since each shard's last sync. Returns the number of ids touched."""
        count = len(self._shards)
        return sum(shard.sync(ShardOfCatalog(catalog, i, count)) for i, shard in enumerate(self._shards))

    def rebuild(
        self,
        catalog: EmbeddingSource,
        progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> int:
        """Rebuild every shard from the catalog; ``progress(done, total)`` counts over all shards. ``cancel``:
        OperationCancelled; shards already rebuilt keep their new graph, the others their old one."""
        count = len(self._shards)
        total = len(catalog.embedding_ids(self.model_id)) if progress is not None else 0
        done = 0
        for i, shard in enumerate(self._shards):
            report = None if progress is None else (lambda d, _t, before=done: progress(before + d, total))
            done += shard.rebuild(ShardOfCatalog(catalog, i, count), report, cancel)
        return done

    # -- search --

    def search(
        self, vector: np.ndarray, k: int = 10, filter_ids: Iterable[int] | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest photos over all shards: (ids int64, cosine similarity float32), best first. The shards
        are searched at once (one on this thread, the others on the pool), each for its own top k."""
        if len(self._shards) == 1:
            return self._shards[0].search(vector, k, filter_ids)
        allowed = None if filter_ids is None else np.asarray(filter_ids, dtype=np.int64).reshape(-1)
        jobs = []
        for i, shard in enumerate(self._shards):
            part = None if allowed is None else allowed[allowed % len(self._shards) == i]
            if part is not None and len(part) == 0:
                continue
            jobs.append((shard, part))
        if not jobs:  # a filter that names nothing: still validate the query, as one shard would
            return self._shards[0].search(vector, k, np.zeros(0, dtype=np.int64))
        (first, first_part), rest = jobs[0], jobs[1:]
        pending = [self._pool.submit(shard.search, vector, k, part) for shard, part in rest] if self._pool else None
        results = [first.search(vector, k, first_part)]
        if pending is None:  # one core: the others in turn
            results += [shard.search(vector, k, part) for shard, part in rest]
        else:
            results += [future.result() for future in pending]
        ids = np.concatenate([r[0] for r in results])
        scores = np.concatenate([r[1] for r in results])
        best = np.argsort(-scores, kind="stable")[:k]
        return ids[best], scores[best]

    # -- saving and closing --

    def save(self) -> bool:
        """Save every shard (each atomically). False if any could not be written; those keep their previous file
        and catch up from the catalog on the next open."""
        return all([shard.save() for shard in self._shards])  # a list: every shard tries, even after a failure

    @property
    def save_error(self) -> BaseException | None:
        """Why the last save() failed for some shard (None: every shard saved)."""
        return next((shard.save_error for shard in self._shards if shard.save_error is not None), None)

    def close(self) -> None:
        """Stop the search threads and release every shard's graph (the saved files are untouched); not to be used
        again."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for shard in self._shards:
            shard.close()


def saved_index_bytes(index_dir: Path, model_id: str, shards: int | None = None) -> int:
    """Bytes of the model's saved graph files, from the manifests on disk (nothing is loaded): the layout of
    ``shards`` (default: IndexParams'), else a single graph from before shards."""
    wanted = max(IndexParams().shards if shards is None else int(shards), 1)
    for count in dict.fromkeys((wanted, 1)):
        total, found = 0, 0
        for i in range(count):
            manifest = Path(index_dir) / f"{shard_slug(model_id, i, count)}.manifest.json"
            try:
                name = json.loads(manifest.read_text(encoding="utf-8"))["file"]
                total += (Path(index_dir) / name).stat().st_size
                found += 1
            except (OSError, ValueError, KeyError, TypeError):
                continue
        if found:
            return total
    return 0
