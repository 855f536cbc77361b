"""The library lane: opens the LibraryService session, gets the search model ready and keeps the library current.

States it reports (``stateChanged(state, message)``), in the GUI thread:
  starting       the library is being opened (core.service imports torch here, after the window has painted)
  loading        prepare(): the search model is loaded and the index opened, so the first search is fast
  watching       the session's watcher runs (indexing what is pending, then following the folders)
  paused         the user paused indexing (the watcher keeps recording changes; searching works)
  busy           another process is indexing this data folder (LibraryBusyError); retried every BUSY_RETRY_S
  model_missing  the search model is not on this computer (ModelNotFoundError): the window offers to get it
  problem        another user-facing error stopped watching: the data folder is unusable ... (message)
  failed         a bug stopped watching (message); searching may still work
  stopped        shut down

The session API does the work on the session's own threads: one lane job runs ``prepare`` once, then
``start_watching(progress, on_change)`` and waits (on its stop event, so shutdown is prompt) until the watcher ends
on its own or the lane stops it; ``watch_error`` says why a watcher ended by itself. Pause and Resume call
``pause_indexing`` / ``resume_indexing`` directly from the GUI thread: they only set an event in the session (no
I/O, no lock held for long), and the lane thread is busy waiting on the watcher, so a job would not run until it
ends. The pause stays set in the session across a restarted watcher.

Progress is pull-throttled: the engine's callback only stores the latest IndexProgress (``latest_progress``); the
controller's GUI timer reads it a few times a second. No signal per batch crosses threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from vsearch_app.errors import LibraryBusyError, ModelNotFoundError, VSearchError
from vsearch_app.gui.engine.lane import Lane
from vsearch_app.settings import AppSettings

log = logging.getLogger(__name__)

STARTING, LOADING, WATCHING, PAUSED, BUSY, MODEL_MISSING, PROBLEM, FAILED, STOPPED = (
    "starting", "loading", "watching", "paused", "busy", "model_missing", "problem", "failed", "stopped")
BUSY_RETRY_S = 30.0
WATCH_POLL_S = 0.25  # how often the lane looks whether the session's watcher ended by itself

ServiceFactory = Callable[[AppSettings], object]


def open_service(settings: AppSettings) -> object:
    """The real engine (imported here, in the lane thread: importing core.service loads torch)."""
    from vsearch_app.core.service import LibraryService

    return LibraryService.open(settings)


class LatestValue:
    """A one-slot mailbox between threads: ``put`` replaces, ``take`` returns the newest once (else None)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: object = None
        self._fresh = False

    def put(self, value: object) -> None:
        with self._lock:
            self._value, self._fresh = value, True

    def take(self) -> object:
        with self._lock:
            if not self._fresh:
                return None
            self._fresh = False
            return self._value


@dataclass(eq=False)
class _WatchRun:
    stop: threading.Event = field(default_factory=threading.Event)
    ended: bool = False  # the watch job has returned (stopped, or a problem ended it)


