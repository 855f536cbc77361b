"""Embedding the catalog's pending photos, committed in small batches.

Pipeline: for each batch of ``commit_every`` files (64: a few seconds of work on a CPU and four model batches, so
the Embedder's decode-ahead covers most of the model time; only each batch's first decode is not overlapped), a
small thread pool reads the cheap facts (content fingerprint, pixel size, EXIF metadata: photo_metadata.py) while
the Embedder decodes (its own pool) and runs the model; then one catalog transaction records the whole batch (and
each photo's metadata, with its ``meta_version``) and the new vectors go to the vector index. A crash loses at most
the batch in flight: everything before it is committed, and the files of that batch are still 'pending' for the
next run.

A search typed while indexing does not wait for a batch: the Embedder runs a text query in the caller's thread,
beside the image batch in flight. Pause, resume and cancel are checked between batches (cancel also between model
batches inside one).

A file that cannot be decoded is recorded 'failed' with its reason; the scanner does not hand it back until its size
or mtime changes. A file that vanished or changed while we read it stays 'pending' for the scanner to sort out:
a vanished file may sit on a drive that was just unplugged, and deleting its row then would lose its vector.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from vsearch_app.core.library.photo_metadata import META_VERSION, PhotoMetadata, read_metadata
from vsearch_app.core.library.scanner import FileStat, fingerprint, stat_file
from vsearch_app.core.store.catalog import Catalog, FileRecord
from vsearch_app.core.types import IndexProgress, IndexReport

log = logging.getLogger(__name__)


class ImageEmbedder(Protocol):
    model_id: str
    dim: int

    def embed_images(self, sources: Sequence[str], *, batch_size: int = 16,
                     should_stop: Callable[[], bool] | None = None): ...


@dataclass(frozen=True)
class PhotoFacts:
    fingerprint: str | None
    captured_at: str | None
    width: int | None
    height: int | None
    meta: PhotoMetadata | None = None  # everything the EXIF reader found (core/library/photo_metadata.py)


def read_photo_facts(path: str, size: int | None = None, mtime_ns: int | None = None) -> PhotoFacts:
    """Fingerprint, capture time (ISO 8601), upright pixel size and the photo's metadata; missing pieces are None."""
    try:
        fp = fingerprint(path, size)
    except OSError:
        fp = None
    meta = read_metadata(path, mtime_ns)
    return PhotoFacts(fp, meta.captured_at, meta.width, meta.height, meta)


