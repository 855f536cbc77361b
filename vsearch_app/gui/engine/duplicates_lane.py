"""The duplicates lane: runs ``LibraryService.duplicates`` on its own thread, with progress and cancel.

Its own lane rather than the query lane's: grouping a large library reads every vector and decodes photos for the
best-shot score, which takes long enough that searches queued behind it would wait. The controller owns this
object and stops it (cancel, then join) before it closes the library.

    lane = DuplicatesLane(gate)              # gate: query_lane.ServiceGate (the open LibraryService)
    lane.progress.connect(...)               # the engine's latest progress value, a few times a second
    lane.found.connect(...)                  # list[DuplicateGroup], members[0] the suggested keeper
    lane.failed.connect(...)                 # a message; lane.cancelled when the user cancelled
    lane.find(folder=None, threshold=None)   # False while a run is still going
    lane.cancel()

Progress is pull-throttled like indexing's: the engine's callback only stores the latest value (``LatestValue``),
and a GUI timer emits it every PROGRESS_EVERY_MS.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from vsearch_app.errors import VSearchError
from vsearch_app.gui.engine.lane import Lane
from vsearch_app.gui.engine.library_lane import LatestValue
from vsearch_app.gui.engine.query_lane import ServiceGate

log = logging.getLogger(__name__)

PROGRESS_EVERY_MS = 150


class DuplicatesCancelled(Exception):
    """The run was cancelled (the engine stopped early, or its answer came after the cancel)."""


def progress_fraction(value: object) -> tuple[int, int] | None:
    """(done, total) from an engine progress value: an object with ``done``/``total`` (IndexProgress-like), a
    (done, total) pair, or None when it says neither (the view shows a busy bar then)."""
    if value is None:
        return None
    done, total = getattr(value, "done", None), getattr(value, "total", None)
    if done is None and isinstance(value, (tuple, list)) and len(value) >= 2:
        done, total = value[0], value[1]
    try:
        return int(done), int(total)
    except (TypeError, ValueError):
        return None


class DuplicatesLane(QObject):
    progress = Signal(object)  # the engine's progress value (progress_fraction reads it)
    found = Signal(object)  # list[DuplicateGroup]
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()  # the thread has ended (after ``stop``)

    def __init__(self, gate: ServiceGate, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._gate = gate
        self._lane = Lane("vsearch-duplicates", self)
        self._lane.finished.connect(self.finished)
        self._latest = LatestValue()
        self._cancel: threading.Event | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(PROGRESS_EVERY_MS)
        self._timer.timeout.connect(self._publish_progress)
        self._started = False

    @property
    def running(self) -> bool:
        return self._cancel is not None

    @property
    def ended(self) -> bool:
        return self._lane.ended

    def find(self, *, folder: Path | None = None, threshold: float | None = None) -> bool:
        """Start a run (False while one is going)."""
        if self._cancel is not None or self._lane.ended:
            return False
        if not self._started:
            self._started = True
            self._lane.start()
        cancel = threading.Event()
        self._cancel = cancel
        self._latest.take()

        def job() -> object:
            service = self._gate.get()
            groups = service.duplicates(folder=folder, threshold=threshold, progress=self._latest.put, cancel=cancel)
            if cancel.is_set():
                raise DuplicatesCancelled()
            return groups

        self._lane.submit(job, name="duplicates", on_done=self._on_done, on_error=self._on_error)
        self._timer.start()
        return True

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def stop(self) -> None:
        """Cancel a run and end the thread (``finished``)."""
        self.cancel()
        self._lane.stop()

    def wait(self, ms: int) -> bool:
        return self._lane.wait(ms)

    # --- lane results (GUI thread) --------------------------------------------------------------------------------

    def _on_done(self, groups: object) -> None:
        self._end()
        self.found.emit(list(groups))

    def _on_error(self, exc: Exception) -> None:
        was_cancelled = self._cancel is not None and self._cancel.is_set()
        self._end()
        if was_cancelled or isinstance(exc, DuplicatesCancelled):
            self.cancelled.emit()  # the engine raises its own cancel error, or returns early: either is a cancel
        elif isinstance(exc, VSearchError):
            self.failed.emit(str(exc))
        else:
            log.error("finding duplicates failed", exc_info=exc)
            self.failed.emit(f"unexpected error: {type(exc).__name__}: {exc}")

    def _end(self) -> None:
        self._cancel = None
        self._timer.stop()
        self._publish_progress()

    def _publish_progress(self) -> None:
        value = self._latest.take()
        if value is not None:
            self.progress.emit(value)
