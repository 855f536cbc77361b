"""The session's single index writer: every embedding in a process goes through one of these, on a thread it owns.

core.service.LibraryService keeps one IndexWriter for its Library. It runs two kinds of work, never at once:

- an index run (``index()``): one Library.index call on a "vsearch-index" thread. A second ``index()`` while a run
  is going joins it: it waits for the same run and gets the same IndexReport, and its ``progress`` receives the
  run's events from then on. Any caller's ``cancel`` cancels the shared run (there is one run to stop), and any
  caller's ``pause`` pauses it. So two requests never embed a photo twice.
- the watcher (``start_watching()``): core.library.watcher.LibraryWatcher on a "vsearch-watch" thread. ``index()``
  while it watches asks it for a full pass (reconcile every folder, embed what is pending) and waits for that pass's
  report; the caller's ``cancel`` then only stops the waiting (stop_watching stops the watcher). Watching started
  while an index run is going begins when the run ends.

Both hold the data folder's writer lock (core/store/writer_lock.py) while they work: taken by the first, released by the
last, so another process is refused (LibraryBusyError) for as long as this one writes. The lock is taken in the
caller's thread, so the refusal is raised by the call itself.

``pause()`` holds embedding between batches (the watcher keeps recording changes); ``close()`` cancels the run, stops
the watcher and joins every thread; after it every call raises LibraryClosedError.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vsearch_app.core.library.library import Library
from vsearch_app.core.library.phases import AnyEvent
from vsearch_app.core.library.reconcile import ChangeReport
from vsearch_app.core.store.writer_lock import WriterLock
from vsearch_app.core.types import ChangeEvent, IndexProgress, IndexReport
from vsearch_app.errors import LibraryBusyError, LibraryClosedError, VSearchError

log = logging.getLogger(__name__)

ProgressFn = Callable[[IndexProgress], None]
WAIT_POLL_S = 0.1  # a waiting caller looks at its own cancel this often (and stays interruptible by Ctrl-C)
CLOSED_MESSAGE = "this photo library was closed; open it again to use it"


class ProgressFanout:
    """Sends every progress event to each listener: the caller that started the work and those that joined it."""

    def __init__(self, first: ProgressFn | None = None) -> None:
        self._listeners: list[ProgressFn] = [first] if first is not None else []
        self._lock = threading.Lock()

    def add(self, listener: ProgressFn | None) -> None:
        if listener is not None:
            with self._lock:
                self._listeners.append(listener)

    def remove(self, listener: ProgressFn | None) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def __call__(self, event: IndexProgress) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)


class _SharedWriterLock:
    """The data folder's WriterLock, shared by this session's writers: the first takes it, the last releases it."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._lock = threading.Lock()
        self._held: WriterLock | None = None
        self._users = 0

    def acquire(self, purpose: str) -> None:
        with self._lock:
            if self._held is None:
                self._held = WriterLock(self._data_dir, purpose).acquire()  # LibraryBusyError: another process
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._held is not None:
                self._held.release()
                self._held = None


class _IndexRun:
    """One Library.index call on a thread of the writer's, with the callers waiting for it."""

    def __init__(self, writer: IndexWriter) -> None:
        self.cancel = AnyEvent(writer.closing)  # any caller's cancel is added: one run, one stop
        self.pause = AnyEvent(writer.paused)  # the session's pause and any caller's
        self.progress = ProgressFanout()
        self.done = threading.Event()
        self.report: IndexReport | None = None
        self.error: BaseException | None = None
        self._writer = writer
        self.thread = threading.Thread(target=self._run, name="vsearch-index", daemon=True)

    def _run(self) -> None:
        writer = self._writer
        try:
            with writer.embedding_slot:
                self.report = writer.library.index(progress=self.progress, cancel=self.cancel, pause=self.pause)
        except BaseException as exc:  # handed to every caller, in its own thread
            self.error = exc
        finally:
            writer.lock.release()
            self.done.set()

    def join(self, progress: ProgressFn | None, cancel: threading.Event | None,
             pause: threading.Event | None) -> IndexReport:
        self.progress.add(progress)
        self.cancel.add(cancel)
        self.pause.add(pause)
        try:
            while not self.done.wait(WAIT_POLL_S):
                pass
        finally:
            self.progress.remove(progress)
        if self.error is not None:
            raise self.error
        assert self.report is not None
        return self.report


class _WatchThread:
    """A LibraryWatcher on a thread of the writer's."""

    def __init__(self, writer: IndexWriter, progress: ProgressFn | None,
                 on_change: Callable[[ChangeEvent], None] | None, initial_index: bool, options: dict[str, Any]) -> None:
        from vsearch_app.core.library.watcher import LibraryWatcher  # watchdog is only needed once something watches

        self.stop = threading.Event()
        self.progress = ProgressFanout(progress)
        self.error: BaseException | None = None
        self._writer = writer
        self._on_change = on_change
        self._initial_index = initial_index
        self.watcher = LibraryWatcher(writer.library, progress=self.progress, on_change=self._changed,
                                      pause=writer.paused, **options)
        self.thread = threading.Thread(target=self._run, name="vsearch-watch", daemon=True)

    def _changed(self, report: ChangeReport) -> None:
        if self._on_change is None:
            return
        event = ChangeEvent(report.new, report.changed, report.gone, report.moved, report.offline, report.returned)
        try:
            self._on_change(event)
        except Exception:  # the listener's bug must not stop the watching
            log.exception("the change listener failed")

    def _run(self) -> None:
        writer = self._writer
        try:
            while not writer.embedding_slot.acquire(timeout=WAIT_POLL_S):  # an index run is going: after it
                if self.stop.is_set():
                    return
            try:
                self.watcher.run(self.stop, initial_index=self._initial_index)
            finally:
                writer.embedding_slot.release()
        except BaseException as exc:
            self.error = exc
            log.error("watching stopped: %s", exc, exc_info=not isinstance(exc, VSearchError))
        finally:
            writer.lock.release()


