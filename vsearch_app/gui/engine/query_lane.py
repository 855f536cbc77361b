"""The query lane: searches, status, folder add/remove: short calls on the open LibraryService, one at a time.

Searches are "latest wins" (lane.submit_latest): while one runs, only the newest waiting query is kept, and a result
whose generation is no longer the current one is dropped by the controller. Status refreshes coalesce the same way.
Folder changes are queued in order (each matters).

Jobs wait for the service (``ServiceGate``) so a query typed while the library is still opening runs as soon as it
is open, and fail with the reason when it cannot be opened or the app is closing.

The one place that turns a query into engine calls is ``run_search``: ``service.search_results(terms)`` makes the
query vector and ranks (the slow part, here on the lane), and the first page is read here too. The filter bar's
SearchFilter and SortOrder travel with the query (no terms and a filter: the engine browses the filter); the months
and cameras the filter bar offers are read here too (``facets``), so no catalog query runs on the GUI thread.

The grid reads later pages from the kept engine results in the GUI thread, a page of PAGE_SIZE at a time as it
scrolls: a page is a batched catalog lookup of its rows by id (a few ms for 1,000; no model run, no lock an index
save holds), which is short enough not to be felt, and it keeps paging simple (no round trip through the lane while
scrolling).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from vsearch_app.core.types import QueryTerm, SearchFilter, SearchHit, SortOrder
from vsearch_app.errors import VSearchError
from vsearch_app.gui.engine.lane import Job, Lane

log = logging.getLogger(__name__)

DEFAULT_RESULT_LIMIT = None  # no cap: every match, paged into the grid (a number caps how many are shown)
FIRST_PAGE = 1000  # read on the lane with the query, so the grid's first page costs the GUI thread nothing


class EngineUnavailableError(VSearchError):
    """The library is not open (it failed to open, or the app is closing)."""


class ServiceGate:
    """Hands the service to lane jobs once it is open; thread-safe."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._service: object = None
        self._reason = ""

    def open(self, service: object) -> None:
        self._service = service
        self._ready.set()

    def fail(self, reason: str) -> None:
        self._reason = reason
        self._ready.set()

    def close(self, reason: str = "VSearch is closing") -> None:
        self._service = None
        self._reason = reason
        self._ready.set()

    @property
    def service(self) -> object:
        return self._service

    def get(self, timeout: float | None = None) -> object:
        """The service, waiting for it to open; EngineUnavailableError when it cannot be had."""
        if not self._ready.wait(timeout):
            raise EngineUnavailableError("the photo library is still opening")
        if self._service is None:
            raise EngineUnavailableError(self._reason or "the photo library is not open")
        return self._service


@dataclass(frozen=True)
class SearchResults:
    """One query's hits: at most ``total`` of them (the engine's ``max_total``: exact unless a threshold cuts the
    ranking short, which the grid notices when a page comes back short), read a page at a time through
    ``page(offset, count)`` (GUI thread)."""

    generation: int
    terms: tuple[QueryTerm, ...]
    total: int
    page: Callable[[int, int], Sequence[SearchHit]]
    seconds: float
    filters: SearchFilter | None = None
    sort: SortOrder = SortOrder.SCORE
    good_matches: int = 0  # hits marked good_match among the first page (all of them: they rank first by score)


@dataclass(frozen=True)
class SearchFailure:
    """Why a query gave nothing: the message for the user, and NothingToSearchError's reason ("" otherwise), the
    search model, the photos still to index and other models' photo counts (for the "other_model" explanation)."""

    generation: int
    message: str
    reason: str = ""
    model: str = ""
    pending: int = 0
    other_models: dict[str, int] = field(default_factory=dict)


