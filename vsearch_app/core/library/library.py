"""The photo library over one data directory: its folders, its catalog and vector index, indexing and search.

``Library`` ties the pieces together and owns their lifetimes: the catalog (core.store.catalog, the source of
truth), the model's vector index (core.store.sharded_index, a cache of the catalog's embeddings, synced after every
committed batch and saved now and then), the embedder (made on first need by ``embedder_factory``), the indexer
(core.library.indexer). Reconciling folders with the disk is core.library.reconcile (``reconcile``,
``reconcile_paths`` and ``forget_missing`` run it and sync the index); ranking and paging search hits is
core.library.search (``search_results`` makes the query vector and picks the ranker). It is Qt-free and synchronous;
``core.service.LibraryService`` wraps it for the CLI and the desktop app, and ``core.library.watcher`` drives it from
file-system events.

The model is loaded lazily: reconciling a library where nothing changed never loads it, and managing folders works
before any model is downloaded. Vectors are per model (``model_id``, see core.engine.model_identity): each model sees
its own pending work and counts, and switching models never discards another model's vectors.

Threads: ``save_index`` never holds the lock a search takes (see its docstring); ``close`` waits for a save in
progress and then makes every further use raise LibraryClosedError. Long steps report phases (core/library/phases.py).
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from vsearch_app.core.engine.model_identity import display_name
from vsearch_app.core.library.caption_match import VectorCache, check_caption_weight, find_matches
from vsearch_app.core.library.filtered_search import SORT_POOL, browse_ranker, filtered_ranker, sorted_ranker
from vsearch_app.core.library.filters import allowed_ids, browse_ids, cameras, check_filter, photo_months
from vsearch_app.core.library.good_match import good_match_cut, sample_ids
from vsearch_app.core.library.indexer import Indexer
from vsearch_app.core.library.metadata_backfill import backfill_metadata
from vsearch_app.core.library.phases import RunReporter, check_cancel, rebuild_reporter
from vsearch_app.core.library.query import as_terms, combine, is_empty_query
from vsearch_app.core.library.reconcile import ChangeReport, PathsReconciled, Reconciler
from vsearch_app.core.library.scanner import FileStat, is_within, stat_file
from vsearch_app.core.library.search import (
    MAX_RESULTS,
    CaptionFusion,
    SearchResults,
    check_limit,
    check_sort,
    check_threshold,
    exact_ranker,
    index_ranker,
    no_folders_yet,
    nothing_to_search,
)
from vsearch_app.core.store import catalog_backup
from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog, RootRecord
from vsearch_app.core.store.catalog_recovery import Recovery, open_catalog
from vsearch_app.core.store.sharded_index import ShardedIndex, saved_index_bytes
from vsearch_app.core.types import (
    FileState,
    IndexProgress,
    IndexReport,
    QueryTerm,
    SearchFilter,
    SearchHit,
    SortOrder,
)
from vsearch_app.errors import (
    DataDirError,
    DiskFullError,
    ImageDecodeError,
    InvalidArgumentError,
    LibraryClosedError,
    OperationCancelled,
)

log = logging.getLogger(__name__)

INDEX_DIRNAME = "index"
EXACT_FOLDER_LIMIT = 50_000  # a folder filter with at most this many files is searched exactly, from the catalog


class Library:
    """One photo library: the folders, catalog, vector index and embedder of one data folder (see the module
    docstring). Use it through core.service.LibraryService, which adds the single writer and the watcher."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        model_id: str | Callable[[], str],
        embedder_factory: Callable[[], Any],
        batch_size: int = 16,
        commit_every: int = 64,
        save_every_s: float = 600.0,
        backup_every_s: float = catalog_backup.BACKUP_EVERY_S,
        read_only: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        # read_only: a data folder VSearch may not write (read-only disk or mount, permissions): searching works
        # from what is there, indexing says why it cannot (check_writable).
        self.read_only = read_only
        if not read_only:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        # A callable is asked once, when the model first matters (indexing, searching, per-model counts), so
        # managing folders works before any model is downloaded, and a wrong model fails before anything changes.
        self._model_id = model_id
        self.on_index_done: Callable[[], None] | None = None  # called after every index run that did not fail
        # A damaged catalog is put aside and restored from its backup (or started anew) here; ``recovery`` says
        # what happened, for the user (core/store/catalog_recovery.py).
        self.catalog: Catalog
        self.recovery: Recovery | None
        self.catalog, self.recovery = open_catalog(self.data_dir / CATALOG_FILENAME, read_only=read_only)
        self.index_dir = self.data_dir / INDEX_DIRNAME
        if self.recovery is not None:
            _forget_saved_index(self.index_dir)
        self.backup_every_s = backup_every_s
        self._backup_cost_s = 0.0  # how long the last catalog backup took (spaces out the next one)
        self._embedder_factory = embedder_factory
        self._embedder: Any = None
        self._embedder_lock = threading.Lock()
        self._index: ShardedIndex | None = None
        self._index_lock = threading.Lock()  # guards _index (finding, opening, closing it); never held for a save
        self._save_lock = threading.Lock()  # one save at a time; close() waits for a save in progress
        self._closed = False
        self._dirty_index = False
        self.save_every_s = save_every_s
        self._last_save = time.monotonic()
        self._null_sample: tuple[str, int, np.ndarray] | None = None  # the good-match cut's sample (model, size)
        self._caption_vectors = VectorCache()  # the vectors of photos that captions matched, between searches
        self.indexer = Indexer(self.catalog, self.embedder, on_vectors=self._after_batch,
                               on_removed=self._after_batch, batch_size=batch_size, commit_every=commit_every)

    @property
    def model_id(self) -> str:
        if callable(self._model_id):
            self._model_id = self._model_id()
        return self._model_id

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Save the index if it changed, release it, close the catalog and stop the embedder's threads. Safe to call
        twice; afterwards every use raises LibraryClosedError (rather than quietly finding nothing)."""
        with self._save_lock, self._index_lock:
            if self._closed:
                return
            self._closed = True
            index, self._index = self._index, None
            if index is not None:
                if self._dirty_index:
                    index.save()
                index.close()
        self.catalog.close()
        self.catalog = _ClosedCatalog()
        with self._embedder_lock:
            close_embedder = getattr(self._embedder, "close", None)  # test doubles may not have one
            if close_embedder is not None:
                close_embedder()

    def embedder(self) -> Any:
        with self._embedder_lock:
            if self._closed:
                raise _ClosedCatalog.error()
            if self._embedder is None:
                self._embedder = self._embedder_factory()
                if self._embedder.model_id != self.model_id:
                    log.debug("embedder reports model id %s for %s", self._embedder.model_id, self.model_id)
            return self._embedder

    def vector_index(
        self,
        *,
        create: bool = True,
        progress: Callable[[IndexProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> ShardedIndex | None:
        """The model's vector index, opened (checked, caught up or rebuilt) on first use. None while the catalog
        has no embedding of this model and ``create`` is False. An open reports "rebuilding" to ``progress``, and
        ``cancel`` stops it (OperationCancelled); searches wait for an open, never for a save."""
        with self._index_lock:
            if self._closed:
                raise _ClosedCatalog.error()
            if self._index is None:
                dim = self.catalog.model_dim(self.model_id)
                if dim is None:
                    if not create:
                        return None
                    dim = int(self.embedder().dim)
                check_cancel(cancel, "opening the search index")
                self._index = ShardedIndex.open_or_rebuild(self.index_dir, self.model_id, dim, self.catalog,
                                                           progress=rebuild_reporter(progress, self.index_dir),
                                                           cancel=cancel)
                if self._index.save_error is not None:  # rebuilt but not saved (a full disk): try again later
                    self._dirty_index = True
            return self._index

    def _after_batch(self, *_: object) -> None:
        """A batch was committed: bring the index up to date (the catalog's change counter says what changed).
        During a long first index the file is also saved now and then, so a crash costs a short catch-up from
        the catalog at the next start rather than a full rebuild."""
        index = self.vector_index()
        if index is not None and index.sync(self.catalog):
            self._dirty_index = True
        if self._dirty_index and time.monotonic() - self._last_save >= self.save_every_s:
            self.save_index()

    def sync_index(self) -> None:
        """Bring the open index up to date with the catalog. One not open yet is left alone: it catches up from the
        catalog when it opens (so a scan or a folder change never loads, or rebuilds, an index by the way)."""
        with self._index_lock:
            index = self._index
        if index is not None and index.sync(self.catalog):
            self._dirty_index = True

    def save_index(self, progress: Callable[[], None] | None = None) -> bool:
        """Write the index if it changed (``progress()`` is called when a save starts). Searches go on meanwhile:
        the index lock, which a search takes to find the index, is held only to look at it; each shard writes its
        graph under its read lock (searches share it), then fsyncs, hashes and checks the new file without any lock
        and swaps it in by renaming (core/store/vector_index.py)."""
        with self._save_lock:
            with self._index_lock:
                index = self._index
                if index is None or not self._dirty_index:
                    return True
                self._dirty_index = False  # a sync during the save sets it again, so that change is saved later
            if progress is not None:
                progress()
            ok = index.save()
            if not ok:
                self._dirty_index = True
            self._last_save = time.monotonic()
            return ok

    def check_writable(self) -> None:
        """DataDirError when this library's data folder is read-only (what indexing needs, in one line)."""
        if self.read_only:
            raise DataDirError(f"cannot index: the data folder {self.data_dir} is read-only; search still works",
                               param="data_dir")

    def _raise_if_disk_full(self, index: ShardedIndex | None) -> None:
        """After a save that failed: a full disk is the user's to fix, so it is said (nothing is lost: every vector
        is in the catalog, and the index catches up from it at the next start)."""
        error = index.save_error if index is not None else None
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            self._dirty_index = False  # close() need not try again: the next open catches up from the catalog
            raise DiskFullError(f"the disk holding the search index {self.index_dir} is full; what was embedded is "
                                "kept in the catalog: free some space and run again")

    def _back_up_catalog(self) -> None:
        if not self.read_only:
            every = catalog_backup.next_interval(self.backup_every_s, self._backup_cost_s)
            seconds = catalog_backup.write_backup(self.catalog, every_s=every)
            if seconds is not None:
                self._backup_cost_s = seconds

    # --- roots --------------------------------------------------------------------------------------------------

    def add_folder(self, path: str | os.PathLike[str]) -> RootRecord:
        folder = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
        if not folder.is_dir():
            raise InvalidArgumentError(f"{folder} is not a folder; give the path of a folder of photos")
        if is_within(str(self.data_dir), str(folder)) and folder != self.data_dir:
            log.info("%s contains VSearch's data folder %s; it is skipped when scanning", folder, self.data_dir)
        if is_within(str(folder), str(self.data_dir)):
            raise InvalidArgumentError(f"{folder} is inside VSearch's own data folder; choose a photo folder")
        return self.catalog.add_root(folder)

    def remove_folder(self, path: str | os.PathLike[str]) -> int:
        """Stop watching a folder and forget its files (the files themselves are not touched)."""
        folder = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
        if not any(root.path == folder for root in self.catalog.roots()):
            raise InvalidArgumentError(f"{folder} is not a watched folder; `vsearch folders list` shows them")
        removed = self.catalog.remove_root(folder)
        self.sync_index()
        return len(removed)

    # --- reconciliation -----------------------------------------------------------------------------------------

    def _reconciler(self) -> Reconciler:
        return Reconciler(self.catalog, self.data_dir, lambda: self.model_id)

    def reconcile(
        self,
        roots: Iterable[RootRecord] | None = None,
        *,
        progress: Callable[[IndexProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> ChangeReport:
        """Compare whole roots (default: every root) with the disk, record the differences and sync the open index;
        nothing is embedded (core/library/reconcile.py has the rules). Reports "scanning" to ``progress``;
        ``cancel`` stops the walk (OperationCancelled) before anything is recorded, except roots found
        unreachable, which are marked offline as soon as they are seen."""
        report = self._reconciler().roots(roots, progress=progress, cancel=cancel)
        self.sync_index()
        return report

    def reconcile_paths(
        self,
        paths: Iterable[str],
        *,
        accept: Callable[[FileStat], bool] | None = None,
        keep_gone: bool = False,
    ) -> PathsReconciled:
        """Reconcile only ``paths`` (files or folders, existing or not), as the watcher reports them: files that
        ``accept(stat)`` refuses (not settled) come back in ``deferred``; with ``keep_gone`` vanished rows are kept
        and returned in ``gone`` (the other half of a move may come later)."""
        result = self._reconciler().paths(paths, accept=accept, keep_gone=keep_gone)
        if result.report.any:
            self.sync_index()
        return result

    def forget_missing(self, paths: Iterable[str]) -> int:
        """Delete the rows of files that are still missing (their root being online); returns how many."""
        removed = self._reconciler().forget_missing(paths)
        if removed:
            self.sync_index()
        return removed

    # --- indexing -----------------------------------------------------------------------------------------------

    def index(
        self,
        *,
        progress: Callable[[IndexProgress], None] | None = None,
        cancel: threading.Event | None = None,
        pause: threading.Event | None = None,
        reconcile: bool = True,
    ) -> IndexReport:
        """Bring the catalog up to date with the disk, then embed every file that has no current vector of this
        model (committed batch by batch). The model is identified first, so a wrong model changes nothing.

        ``progress`` gets the phases in order: "scanning", "rebuilding" (the index is opened, unless the model
        has no vectors yet), "embedding", "reading metadata" (photos indexed before their metadata was read; never
        embeds), "saving". ``cancel`` stops the scan, the index rebuild or the embedding
        (after the batch in flight, which is committed); the report then says ``cancelled``."""
        self.check_writable()
        model_id = self.model_id
        run = RunReporter(progress)
        changes = None
        unreadable: tuple[tuple[str, str], ...] = ()
        try:
            if reconcile:
                changes = self.reconcile(progress=progress, cancel=cancel)
                unreadable = changes.errors
            pending = self.catalog.pending(model_id)
            if self.catalog.model_dim(model_id) is not None:  # (a first run makes its index at its first batch)
                self.vector_index(progress=progress, cancel=cancel)  # now, with progress: it may need a rebuild
        except OperationCancelled:
            report = IndexReport(cancelled=True)
        else:
            report = self.indexer.run(pending, model_id=model_id, progress=run.embedding if progress else None,
                                      cancel=cancel, pause=pause)
        if not report.cancelled:
            try:  # the facts of photos indexed before they were read (never embeds; see metadata_backfill.py)
                backfill_metadata(self.catalog, progress=progress, cancel=cancel)
            except OperationCancelled:
                report = replace(report, cancelled=True)
        if unreadable:
            report = replace(report, unreadable=unreadable)
        self.sync_index()
        if not self.save_index(progress=run.saving_callback(self.index_dir)):
            self._raise_if_disk_full(self._index)
        if report.embedded or report.failed or (changes is not None and changes.any):
            self._back_up_catalog()
        if self.on_index_done is not None:
            self.on_index_done()
        return report

    def counts(self) -> dict[str, int]:
        """Photos per state as this model sees them ('indexed': has a current vector of this model)."""
        return self.catalog.counts(self.model_id)

    # --- search -------------------------------------------------------------------------------------------------

    def query_vector(self, query: str | Sequence[str] | Sequence[QueryTerm], *,
                     cwd: str | os.PathLike[str] | None = None) -> np.ndarray:
        return self.terms_vector(as_terms(query, cwd=cwd))

    def terms_vector(self, terms: Sequence[QueryTerm]) -> np.ndarray:
        """The query vector of checked terms. Stored vectors come first (photo terms, indexed unchanged images), so
        a query made only of them never loads the model, and a photo without a vector fails before it loads."""
        vectors: list[np.ndarray | None] = [None] * len(terms)
        for i, term in enumerate(terms):
            if term.is_photo:
                vectors[i] = self._photo_vector(int(term.value))
            elif term.is_image:
                vectors[i] = self._stored_vector(term.value)  # an indexed photo: no need to run the model again
        texts = [i for i, term in enumerate(terms) if term.kind == "text"]
        if texts:
            vectors_of_texts = self.embedder().embed_texts([terms[i].value for i in texts])
            for i, vector in zip(texts, vectors_of_texts, strict=True):
                vectors[i] = vector
        for i, term in enumerate(terms):
            if vectors[i] is not None:
                continue
            result = self.embedder().embed_images([term.value], batch_size=1)
            if not len(result.indices):
                reason = result.failures[0][1] if result.failures else "unknown error"
                raise ImageDecodeError(f"cannot use {term.value} as a query image: {reason}", reason=reason)
            vectors[i] = result.vectors[0]
        return combine(np.stack(vectors), [t.weight for t in terms])

    def _stored_vector(self, path: str) -> np.ndarray | None:
        row = self.catalog.get_file(path)
        st = stat_file(path)
        if row is None or row.state != FileState.INDEXED or st is None:
            return None
        if (st.size, st.mtime_ns) != (row.size, row.mtime_ns):  # changed since it was embedded
            return None
        return self.catalog.get_embedding(path, self.model_id)

    def _photo_vector(self, file_id: int) -> np.ndarray:
        """The stored vector of an indexed photo ("Find similar"): never runs the model."""
        row = self.catalog.get_file_by_id(file_id)
        if row is None:
            raise InvalidArgumentError(f"photo #{file_id} is no longer in the library", param="query")
        vector = self.catalog.get_embedding(row.path, self.model_id)
        if vector is None:
            raise InvalidArgumentError(f"{row.display} has no vector of the model {display_name(self.model_id)} "
                                       "yet; index it first, or use the file as an image term", param="query")
        return vector

    def search(
        self,
        query: str | Sequence[str] | Sequence[QueryTerm],
        *,
        limit: int = 20,
        threshold: float | None = None,
        folder: str | os.PathLike[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        filters: SearchFilter | None = None,
        sort: SortOrder = SortOrder.SCORE,
        caption_weight: float = 0.0,
    ) -> list[SearchHit]:
        """Up to ``limit`` photos nearest to the query, best first. Offline and failed files are left out."""
        results = self.search_results(query, limit=limit, threshold=threshold, folder=folder, cwd=cwd,
                                      filters=filters, sort=sort, caption_weight=caption_weight)
        return results.page(0, limit).hits

    def search_results(
        self,
        query: str | Sequence[str] | Sequence[QueryTerm],
        *,
        limit: int = MAX_RESULTS,
        threshold: float | None = None,
        folder: str | os.PathLike[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        filters: SearchFilter | None = None,
        sort: SortOrder = SortOrder.SCORE,
        caption_weight: float = 0.0,
    ) -> SearchResults:
        """The query's ranking, read a page at a time (core.library.search). ``query``: text in the query syntax,
        command line words, or QueryTerm objects; an empty query lists the photos ``filters`` allows in ``sort``
        order (SCORE: newest first). ``filters`` (core.types.SearchFilter) apply before the top-k cut
        (core/library/filtered_search.py); DATE and NAME re-order the best hits. ``caption_weight`` > 0 fuses the
        stored captions' match with the query's words into the ranking (core.library.search's docstring); 0 ranks
        by the vectors alone. The query vector is made here (the model runs here, if at all)."""
        check_limit(limit)
        check_threshold(threshold)
        sort = check_sort(sort)
        filters = check_filter(filters)
        caption_weight = check_caption_weight(caption_weight)
        filter_ids = None
        folder_path = None
        if folder is not None:
            folder_path = Path(os.path.abspath(os.path.expanduser(os.fspath(folder))))
            if self.catalog.root_for(folder_path) is None:
                raise InvalidArgumentError(f"{folder_path} is not inside a watched folder", param="folder")
            filter_ids = self.catalog.ids_under(folder_path)
            if filters is not None:
                filters = replace(filters, folders=narrow_folders(filters.folders, folder_path))
        browse = is_empty_query(query)
        terms = None if browse else as_terms(query, cwd=cwd)  # a malformed query is reported before anything loads
        if not self.catalog.roots():  # said before the model is looked up: it may not even be downloaded yet
            raise no_folders_yet()
        index = self.vector_index(create=False)
        if index is None or len(index) == 0:
            raise nothing_to_search(self.catalog, self.model_id)
        online = lambda: {root.id: on for root, on in self.roots_online()}  # noqa: E731
        if browse:
            if filters is None and folder_path is not None:
                filters = SearchFilter(folders=(folder_path,))
            ids = browse_ids(self.catalog, filters, sort)
            return SearchResults(self.catalog, browse_ranker(ids), limit=limit, candidates=len(ids),
                                 roots_online=online)
        vector = self.terms_vector(terms)
        if filters is not None:
            allowed = allowed_ids(self.catalog, filters)
            ranker, candidates = filtered_ranker(self.catalog, index, self.model_id, index.dim, vector, filters,
                                                 allowed)
        elif folder_path is not None and filter_ids is not None and len(filter_ids) <= EXACT_FOLDER_LIMIT:
            # Exact, from the catalog's vectors: the index's own exact path reads them through hnswlib's get_items
            # (~100 us each: 3 s for 50k), and its filtered graph search misses results when few photos match.
            ids, vectors = self.catalog.embeddings_under(folder_path, self.model_id)
            ranker, candidates = exact_ranker(ids, vectors, vector), len(ids)
        else:
            ranker = index_ranker(index, vector, filter_ids)
            candidates = len(filter_ids) if filter_ids is not None else len(index)
        fusion = None
        if caption_weight > 0:
            matches = find_matches(self.catalog, terms, self.model_id,
                                   allowed_ids=allowed if filters is not None else filter_ids,
                                   cache=self._caption_vectors)
            if matches is not None:
                ranker = fusion = CaptionFusion(ranker, matches, vector, caption_weight, threshold)
        cut = self.good_match_cut(vector, index)
        if sort != SortOrder.SCORE:
            pool = min(limit, SORT_POOL)
            ranker = sorted_ranker(self.catalog, ranker, sort, pool, threshold)
            threshold, candidates = None, min(candidates, pool)
        return SearchResults(self.catalog, ranker, limit=limit, threshold=threshold, candidates=candidates,
                             roots_online=online, good_cut=cut, fusion=fusion)

    def good_match_cut(self, vector: np.ndarray, index: ShardedIndex) -> float | None:
        """The query's good-match cut (core/library/good_match.py), from a random sample of this model's vectors
        drawn again when the library has grown or shrunk by a tenth since."""
        size = len(index)
        cached = self._null_sample
        if cached is None or cached[0] != self.model_id or abs(size - cached[1]) > max(cached[1] // 10, 8):
            chosen = sample_ids(self.catalog.embedding_ids(self.model_id))
            _, vectors = self.catalog.embeddings_of(chosen, self.model_id)
            cached = self._null_sample = (self.model_id, size, vectors)
        return good_match_cut(vector, cached[2])

    def photo_months(self, filters: SearchFilter | None = None) -> list[tuple[str, int]]:
        return photo_months(self.catalog, filters)

    def cameras(self) -> list[tuple[str, int]]:
        return cameras(self.catalog)

    # --- status -------------------------------------------------------------------------------------------------

    def roots_online(self) -> list[tuple[RootRecord, bool]]:
        return [(root, root.path.is_dir() and os.access(root.path, os.R_OK | os.X_OK))
                for root in self.catalog.roots()]

    def index_file(self) -> tuple[Path | None, int]:
        """Where this model's index is kept (its folder: the index is several files, one per shard) and the bytes
        of its saved graph files, without loading it. (None, 0) before it was first saved."""
        index = self._index
        size = index.size_bytes() if index is not None else saved_index_bytes(self.index_dir, self.model_id)
        return (self.index_dir, size) if size else (None, 0)


def _forget_saved_index(index_dir: Path) -> None:
    """Delete the saved index (a cache) after the catalog was restored or started anew: it was saved from the
    damaged catalog, so its labels may name other photos now. It is rebuilt from the catalog when it opens."""
    for file in [*index_dir.glob("*.manifest.json"), *index_dir.glob("*.hnsw")]:  # manifests first: the commit
        try:
            file.unlink()
        except OSError as exc:
            log.warning("could not remove %s (%s); the index is still checked against the catalog", file, exc)


def narrow_folders(folders: tuple[Path, ...], folder: Path) -> tuple[Path, ...]:
    """The folders that are inside both ``folder`` and one of ``folders`` (a filter's folders and ``--in``); a
    folder that cannot exist when they do not overlap, so that the filter then allows nothing."""
    if not folders or any(is_within(str(folder), str(f)) for f in folders):
        return (folder,)
    inside = tuple(f for f in folders if is_within(str(f), str(folder)))
    return inside or (folder / "\0",)  # "\0" is in no file name: matches no photo


class _ClosedCatalog:
    """Stands in for the catalog after Library.close(): any use raises LibraryClosedError, not an sqlite error."""

    @staticmethod
    def error() -> LibraryClosedError:
        return LibraryClosedError("this photo library was closed; open it again to use it")

    def __getattr__(self, name: str) -> Any:
        raise self.error()

    def close(self) -> None:
        pass