class IndexWriter:
    """See the module docstring."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self.lock = _SharedWriterLock(library.data_dir)
        self.embedding_slot = threading.Lock()  # held by whoever embeds: the index run's thread or the watcher's
        self.paused = threading.Event()
        self.closing = threading.Event()
        self._state = threading.Condition(threading.Lock())  # guards the fields below
        self._run: _IndexRun | None = None
        self._watch: _WatchThread | None = None
        self._watch_error: BaseException | None = None
        self._operations = 0  # calls in progress on their callers' threads (prepare, index waits)

    # --- state ---------------------------------------------------------------------------------------------------

    def check_open(self) -> None:
        if self.closing.is_set():
            raise LibraryClosedError(CLOSED_MESSAGE)

    @contextmanager
    def operation(self) -> Iterator[None]:
        """Marks a call running on its caller's thread, so that close() waits for it (after cancelling it)."""
        with self._state:
            self.check_open()
            self._operations += 1
        try:
            yield
        finally:
            with self._state:
                self._operations -= 1
                self._state.notify_all()

    def own_threads(self) -> list[threading.Thread]:
        with self._state:
            runs = [w.thread for w in (self._run, self._watch) if w is not None]
        return [t for t in runs if t.is_alive()]

    def _refuse_own_thread(self, what: str) -> None:
        if threading.current_thread() in self.own_threads():
            raise LibraryBusyError(f"{what} cannot be called from a progress or change callback of this library; "
                                   "call it from another thread")

    # --- indexing ------------------------------------------------------------------------------------------------

    def index(self, progress: ProgressFn | None = None, cancel: threading.Event | None = None,
              pause: threading.Event | None = None) -> IndexReport:
        """Run, or join, the one index run (see the module docstring)."""
        self._refuse_own_thread("index()")
        with self.operation():
            with self._state:
                run = self._run if self._run is not None and not self._run.done.is_set() else None
                watch = self._watch if self.is_watching else None
                if run is None and watch is None:
                    self.lock.acquire("indexing")  # LibraryBusyError when another process writes
                    run = self._run = _IndexRun(self)
                    run.progress.add(progress)
                    run.cancel.add(cancel)
                    run.pause.add(pause)
                    run.thread.start()
                    progress = cancel = pause = None  # registered already
            if run is not None:
                return run.join(progress, cancel, pause)
            return self._join_watcher(watch, progress, cancel)

    def _join_watcher(self, watch: _WatchThread, progress: ProgressFn | None,
                      cancel: threading.Event | None) -> IndexReport:
        watch.progress.add(progress)
        try:
            future = watch.watcher.request_pass()
            while True:
                try:
                    return future.result(timeout=WAIT_POLL_S)  # the watcher's error, if it failed, is raised here
                except FutureTimeout:
                    if future.done():
                        continue
                    if (cancel is not None and cancel.is_set()) or not watch.thread.is_alive():
                        return IndexReport(cancelled=True)  # stopped waiting; or the watcher ended before the pass
        finally:
            watch.progress.remove(progress)

    # --- watching ------------------------------------------------------------------------------------------------

    @property
    def is_watching(self) -> bool:
        watch = self._watch
        return watch is not None and watch.thread.is_alive() and not watch.stop.is_set()

    @property
    def watch_error(self) -> BaseException | None:
        """What ended the last watcher early (None while it runs, or when it was stopped)."""
        watch = self._watch
        return watch.error if watch is not None else self._watch_error

    def start_watching(self, progress: ProgressFn | None, on_change: Callable[[ChangeEvent], None] | None,
                       initial_index: bool, options: dict[str, Any]) -> None:
        self._refuse_own_thread("start_watching()")
        with self._state:
            self.check_open()
            if self.is_watching:
                raise LibraryBusyError("this library is already being watched; stop_watching() first")
            previous = self._watch
            if previous is not None and previous.thread.is_alive():
                raise LibraryBusyError("the previous watcher of this library is still stopping; try again")
            watch = _WatchThread(self, progress, on_change, initial_index, options)
            self.lock.acquire("watching")  # LibraryBusyError when another process writes
            self._watch, self._watch_error = watch, None
            watch.thread.start()

    def stop_watching(self, timeout: float | None = None) -> bool:
        """Stop the watcher after its batch in flight (committed and saved) and wait up to ``timeout`` seconds for
        it. True once no watcher thread is left."""
        self._refuse_own_thread("stop_watching()")
        with self._state:
            watch = self._watch
        if watch is None:
            return True
        watch.stop.set()
        watch.thread.join(timeout)
        if watch.thread.is_alive():
            return False
        with self._state:
            if self._watch is watch:
                self._watch, self._watch_error = None, watch.error
        return True

    # --- pause ---------------------------------------------------------------------------------------------------

    def pause(self) -> None:
        self.check_open()
        self.paused.set()

    def resume(self) -> None:
        self.check_open()
        self.paused.clear()

    # --- closing -------------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Cancel the index run, stop the watcher, wait for calls in progress and join every thread (idempotent)."""
        self._refuse_own_thread("close()")
        self.closing.set()  # cancels the run, a prepare(), and refuses new calls
        self.paused.clear()  # a paused run must reach its cancel check
        self.stop_watching()
        with self._state:
            run = self._run
            while self._operations:
                self._state.wait()
        if run is not None:
            run.thread.join()