class Indexer:
    """Embeds catalog rows and records the results. ``on_vectors(ids, vectors)`` receives each committed batch
    (feed the vector index); ``on_removed(ids)`` receives ids whose vectors the catalog dropped."""

    def __init__(
        self,
        catalog: Catalog,
        embedder: ImageEmbedder | Callable[[], ImageEmbedder],
        *,
        on_vectors: Callable[[np.ndarray, np.ndarray], None] | None = None,
        on_removed: Callable[[np.ndarray], None] | None = None,
        batch_size: int = 16,
        commit_every: int = 64,
        fact_workers: int = 2,
    ) -> None:
        self.catalog = catalog
        self._embedder = embedder
        self._on_vectors = on_vectors
        self._on_removed = on_removed
        self.batch_size = batch_size
        self.commit_every = max(1, commit_every)
        self._fact_workers = max(1, fact_workers)
        self.embedded_total = 0  # photos embedded by this indexer (tests and logs prove skipped work with it)

    def embedder(self) -> ImageEmbedder:
        if callable(self._embedder) and not hasattr(self._embedder, "embed_images"):
            self._embedder = self._embedder()  # load the model only when there is work
        return self._embedder  # type: ignore[return-value]

    def run(
        self,
        records: Sequence[FileRecord],
        *,
        model_id: str | None = None,
        progress: Callable[[IndexProgress], None] | None = None,
        cancel: threading.Event | None = None,
        pause: threading.Event | None = None,
    ) -> IndexReport:
        """Embed ``records`` (normally ``catalog.pending(model_id)``) batch by batch, filing the vectors under
        ``model_id`` (default: the embedder's); returns what happened."""
        total = len(records)
        started = time.monotonic()
        embedded = failed = skipped = done = 0
        cancelled = False
        if not total:
            return IndexReport()
        embedder = self.embedder()
        with ThreadPoolExecutor(self._fact_workers, thread_name_prefix="vsearch-facts") as pool:
            for start in range(0, total, self.commit_every):
                if not _wait_while_paused(pause, cancel):
                    cancelled = True
                    break
                batch = list(records[start:start + self.commit_every])
                outcome = self._run_batch(embedder, model_id or embedder.model_id, batch, pool, cancel)
                embedded += outcome.embedded
                failed += outcome.failed
                skipped += outcome.skipped
                done += len(batch)
                if progress is not None:
                    elapsed = max(time.monotonic() - started, 1e-9)
                    rate = done / elapsed
                    progress(IndexProgress(done, total, failed, rate, (total - done) / rate if rate > 0 else None,
                                           current=Path(batch[-1].path)))
                if outcome.cancelled:
                    cancelled = True
                    break
        seconds = time.monotonic() - started
        if embedded or failed:
            log.info("embedded %d photo(s), %d failed, in %.1f s", embedded, failed, seconds)
        return IndexReport(embedded, failed, skipped, cancelled, seconds)

    def _run_batch(self, embedder: ImageEmbedder, model_id: str, batch: list[FileRecord], pool: ThreadPoolExecutor,
                   cancel: threading.Event | None) -> IndexReport:
        paths = [os.fspath(r.path) for r in batch]
        before = [stat_file(p) for p in paths]
        facts = [pool.submit(read_photo_facts, p, st.size if st else None, st.mtime_ns if st else None)
                 for p, st in zip(paths, before, strict=True)]
        readable = [i for i, st in enumerate(before) if st is not None]
        should_stop = cancel.is_set if cancel is not None else None
        result = embedder.embed_images([paths[i] for i in readable], batch_size=self.batch_size,
                                       should_stop=should_stop)
        vectors = {readable[local]: result.vectors[row] for row, local in enumerate(result.indices)}
        reasons = {readable[local]: reason for local, reason in result.failures}
        for i, vector in list(vectors.items()):
            if not np.all(np.isfinite(vector)):  # one odd image must not block the batch (or every later run)
                del vectors[i]
                reasons[i] = "the model produced an invalid vector (NaN or infinity) for this image"
        attempted = len(vectors) + len(reasons)
        cancelled = cancel is not None and cancel.is_set() and attempted < len(readable)
        new_ids, new_vectors, removed = [], [], []
        embedded = failed = skipped = 0
        with self.catalog.transaction():
            for i, path in enumerate(paths):
                st = before[i]
                if i not in vectors and i not in reasons:
                    skipped += st is None
                    continue
                if not _unchanged(st, stat_file(path)):
                    skipped += 1  # vanished or still being written: the scanner or watcher will come back to it
                    continue
                fact = facts[i].result()
                if i in vectors:
                    fid = self.catalog.record_embedding(
                        path, model_id, vectors[i], size=st.size, mtime_ns=st.mtime_ns,
                        fingerprint=fact.fingerprint, captured_at=fact.captured_at, width=fact.width,
                        height=fact.height,
                    )
                    if fact.meta is not None:
                        self.catalog.record_metadata(fid, fact.meta, META_VERSION)
                    new_ids.append(fid)
                    new_vectors.append(vectors[i])
                    embedded += 1
                else:
                    removed.append(self.catalog.record_failure(path, reasons[i], size=st.size, mtime_ns=st.mtime_ns,
                                                               fingerprint=fact.fingerprint))
                    log.info("cannot index %s: %s", path, reasons[i])
                    failed += 1
        # The catalog is committed first: the index is a cache that catches up from it after a crash.
        if new_ids and self._on_vectors is not None:
            self._on_vectors(np.asarray(new_ids, dtype=np.int64), np.stack(new_vectors).astype(np.float32))
        if removed and self._on_removed is not None:
            self._on_removed(np.asarray(removed, dtype=np.int64))
        self.embedded_total += embedded
        return IndexReport(embedded, failed, skipped, cancelled)


def _unchanged(before: FileStat | None, after: FileStat | None) -> bool:
    return before is not None and after is not None and (before.size, before.mtime_ns) == (after.size,
                                                                                           after.mtime_ns)


def _wait_while_paused(pause: threading.Event | None, cancel: threading.Event | None) -> bool:
    """Block while ``pause`` is set; False when cancelled meanwhile."""
    while pause is not None and pause.is_set():
        if cancel is not None and cancel.wait(0.1):
            return False
        if cancel is None:
            time.sleep(0.1)
    return not (cancel is not None and cancel.is_set())