class LibraryLane(QObject):
    """Owns the library thread. Methods are for the GUI thread; signals arrive in the GUI thread."""

    opened = Signal(object)  # the LibraryService
    openFailed = Signal(str)  # why it could not be opened (one line for the user)
    stateChanged = Signal(str, str)  # state, message
    libraryChanged = Signal(object)  # what the watcher changed (core ChangeReport / ChangeEvent: new, gone, ...)
    finished = Signal()  # the thread has ended and the service is closed

    _stateFromWorker = Signal(str, str)
    _changeFromWorker = Signal(object)

    def __init__(self, settings: AppSettings, *, service_factory: ServiceFactory | None = None,
                 watch_options: dict | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._factory = service_factory or open_service
        self._watch_options = dict(watch_options or {})
        self._lane = Lane("vsearch-library", self)
        self._lane.finished.connect(self._on_lane_finished)
        self._stateFromWorker.connect(self._on_worker_state)
        self._changeFromWorker.connect(self._on_worker_change)
        self.latest_progress = LatestValue()
        self._service: object = None
        self._run: _WatchRun | None = None
        self._prepared = False  # prepare() has succeeded once (the model is loaded: later runs skip it)
        self._paused = False
        self._closing = threading.Event()
        self._state = STOPPED
        self._message = ""

    # --- state --------------------------------------------------------------------------------------------------

    @property
    def service(self) -> object:
        return self._service

    @property
    def state(self) -> str:
        return self._state

    @property
    def message(self) -> str:
        return self._message

    @property
    def paused(self) -> bool:
        return self._paused

    # --- control (GUI thread) -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the library, then start watching."""
        if self._lane.running or self._lane.ended:
            return
        self._lane.start()
        self._set_state(STARTING, "")
        self._lane.submit(self._open, name="open library", on_done=self._on_opened, on_error=self._on_open_failed)

    def pause(self) -> None:
        """Hold indexing after the batch in hand (everything committed stays; the watcher keeps watching)."""
        if self._service is None or self._paused:
            return
        self._paused = True
        self._service.pause_indexing()
        if self._state == WATCHING:
            self._set_state(PAUSED, "")

    def resume(self) -> None:
        """Carry on indexing after a pause; after a busy library or a problem the user has fixed (the model was
        downloaded), watch again."""
        if self._service is None or self._closing.is_set():
            return
        if self._paused:
            self._paused = False
            self._service.resume_indexing()
            if self._state == PAUSED:
                self._set_state(WATCHING, "")
        if self._run is not None and not self._run.ended and not self._run.stop.is_set():
            return  # running (or queued to run)
        self._start_watch()

    def restart(self) -> None:
        """Watch again from the start (prepare included): the search model changed."""
        if self._service is None or self._closing.is_set():
            return
        self._prepared = False
        if self._run is not None:
            self._run.stop.set()  # the lane runs jobs in order: the new run starts once this one has ended
        self._start_watch()

    def request_stop(self) -> None:
        """First step of shutdown: stop watching (and any busy retry). The lane ends on ``close``."""
        self._closing.set()
        if self._run is not None:
            self._run.stop.set()

    def close(self) -> None:
        """Last step of shutdown, once nothing else uses the service: close it in this lane, then end the thread.
        ``finished`` follows."""
        self.request_stop()
        self._lane.submit(self._close_service, name="close library")
        self._lane.stop()

    def wait(self, ms: int) -> bool:
        return self._lane.wait(ms)

    # --- jobs (library thread) ----------------------------------------------------------------------------------

    def _open(self) -> object:
        return self._factory(self._settings)

    def _run_watch(self, run: _WatchRun) -> None:
        try:
            self._watch_until_stopped(run)
        finally:
            run.ended = True

    def _watch_until_stopped(self, run: _WatchRun) -> None:
        service = self._service
        while not run.stop.is_set():
            try:
                if not self._prepared:
                    self._stateFromWorker.emit(LOADING, "")
                    if not service.prepare(cancel=run.stop):
                        break  # stopped (shutdown or a restart) while loading
                    self._prepared = True
                service.start_watching(self.latest_progress.put, self._changeFromWorker.emit, **self._watch_options)
                self._stateFromWorker.emit(PAUSED if self._paused else WATCHING, "")
                try:
                    while not run.stop.wait(WATCH_POLL_S) and service.is_watching:
                        pass
                finally:
                    service.stop_watching()
                error = service.watch_error
                if error is not None and not run.stop.is_set():
                    raise error
                break
            except LibraryBusyError as exc:
                log.info("library busy: %s", exc)
                self._stateFromWorker.emit(BUSY, str(exc))
                if run.stop.wait(BUSY_RETRY_S):
                    break
            except ModelNotFoundError as exc:
                log.warning("the search model is missing: %s", exc)
                self._stateFromWorker.emit(MODEL_MISSING, str(exc))
                return
            except VSearchError as exc:
                log.warning("watching stopped: %s", exc)
                self._stateFromWorker.emit(PROBLEM, str(exc))
                return
        if self._closing.is_set():
            self._stateFromWorker.emit(STOPPED, "")

    def _close_service(self) -> None:
        service, self._service = self._service, None
        if service is not None:
            service.close()

    # --- results (GUI thread) -----------------------------------------------------------------------------------

    def _on_opened(self, service: object) -> None:
        self._service = service
        self.opened.emit(service)
        if not self._closing.is_set():
            self._start_watch()

    def _on_open_failed(self, exc: Exception) -> None:
        if not isinstance(exc, VSearchError):
            log.error("opening the library failed", exc_info=exc)
        message = str(exc) if isinstance(exc, VSearchError) else f"the library could not be opened: {exc}"
        self._set_state(PROBLEM, message)
        self.openFailed.emit(message)

    def _start_watch(self) -> None:
        run = _WatchRun()
        self._run = run
        self._lane.submit(lambda: self._run_watch(run), name="watch", on_error=self._on_watch_failed)

    def _on_watch_failed(self, exc: Exception) -> None:
        log.error("watching the library failed", exc_info=exc)
        self._set_state(FAILED, f"indexing stopped after an unexpected error: {exc}")

    def _on_worker_state(self, state: str, message: str) -> None:
        self._set_state(state, message)

    def _on_worker_change(self, change: object) -> None:
        self.libraryChanged.emit(change)

    def _set_state(self, state: str, message: str) -> None:
        if (state, message) != (self._state, self._message):
            self._state, self._message = state, message
            self.stateChanged.emit(state, message)

    def _on_lane_finished(self) -> None:
        self._set_state(STOPPED, "")
        self.finished.emit()