def run_search(service: object, terms: Sequence[QueryTerm], *, limit: int | None, threshold: float | None,
               generation: int, filters: SearchFilter | None = None,
               sort: SortOrder = SortOrder.SCORE) -> SearchResults:
    """Run one query on the engine (lane thread) and read its first page. No terms and a filter: browse (every
    photo in the filter, by ``sort``; the engine orders best-match browsing by date)."""
    started = time.monotonic()
    options: dict[str, object] = {} if limit is None else {"limit": limit}
    if filters is not None and not filters.is_empty:
        options["filters"] = filters
    if sort != SortOrder.SCORE:
        options["sort"] = sort
    results = service.search_results(list(terms), threshold=threshold, **options)
    first = list(results.hits(0, FIRST_PAGE))
    total = len(first) if len(first) < FIRST_PAGE else max(len(first), int(results.max_total))

    def page(offset: int, count: int) -> Sequence[SearchHit]:
        if offset + count <= len(first) or len(first) < FIRST_PAGE:
            return first[offset:offset + count]
        return results.hits(offset, count)

    good = sum(1 for hit in first if getattr(hit, "good_match", False))
    return SearchResults(generation, tuple(terms), total, page, time.monotonic() - started, filters, sort, good)


class QueryLane(QObject):
    """Owns the query thread. Methods are for the GUI thread; callbacks run in the GUI thread."""

    finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lane = Lane("vsearch-query", self)
        self._lane.finished.connect(self.finished)
        self.gate = ServiceGate()

    @property
    def ended(self) -> bool:
        return self._lane.ended

    def start(self) -> None:
        self._lane.start()

    def stop(self) -> None:
        """Drop waiting searches, let a running job finish, end the thread (``finished``)."""
        self.gate.close()
        self._lane.stop()

    def wait(self, ms: int) -> bool:
        return self._lane.wait(ms)

    def search(self, terms: Sequence[QueryTerm], generation: int, *, limit: int | None, threshold: float | None,
               on_done: Callable[[SearchResults], None], on_error: Callable[[SearchFailure], None],
               filters: SearchFilter | None = None, sort: SortOrder = SortOrder.SCORE) -> Job:
        terms = tuple(terms)

        def job() -> SearchResults:
            return run_search(self.gate.get(), terms, limit=limit, threshold=threshold, generation=generation,
                              filters=filters, sort=sort)

        def failed(exc: Exception) -> None:
            on_error(SearchFailure(generation, _message(exc), getattr(exc, "reason", "") or "",
                                   model=getattr(exc, "model", "") or "", pending=int(getattr(exc, "pending", 0) or 0),
                                   other_models=dict(getattr(exc, "other_models", None) or {})))

        return self._lane.submit_latest("search", job, name="search", on_done=on_done, on_error=failed)

    def status(self, on_done: Callable[[object], None], on_error: Callable[[str], None]) -> Job:
        """``on_done((LibraryStatus, folder counts))``: both read in one job (the counts are one GROUP BY)."""
        def job() -> tuple[object, dict]:
            service = self.gate.get()
            return service.status(), dict(service.folder_counts())

        return self._lane.submit_latest("status", job, name="status", on_done=on_done,
                                        on_error=lambda exc: on_error(_message(exc)))

    def facets(self, filters: SearchFilter | None, on_done: Callable[[object], None],
               on_error: Callable[[str], None]) -> Job:
        """``on_done((months, cameras))``: photos per month (within ``filters``, whose dates the caller leaves out)
        and per camera, for the filter bar. Latest wins: refreshes asked for while one waits coalesce."""
        def job() -> tuple[list, list]:
            service = self.gate.get()
            months = service.photo_months(filters) if filters is not None else service.photo_months()
            return list(months), list(service.cameras())

        return self._lane.submit_latest("facets", job, name="facets", on_done=on_done,
                                        on_error=lambda exc: on_error(_message(exc)))

    def call(self, name: str, fn: Callable[[object], object], on_done: Callable[[object], None],
             on_error: Callable[[str], None]) -> Job:
        """Queue ``fn(service)`` (folder changes and other one-off calls), in order."""
        return self._lane.submit(lambda: fn(self.gate.get()), name=name, on_done=on_done,
                                 on_error=lambda exc: on_error(_message(exc)))


def _message(exc: Exception) -> str:
    if isinstance(exc, VSearchError):
        return str(exc)
    log.error("a query lane job failed", exc_info=exc)
    return f"unexpected error: {type(exc).__name__}: {exc}"
