"""A lane: one QThread whose worker QObject drains a job queue until a sentinel (GUI.md, "Threading").

    lane = Lane("vsearch-query", parent=controller)
    lane.start()
    lane.submit(lambda: service.status(), on_done=self._on_status)        # callbacks run in the GUI thread
    lane.submit_latest("search", run_query, on_done=self._on_results)     # replaces a search still waiting
    lane.stop()                                                           # sentinel after the jobs queued so far
    lane.finished.connect(...)                                            # the thread has ended

Why it is built this way:
- The worker's ``run`` is connected to ``QThread.started`` and is a bound method of a QObject moved to that
  thread, so it runs there and blocks it for the lane's life; the thread's own event loop starts only after the
  sentinel, to let ``quit`` end it.
- Worker signals are connected only to bound methods of ``Lane`` (a GUI-thread QObject): PySide6 runs a worker
  signal connected to a lambda, partial or plain function in the *worker* thread (measured, GUI.md pitfall). The
  Lane then calls the job's plain-Python callbacks itself, in the GUI thread.
- Every exception a job raises is caught and reported through ``on_error`` (or logged): an exception must cost a
  job, never the thread.
- "Latest wins": ``submit_latest(key, ...)`` keeps at most one waiting job per key. A search typed while an older
  one waits replaces it, so stale queries are dropped rather than queued; a job already running finishes and the
  caller drops its result by generation.
- The QThread is owned here and joined by whoever stops the lane (``wait``); a running QThread that is garbage
  collected aborts the process.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QThread, Signal

log = logging.getLogger(__name__)

_SENTINEL = object()
_job_ids = itertools.count(1)


@dataclass(eq=False)
class Job:
    """A unit of work for a lane. ``fn`` runs in the lane's thread; ``on_done(result)`` and ``on_error(exc)`` run
    in the GUI thread afterwards. ``cancelled`` jobs that have not started are skipped."""

    fn: Callable[[], object]
    name: str = ""
    on_done: Callable[[object], None] | None = None
    on_error: Callable[[Exception], None] | None = None
    key: str | None = None  # set for "latest wins" jobs
    id: int = field(default_factory=lambda: next(_job_ids))
    cancelled: bool = False


class _Mailbox:
    """One waiting job per key; the queue carries the key, the mailbox the newest job for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def put(self, job: Job) -> bool:
        """Store ``job``; True when no job was waiting under its key (the caller must queue the key then)."""
        with self._lock:
            replaced = self._jobs.get(job.key)
            self._jobs[job.key] = job
        if replaced is not None:
            replaced.cancelled = True
        return replaced is None

    def take(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            jobs, self._jobs = list(self._jobs.values()), {}
        for job in jobs:
            job.cancelled = True


@dataclass(frozen=True)
class _Key:
    key: str


class _Worker(QObject):
    """Lives in the lane's thread; ``run`` blocks it until the sentinel."""

    jobDone = Signal(object, object)  # job, result
    jobFailed = Signal(object, object)  # job, exception
    drained = Signal()

    def __init__(self, jobs: queue.Queue, mailbox: _Mailbox) -> None:
        super().__init__()
        self._jobs = jobs
        self._mailbox = mailbox

    def run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is _SENTINEL:
                break
            job = self._mailbox.take(item.key) if isinstance(item, _Key) else item
            if job is None or job.cancelled:
                continue
            try:
                result = job.fn()
            except Exception as exc:  # reported to the GUI; the lane goes on with the next job
                if job.on_error is None:
                    log.exception("%s job %r failed", QThread.currentThread().objectName(), job.name)
                self.jobFailed.emit(job, exc)
                continue
            self.jobDone.emit(job, result)
        self.drained.emit()


class Lane(QObject):
    """A named worker thread with a job queue. All methods are for the GUI thread."""

    finished = Signal()  # the thread has ended (after ``stop``)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self._jobs: queue.Queue = queue.Queue()
        self._mailbox = _Mailbox()
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._worker = _Worker(self._jobs, self._mailbox)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.jobDone.connect(self._on_job_done)
        self._worker.jobFailed.connect(self._on_job_failed)
        self._worker.drained.connect(self._on_drained)
        self._thread.finished.connect(self._on_thread_finished)
        self._started = False
        self._stopping = False
        self._ended = False

    # --- control --------------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._started and not self._ended

    @property
    def ended(self) -> bool:
        return self._ended

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def submit(self, fn: Callable[[], object], *, name: str = "", on_done: Callable[[object], None] | None = None,
               on_error: Callable[[Exception], None] | None = None) -> Job:
        """Queue ``fn`` behind the jobs already queued. Ignored (and returned cancelled) once the lane stops."""
        job = Job(fn, name or getattr(fn, "__name__", ""), on_done, on_error)
        if self._stopping:
            job.cancelled = True
        else:
            self._jobs.put(job)
        return job

    def submit_latest(self, key: str, fn: Callable[[], object], *, name: str = "",
                      on_done: Callable[[object], None] | None = None,
                      on_error: Callable[[Exception], None] | None = None) -> Job:
        """Queue ``fn`` as the only waiting job under ``key``: a job of that key still waiting is dropped."""
        job = Job(fn, name or key, on_done, on_error, key=key)
        if self._stopping:
            job.cancelled = True
        elif self._mailbox.put(job):
            self._jobs.put(_Key(key))
        return job

    def stop(self) -> None:
        """Finish the running job and those queued by ``submit``, drop waiting latest-wins jobs, then end."""
        if self._stopping:
            return
        self._stopping = True
        self._mailbox.clear()
        self._jobs.put(_SENTINEL)
        if not self._started:  # never started: nothing will drain the queue
            self._ended = True
            self.finished.emit()

    def wait(self, ms: int) -> bool:
        """Block until the thread has ended (for shutdown paths that must not return early); True when it has."""
        return not self._started or self._thread.wait(ms)

    # --- worker -> GUI thread (queued: bound methods of this GUI-thread object) ------------------------------------

    def _on_job_done(self, job: Job, result: object) -> None:
        if job.on_done is not None:
            job.on_done(result)

    def _on_job_failed(self, job: Job, exc: Exception) -> None:
        if job.on_error is not None:
            job.on_error(exc)

    def _on_drained(self) -> None:
        self._thread.quit()

    def _on_thread_finished(self) -> None:
        self._ended = True
        self.finished.emit()
