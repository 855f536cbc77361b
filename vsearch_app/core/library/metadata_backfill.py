"""Filling in the photo metadata of rows indexed before the reader existed (or by an older reader), without
embedding anything.

Schema v5 added the metadata columns with ``meta_version`` 0; the indexer writes the facts of every photo it embeds
from then on (core/library/indexer.py). The rows below ``META_VERSION`` are read here, a batch at a time, from the
files' headers only (core/library/photo_metadata.py: about a millisecond each), and committed batch by batch, so a
cancelled or crashed backfill carries on where it stopped. It runs inside the session's index writer, after each
index run's embedding (``Library.index``: `vsearch index`, the app's start-up run and the watcher's passes), and
reports the phase "reading metadata" with photos done of total. Offline photos wait until their folder is back.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from vsearch_app.core.library.phases import check_cancel
from vsearch_app.core.library.photo_metadata import META_VERSION, read_metadata
from vsearch_app.core.store.catalog import Catalog
from vsearch_app.core.types import IndexProgress

log = logging.getLogger(__name__)

PHASE = "reading metadata"
BATCH = 256  # rows per transaction: a fraction of a second of reading


def backfill_metadata(catalog: Catalog, *, progress: Callable[[IndexProgress], None] | None = None,
                      cancel: threading.Event | None = None, workers: int = 2) -> int:
    """Read and store the metadata of every reachable row older than META_VERSION; returns how many were filled.
    ``cancel`` stops it between batches (OperationCancelled); what was committed stays."""
    total = catalog.count_without_metadata(META_VERSION)
    if not total:
        return 0
    done = 0
    if progress is not None:
        progress(IndexProgress(0, total, 0, 0.0, None, phase=PHASE))
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="vsearch-facts") as pool:
        while True:
            check_cancel(cancel, "reading photo metadata")
            rows = catalog.files_without_metadata(META_VERSION, BATCH)
            if not rows:
                break
            metas = list(pool.map(lambda r: read_metadata(os.fspath(r.path), r.mtime_ns), rows))
            with catalog.transaction():
                for row, meta in zip(rows, metas, strict=True):
                    catalog.record_metadata(row.id, meta, META_VERSION)
            done += len(rows)
            if progress is not None:
                progress(IndexProgress(min(done, total), total, 0, 0.0, None, phase=PHASE))
    log.info("read the metadata of %d photo(s)", done)
    return done
