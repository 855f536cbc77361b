"""The library lane: opens the LibraryService and keeps the library current (index, then watch) for hours.

States it reports (``stateChanged(state, message)``), in the GUI thread:
  starting  the library is being opened (core.service imports torch here, after the window has painted)
  watching  watch() runs: indexing what is pending, then following the folders (progress says which)
  paused    the user paused indexing
  busy      another process is indexing this data folder (LibraryBusyError); retried every BUSY_RETRY_S
  problem   a user-facing error stopped watching: the model is missing, the data folder is unusable ... (message)
  failed    a bug stopped watching (message); searching may still work
  stopped   shut down

Today's engine: ``service.watch(stop, progress, on_change=...)`` blocks until ``stop`` is set, so it runs as one long
job here. Pause sets that run's stop event (watch returns after the batch in hand, everything committed); Resume
runs watch again, which reconciles and carries on with what is still pending (GUI.md: "Until watch gets a pause
argument, Pause sets stop and Resume re-runs watch"). When the session API lands (start_watching / stop_watching /
pause_indexing), only ``_run_watch`` and ``pause``/``resume`` here change.

Progress is pull-throttled: the engine's callback only stores the latest IndexProgress (``latest_progress``); the
controller's GUI timer reads it a few times a second. No signal per batch crosses threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from vsearch_app.errors import LibraryBusyError, VSearchError
from vsearch_app.gui.engine.lane import Lane
from vsearch_app.settings import AppSettings

log = logging.getLogger(__name__)

STARTING, WATCHING, PAUSED, BUSY, PROBLEM, FAILED, STOPPED = (
    "starting", "watching", "paused", "busy", "problem", "failed", "stopped")
BUSY_RETRY_S = 30.0

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
    paused: bool = False
    ended: bool = False  # the watch job has returned (stopped, paused, or a problem ended it)


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
        return self._state == PAUSED or (self._run is not None and self._run.paused)

    # --- control (GUI thread) -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the library, then start watching."""
        if self._lane.running or self._lane.ended:
            return
        self._lane.start()
        self._set_state(STARTING, "")
        self._lane.submit(self._open, name="open library", on_done=self._on_opened, on_error=self._on_open_failed)

    def pause(self) -> None:
        """Stop indexing and watching after the batch in hand (everything committed stays)."""
        if self._run is not None and not self._run.stop.is_set():
            self._run.paused = True
            self._run.stop.set()

    def resume(self) -> None:
        """Index and watch again (after a pause, a busy library or a problem the user has fixed)."""
        if self._service is None or self._closing.is_set():
            return
        if self._run is not None and not self._run.ended and not self._run.stop.is_set():
            return  # running (or queued to run)
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
        prepare = getattr(service, "prepare", None)  # the session API loads the model ahead of the first search
        while not run.stop.is_set():
            self._stateFromWorker.emit(WATCHING, "")
            try:
                if prepare is not None:
                    prepare(cancel=run.stop)
                    prepare = None
                service.watch(run.stop, self.latest_progress.put, on_change=self._changeFromWorker.emit,
                              **self._watch_options)
                break
            except LibraryBusyError as exc:
                log.info("library busy: %s", exc)
                self._stateFromWorker.emit(BUSY, str(exc))
                if run.stop.wait(BUSY_RETRY_S):
                    break
            except VSearchError as exc:
                log.warning("watching stopped: %s", exc)
                self._stateFromWorker.emit(PROBLEM, str(exc))
                return
        self._stateFromWorker.emit(PAUSED if run.paused and not self._closing.is_set() else STOPPED, "")

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
