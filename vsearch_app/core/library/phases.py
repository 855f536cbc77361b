"""Progress events for the library's long steps other than embedding (scanning, opening or rebuilding the index,
saving it), and the cancel checks between their pieces.

core.library.library calls these; the events are core.types.IndexProgress with a ``phase`` (its docstring says what the
counters mean in each). Kept apart so that the library module stays about what it does, not how it reports it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from vsearch_app.core.types import IndexProgress
from vsearch_app.errors import OperationCancelled

ProgressFn = Callable[[IndexProgress], None]
SCAN_REPORT_EVERY_S = 0.1  # a walk visits thousands of folders a second: one event per folder would flood a GUI


def check_cancel(cancel: threading.Event | None, what: str) -> None:
    """Raise OperationCancelled ("<what> was cancelled") when ``cancel`` is set."""
    if cancel is not None and cancel.is_set():
        raise OperationCancelled(f"{what} was cancelled")


class ScanReporter:
    """The ``visit`` callback of scanner.walk_root for a reconciliation of several roots: checks ``cancel`` before
    every folder and reports "scanning" (photos seen so far over all roots, the folder being read) a few times a
    second. Call ``root_done(photos)`` after each root so the count carries on across roots."""

    def __init__(self, progress: ProgressFn | None, cancel: threading.Event | None) -> None:
        self._progress = progress
        self._cancel = cancel
        self._before = 0  # photos seen in the roots already walked
        self._last = float("-inf")

    def __call__(self, folder: str, found: int) -> None:
        check_cancel(self._cancel, "scanning the folders")
        if self._progress is None:
            return
        now = time.monotonic()
        if now - self._last >= SCAN_REPORT_EVERY_S:
            self._last = now
            self._progress(IndexProgress(self._before + found, 0, 0, 0.0, None, phase="scanning",
                                         current=Path(folder)))

    def root_done(self, photos: int) -> None:
        self._before += photos


def rebuild_reporter(progress: ProgressFn | None, index_dir: Path) -> Callable[[int, int], None] | None:
    """A ShardedIndex.open_or_rebuild ``progress(done, total)`` that reports "rebuilding" events. It reports 0 of 0
    at once (a saved index is being loaded), then vectors rebuilt if it has to rebuild."""
    if progress is None:
        return None
    progress(IndexProgress(0, 0, 0, 0.0, None, phase="rebuilding", current=index_dir))

    def report(done: int, total: int) -> None:
        progress(IndexProgress(done, total, 0, 0.0, None, phase="rebuilding", current=index_dir))

    return report


class RunReporter:
    """Forwards a run's "embedding" events and remembers the last one, so that "saving" (and the watcher's
    "idle") can repeat its counters: a progress bar then stays where it was instead of jumping to 0 of 0."""

    def __init__(self, progress: ProgressFn | None) -> None:
        self.progress = progress
        self.last = IndexProgress(0, 0, 0, 0.0, None)

    def embedding(self, event: IndexProgress) -> None:
        self.last = event
        if self.progress is not None:
            self.progress(event)

    def phase(self, phase: str, current: Path | None = None) -> None:
        if self.progress is not None:
            self.progress(replace(self.last, phase=phase, current=current, rate=0.0, eta_s=None))

    def saving_callback(self, index_dir: Path) -> Callable[[], None] | None:
        """For Library.save_index: reports "saving" once the save really starts (nothing when nothing changed)."""
        return None if self.progress is None else (lambda: self.phase("saving", index_dir))


class AnyEvent:
    """Reads as set when any of its events is set: one cancel (or pause) made of several, e.g. the caller's and the
    session's. Only what the indexer and the watcher use of a threading.Event: ``is_set`` and ``wait``."""

    POLL_S = 0.05  # wait() looks at the other events this often (an Event cannot wake on another's set)

    def __init__(self, *events: threading.Event | AnyEvent | None) -> None:
        self._events = [e for e in events if e is not None]
        self._lock = threading.Lock()

    def add(self, event: threading.Event | AnyEvent | None) -> None:
        if event is not None:
            with self._lock:
                self._events.append(event)

    def is_set(self) -> bool:
        with self._lock:
            events = list(self._events)
        return any(e.is_set() for e in events)

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = self.POLL_S if deadline is None else min(self.POLL_S, deadline - time.monotonic())
            if left <= 0:
                return False
            time.sleep(left)
        return True
