"""EngineController: the only object the window talks to about the engine. It owns the lanes and turns their
results into GUI-facing signals, all delivered in the GUI thread.

    controller = EngineController(settings)
    controller.statusChanged.connect(...)      # LibraryStatus, whenever it changes (polled every STATUS_EVERY_MS)
    controller.progress.connect(...)           # IndexProgress, at most every PROGRESS_EVERY_MS
    controller.resultsReady.connect(...)       # (generation, SearchResults) of the current query only
    controller.start()                         # after the window has painted: opens the library, starts watching
    generation = controller.search(terms)
    controller.shutdown()                      # -> finishing ... stopped (at most SHUTDOWN_TIMEOUT_S)

Start-up: ``start`` is called once the window is on screen; the library lane opens the service (torch is imported
there, off the GUI thread) and starts watching; queries typed meanwhile wait in the query lane and run as soon as
the library is open.

Shutdown order (GUI.md "Shutdown with no lost commits"): stop watching, cancel captions (a running generation
stops at its next token and is stored) and drop waiting queries; when the query and caption lanes have ended (a
running search finishes first), close the service in the library lane (it saves the index), then
``stopped``. Capped at SHUTDOWN_TIMEOUT_S: after that ``stopped`` comes anyway with ``timed_out`` set, and the app
exits without waiting for the thread (WAL has every committed batch). Threads are never terminated.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from vsearch_app.core.types import LibraryStatus, QueryTerm, SearchFilter, SortOrder, Thumbnail
from vsearch_app.gui.engine import library_lane as states
from vsearch_app.gui.engine.caption_lane import CaptionLane
from vsearch_app.gui.engine.duplicates_lane import DuplicatesLane
from vsearch_app.gui.engine.library_lane import LibraryLane, ServiceFactory
from vsearch_app.gui.engine.query_lane import (
    DEFAULT_RESULT_LIMIT,
    EngineUnavailableError,
    QueryLane,
    SearchFailure,
    SearchResults,
)
from vsearch_app.settings import AppSettings

log = logging.getLogger(__name__)

PROGRESS_EVERY_MS = 200
STATUS_EVERY_MS = 2000
STATUS_WHILE_INDEXING_S = 0.5
FACETS_AFTER_CHANGE_MS = 3000  # while indexing changes the library, the filter bar's months and cameras are read
# again at most this often (two GROUP BYs on the query lane)
SHUTDOWN_TIMEOUT_S = 30.0
THUMBNAIL_WAIT_S = 120.0  # a thumbnail asked for before the library is open waits this long for it


class EngineController(QObject):
    engineReady = Signal()  # the library is open: searches, status and thumbnails work
    stateChanged = Signal(str, str)  # the library lane's state (library_lane: starting, watching, paused ...), message
    statusChanged = Signal(object)  # LibraryStatus
    progress = Signal(object)  # IndexProgress
    foldersChanged = Signal(object)  # list[FolderInfo], when the watched folders (or their online state) change
    folderCountsChanged = Signal(object)  # dict[Path, int]: photos per watched folder, when they change
    libraryChanged = Signal(object)  # the watcher's report of what changed (new, changed, gone, moved ...)
    resultsReady = Signal(int, object)  # generation, SearchResults
    searchFailed = Signal(int, object)  # generation, SearchFailure
    error = Signal(str)  # something the user asked for failed (a folder could not be added ...)
    facetsChanged = Signal(object, object)  # photos per month [("2019-06", n)], per camera [("Pixel 7", n)]
    captionWeightChanged = Signal(float)  # the library's caption weight was changed (searches use it from now)
    finishing = Signal()  # shutdown has begun
    stopped = Signal()  # every lane has ended and the library is closed (or the timeout passed)

    def __init__(self, settings: AppSettings, *, service_factory: ServiceFactory | None = None,
                 watch_options: dict | None = None, result_limit: int | None = DEFAULT_RESULT_LIMIT,
                 threshold: float | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.result_limit = result_limit
        self.threshold = threshold
        self._library = LibraryLane(settings, service_factory=service_factory, watch_options=watch_options,
                                    parent=self)
        self._query = QueryLane(self)
        self.captions = CaptionLane(self._query.gate, parent=self)  # Describe and batch captions (caption_lane.py)
        self.captions.finished_all.connect(self._close_library_when_lanes_ended)
        self.duplicates = DuplicatesLane(self._query.gate, self)  # find duplicates: its own thread (long runs)
        self._library.opened.connect(self._on_opened)
        self._library.openFailed.connect(self._on_open_failed)
        self._library.stateChanged.connect(self._on_state)
        self._library.libraryChanged.connect(self._on_library_changed)
        self._library.finished.connect(self._on_library_finished)
        self._generation = 0
        self._status: LibraryStatus | None = None
        self._folders: list | None = None
        self._folder_counts: dict | None = None
        self._started = False
        self._stopping = False
        self._stopped = False
        self._library_closing = False
        self._last_progress_status = 0.0
        self.caption_weight: float | None = None  # the library's caption weight, read once it is open
        self.timed_out = False
        self._progress_timer = QTimer(self)
        self._progress_timer.setInterval(PROGRESS_EVERY_MS)
        self._progress_timer.timeout.connect(self._publish_progress)
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(STATUS_EVERY_MS)
        self._status_timer.timeout.connect(self.refresh_status)
        self._facets_filter: SearchFilter | None = None
        self._facets_timer = QTimer(self)
        self._facets_timer.setSingleShot(True)
        self._facets_timer.setInterval(FACETS_AFTER_CHANGE_MS)
        self._facets_timer.timeout.connect(self._refresh_facets_now)

    # --- state ----------------------------------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def status(self) -> LibraryStatus | None:
        """The latest LibraryStatus (None until the library is open)."""
        return self._status

    @property
    def state(self) -> str:
        return self._library.state

    @property
    def state_message(self) -> str:
        return self._library.message

    @property
    def ready(self) -> bool:
        return self._query.gate.service is not None

    @property
    def is_stopping(self) -> bool:
        return self._stopping

    @property
    def is_stopped(self) -> bool:
        return self._stopped

    @property
    def paused(self) -> bool:
        return self._library.paused

    @property
    def folder_counts(self) -> dict:
        """Photos per watched folder, as last read ({} until the library is open)."""
        return dict(self._folder_counts or {})

    # --- start ----------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the library and start indexing and watching (idempotent; call after the window has painted)."""
        if self._started or self._stopping:
            return
        self._started = True
        self._query.start()
        self.captions.start()
        self._library.start()
        self._progress_timer.start()

    # --- requests from the window ---------------------------------------------------------------------------------

    def search(self, terms: Sequence[QueryTerm], filters: SearchFilter | None = None,
               sort: SortOrder = SortOrder.SCORE) -> int:
        """Search for ``terms`` within ``filters``, ordered by ``sort``; no terms with a filter browses the filter.
        Nothing at all only starts a new generation, so late results are dropped. Returns the query's generation."""
        self._generation += 1
        filters = filters if filters is not None and not filters.is_empty else None
        if (terms or filters is not None) and not self._stopping:
            self._query.search(terms, self._generation, limit=self.result_limit, threshold=self.threshold,
                               on_done=self._on_results, on_error=self._on_search_failed, filters=filters, sort=sort)
        return self._generation

    def refresh_facets(self, filters: SearchFilter | None = None) -> None:
        """Read photos per month (within ``filters``: the filter bar passes its folder and camera) and per camera
        again, off the GUI thread; ``facetsChanged`` follows."""
        self._facets_filter = filters if filters is not None and not filters.is_empty else None
        self._refresh_facets_now()

    def _refresh_facets_now(self) -> None:
        if self.ready and not self._stopping:
            self._query.facets(self._facets_filter, self._on_facets, self._on_facets_failed)

    def _on_facets(self, reply: tuple[list, list]) -> None:
        if not self._stopping:
            self.facetsChanged.emit(*reply)

    def _on_facets_failed(self, message: str) -> None:
        log.info("the filter bar's months and cameras could not be read: %s", message)

    def find_duplicates(self, folder: Path | None = None, threshold: float | None = None) -> bool:
        """Group near-identical photos on the duplicates lane (``self.duplicates`` signals); False while a run is
        going or the app is closing."""
        return not self._stopping and self.duplicates.find(folder=folder, threshold=threshold)

    def refresh_status(self) -> None:
        if self._started and not self._stopping:
            self._query.status(self._on_status, self._on_status_failed)

    def add_folder(self, path: str | Path) -> None:
        self._folder_call("add folder", lambda service: service.add_folder(path))

    def remove_folder(self, path: str | Path) -> None:
        self._folder_call("remove folder", lambda service: service.remove_folder(path))

    def pause_indexing(self) -> None:
        self._library.pause()

    def resume_indexing(self) -> None:
        """Resume after a pause; also retries after a problem the user has fixed (e.g. the model was installed)."""
        self._library.resume()

    def model_download(self, repo_id: str) -> Callable[..., object]:
        """The engine's download of ``repo_id`` into this library's hub cache, as the first-run dialog calls it:
        ``download(token=..., progress=..., cancel=...)`` (it runs on the dialog's worker thread)."""
        from vsearch_app.core import service as engine  # imports no torch; the dialog is opened after start anyway

        return functools.partial(engine.download_model, self.settings, repo_id)

    def model_ready(self, folder: Path | None = None) -> None:
        """The search model is here now: downloaded into the hub cache (``folder`` None), or a model folder the user
        chose, which the library remembers as its model (``set_model``). Then prepare and watch again."""
        if self._stopping:
            return
        if folder is None:
            self._library.restart()
            self.refresh_status()
            return
        self._query.call("use model folder", lambda service: _use_model_folder(service, folder),
                         on_done=lambda _stored: self._after_model_change(), on_error=self._on_folder_error)

    def set_caption_weight(self, weight: float) -> None:
        """Store the library's caption weight (query lane); ``captionWeightChanged`` follows, or ``error``."""
        if self._stopping:
            return
        self._query.call("set caption weight", lambda service: service.set_caption_weight(weight),
                         on_done=self._on_caption_weight_set, on_error=self._on_folder_error)

    def _on_caption_weight(self, weight: float) -> None:
        self.caption_weight = float(weight)

    def _on_caption_weight_set(self, weight: float) -> None:
        self.caption_weight = float(weight)
        self.captionWeightChanged.emit(self.caption_weight)

    def _after_model_change(self) -> None:
        self._library.restart()
        self.refresh_status()

    # --- captions (the lanes are in ``captions``; these are the short catalog calls around them) -------------------

    def stored_caption(self, path: Path, prompt: str | None, on_done: Callable[[object], None]) -> None:
        """``on_done(CaptionResult | None)``: the caption stored for ``path`` with ``prompt`` (else with any prompt),
        read on the query lane without loading any model."""
        if self._stopping:
            return

        def read(service: object) -> object:
            return service.stored_caption(path, prompt) or (service.stored_caption(path) if prompt else None)

        self._query.call("stored caption", read, on_done=on_done, on_error=self._on_stored_caption_failed)

    def _on_stored_caption_failed(self, message: str) -> None:
        log.debug("reading a stored caption failed: %s", message)

    def use_caption_model(self, folder: Path) -> None:
        """Caption with the model in ``folder`` from now on (a folder chosen in the caption model dialog)."""
        self.settings = dataclasses.replace(self.settings, caption_model=str(folder))
        self.captions.use_model(folder, on_error=self._on_folder_error)

    def thumbnail(self, path: Path, max_side: int) -> Thumbnail:
        """The engine's cached thumbnail of ``path`` (any thread: the thumbnail loaders' pool calls this)."""
        try:
            service = self._query.gate.get(timeout=THUMBNAIL_WAIT_S)
        except EngineUnavailableError as exc:
            return Thumbnail(Path(path), None, str(exc))
        return service.thumbnail(path, max_side)

    # --- shutdown -------------------------------------------------------------------------------------------------

    def shutdown(self, timeout_s: float = SHUTDOWN_TIMEOUT_S) -> None:
        """Stop everything in order (see the module docstring); ``stopped`` follows. Safe to call twice."""
        if self._stopping:
            return
        self._stopping = True
        self._generation += 1  # no result arrives after this
        self.finishing.emit()
        self._progress_timer.stop()
        self._status_timer.stop()
        self._library.request_stop()
        self.captions.shutdown()  # a running caption stops at its next token; what was written is stored
        self._query.finished.connect(self._close_library_when_lanes_ended)
        self.duplicates.finished.connect(self._close_library_when_lanes_ended)
        self._facets_timer.stop()
        self.duplicates.stop()  # cancels a run; the library closes once every lane has ended
        self._query.stop()
        QTimer.singleShot(round(timeout_s * 1000), self._on_shutdown_timeout)

    def wait_for_threads(self, ms: int) -> bool:
        """Join both lanes (after ``stopped``); False when one is still running after ``ms``."""
        return (self._query.wait(ms) and self.captions.wait(ms) and self.duplicates.wait(ms)
                and self._library.wait(ms))

    def _close_library_when_lanes_ended(self) -> None:
        # The library is closed last, once no lane can use the service any more.
        if (self._stopping and self._query.ended and self.captions.ended and self.duplicates.ended
                and not self._library_closing):
            self._library_closing = True
            self._library.close()

    def _on_library_finished(self) -> None:
        if self._stopping:
            self._finish()

    def _on_shutdown_timeout(self) -> None:
        if not self._stopped:
            log.warning("background work did not stop within the shutdown limit; exiting without it")
            self.timed_out = True
            self._finish()

    def _finish(self) -> None:
        if not self._stopped:
            self._stopped = True
            self.stopped.emit()

    # --- lane results (GUI thread) --------------------------------------------------------------------------------

    def _on_opened(self, service: object) -> None:
        self._query.gate.open(service)
        if self._stopping:
            return
        self.engineReady.emit()
        self.refresh_status()
        self._refresh_facets_now()
        self._status_timer.start()
        self._query.call("caption weight", lambda service: service.caption_weight(), on_done=self._on_caption_weight,
                         on_error=self._on_status_failed)

    def _on_open_failed(self, message: str) -> None:
        self._query.gate.fail(message)

    def _on_state(self, state: str, message: str) -> None:
        self.stateChanged.emit(state, message)
        self.refresh_status()

    def _on_library_changed(self, change: object) -> None:
        self.libraryChanged.emit(change)
        self.refresh_status()
        if not self._facets_timer.isActive():
            self._facets_timer.start()  # new photos bring new months and cameras

    def _on_results(self, results: SearchResults) -> None:
        if results.generation == self._generation:
            self.resultsReady.emit(results.generation, results)

    def _on_search_failed(self, failure: SearchFailure) -> None:
        if failure.generation == self._generation:
            self.searchFailed.emit(failure.generation, failure)

    def _on_status(self, reply: tuple[LibraryStatus, dict]) -> None:
        status, counts = reply
        if self._stopping:
            return
        if counts != self._folder_counts:
            self._folder_counts = counts
            self.folderCountsChanged.emit(dict(counts))
        if status == self._status:
            return
        indexed_changed = self._status is None or status.counts.get("indexed") != self._status.counts.get("indexed")
        if indexed_changed and not self._facets_timer.isActive():
            self._facets_timer.start()  # indexing changed what the filter bar can offer: at most once per interval
        self._status = status
        if status.roots != self._folders:
            self._folders = list(status.roots)
            self.foldersChanged.emit(list(status.roots))
        self.statusChanged.emit(status)

    def _on_status_failed(self, message: str) -> None:
        log.debug("status refresh failed: %s", message)

    def _folder_call(self, name: str, call) -> None:
        if self._stopping:
            return
        self._query.call(name, call, on_done=lambda _result: self._after_folder_change(),
                         on_error=self._on_folder_error)

    def _after_folder_change(self) -> None:
        self.refresh_status()

    def _on_folder_error(self, message: str) -> None:
        self.error.emit(message)
        self.refresh_status()

    def _publish_progress(self) -> None:
        latest = self._library.latest_progress.take()
        if latest is not None:
            self.progress.emit(latest)
            # Keep the counts in step with the progress while indexing (the status poll alone lags by seconds).
            now = time.monotonic()
            if now - self._last_progress_status >= STATUS_WHILE_INDEXING_S:
                self._last_progress_status = now
                self.refresh_status()


def _use_model_folder(service: object, folder: Path) -> str | None:
    """Make ``folder`` the library's search model (query lane). A model named for this run (``--model``, the
    Settings dialog) wins over the library's remembered one, so the run's choice moves to the folder too: the user
    chose it because the named one is missing."""
    stored = service.set_model(str(folder))
    run_settings = getattr(service, "settings", None)
    if run_settings is not None and run_settings.model and run_settings.model != stored:
        service.settings = dataclasses.replace(run_settings, model=stored)
    return stored


__all__ = ["EngineController", "states"]
