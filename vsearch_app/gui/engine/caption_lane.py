"""The caption lanes: "Describe" requests (one photo, streamed into the panel) and batch caption jobs, on threads of
their own so searching never waits for a caption.

    captions = CaptionLane(gate, parent=controller)
    captions.start()
    request = captions.describe(path, CaptionSettings())    # cancels the describe before it
    captions.tokens.connect(...)        # (request, text): pieces that came since the last delivery, GUI thread
    captions.finished.connect(...)      # (request, CaptionResult): stopped ones too (result.stopped)
    captions.stop_describe()            # Stop: the generation ends at its next token, its partial text is stored
    job = captions.caption_batch(paths, CaptionSettings())  # queued behind a running job; progress, Cancel
    captions.shutdown()                 # cancel everything; ``finished_all`` once both threads have ended

Why it is built this way:
- Two lanes (gui/engine/lane.py): "describe" and "batch". A Describe on one photo does not wait for a whole folder
  job; the session runs one generation at a time, so it takes its turn between two of the job's photos.
- The model loads in the lane the first time it is needed (``load_captioner``: one load per session, shared by both
  lanes); its ModelLoadProgress reaches the GUI as ``loadProgress``.
- Delivery is pull-throttled (GUI.md "Delivery"): the engine's ``on_token`` only appends to the request's buffer
  and progress callbacks only store the latest value; a GUI timer (DELIVERY_MS) hands them on while something runs.
  A model writing hundreds of tokens a second costs the GUI thread one signal per tick, not one per token.
- A new Describe sets the previous one's cancel event: the session stops it at its next token and stores its
  partial text; its late pieces are dropped here (only the current request is delivered).
- Every callback the Lane makes runs in the GUI thread; the job functions run in the lane threads and touch no Qt
  object.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from vsearch_app.core.types import CaptionBatchReport, CaptionResult, CaptionSettings
from vsearch_app.errors import ModelNotFoundError, VSearchError
from vsearch_app.gui.engine.lane import Lane
from vsearch_app.gui.engine.library_lane import LatestValue

log = logging.getLogger(__name__)

DELIVERY_MS = 50  # how often streamed text and progress reach the GUI while a caption runs
SERVICE_WAIT_S = 120.0  # a caption asked for while the library is still opening waits this long for it
MODEL_MISSING, FAILED = "model_missing", "failed"  # the kinds of CaptionFailure

_request_ids = itertools.count(1)


@dataclass(eq=False)
class CaptionRequest:
    """One Describe: a photo and how to caption it. ``cancel`` stops it; ``pieces`` is what the lane thread wrote
    and the GUI has not taken yet."""

    path: Path
    settings: CaptionSettings
    id: int = field(default_factory=lambda: next(_request_ids))
    cancel: threading.Event = field(default_factory=threading.Event)
    _pieces: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, piece: str) -> None:  # lane thread (the engine's on_token)
        with self._lock:
            self._pieces.append(piece)

    def take_text(self) -> str:  # GUI thread
        with self._lock:
            pieces, self._pieces = self._pieces, []
        return "".join(pieces)


@dataclass(eq=False)
class CaptionJob:
    """One batch job: photos (or folders) and a prompt; ``cancel`` stops it after the token in hand."""

    paths: tuple[Path, ...]
    settings: CaptionSettings
    id: int = field(default_factory=lambda: next(_request_ids))
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class CaptionFailure:
    """Why a caption or a job gave nothing: ``kind`` MODEL_MISSING (offer the model dialog) or FAILED."""

    kind: str
    message: str
    model: str = ""


class CaptionLane(QObject):
    """Owns the describe and batch threads. Methods are for the GUI thread; signals arrive in the GUI thread."""

    loadProgress = Signal(object)  # ModelLoadProgress of the caption model
    tokens = Signal(object, str)  # CaptionRequest, the text that came since the last delivery
    finished = Signal(object, object)  # CaptionRequest, CaptionResult (result.stopped when Stop or a newer request)
    failed = Signal(object, object)  # CaptionRequest, CaptionFailure
    batchProgress = Signal(object, object)  # CaptionJob, CaptionBatchProgress
    batchFinished = Signal(object, object)  # CaptionJob, CaptionBatchReport
    batchFailed = Signal(object, object)  # CaptionJob, CaptionFailure
    captionStored = Signal(object, object)  # Path, CaptionResult: a caption was written to the library
    finished_all = Signal()  # both threads have ended (after ``shutdown``)

    def __init__(self, gate: object, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._gate = gate  # query_lane.ServiceGate: the service once the library is open
        self._describe_lane = Lane("vsearch-describe", self)
        self._batch_lane = Lane("vsearch-captions", self)
        for lane in (self._describe_lane, self._batch_lane):
            lane.finished.connect(self._on_lane_finished)
        self._current: CaptionRequest | None = None  # the Describe whose text is delivered
        self._running: set[CaptionRequest] = set()  # describes submitted and not yet answered
        self._jobs: list[CaptionJob] = []  # batch jobs queued or running, oldest first
        self._load_progress = LatestValue()
        self._batch_progress = LatestValue()  # (job, CaptionBatchProgress)
        self._stored: list[tuple[Path, CaptionResult]] = []  # batch results, for captionStored
        self._stored_lock = threading.Lock()
        self._stopping = False
        self._model_settled = threading.Event()  # cleared while a caption model switch waits on the describe lane
        self._model_settled.set()
        self._timer = QTimer(self)
        self._timer.setInterval(DELIVERY_MS)
        self._timer.timeout.connect(self._deliver)

    # --- state --------------------------------------------------------------------------------------------------

    @property
    def current(self) -> CaptionRequest | None:
        return self._current

    @property
    def describing(self) -> bool:
        """A Describe is queued or generating (Stop has something to stop)."""
        return self._current is not None and self._current in self._running

    @property
    def jobs(self) -> list[CaptionJob]:
        """Batch jobs queued or running, oldest first."""
        return list(self._jobs)

    @property
    def busy(self) -> bool:
        return bool(self._running or self._jobs)

    @property
    def ended(self) -> bool:
        return self._describe_lane.ended and self._batch_lane.ended

    # --- control ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._describe_lane.start()
        self._batch_lane.start()

    def describe(self, path: Path, settings: CaptionSettings) -> CaptionRequest:
        """Caption ``path`` and stream the text; the Describe before it (if any) is stopped."""
        self.stop_describe()
        request = CaptionRequest(Path(path), settings)
        self._current = request
        if self._stopping:
            request.cancel.set()
            return request
        self._running.add(request)
        self._describe_lane.submit(lambda: self._run_describe(request), name="describe",
                                   on_done=lambda result: self._on_describe_done(request, result),
                                   on_error=lambda exc: self._on_describe_failed(request, exc))
        self._timer.start()
        return request

    def stop_describe(self) -> None:
        """Stop the current Describe at its next token (its partial text is kept and marked stopped)."""
        if self._current is not None:
            self._current.cancel.set()

    def caption_batch(self, paths: Sequence[Path], settings: CaptionSettings) -> CaptionJob:
        """Queue a job captioning ``paths`` (photos, or folders: the library's photos in them)."""
        job = CaptionJob(tuple(Path(p) for p in paths), settings)
        if self._stopping:
            job.cancel.set()
            return job
        self._jobs.append(job)
        self._batch_lane.submit(lambda: self._run_batch(job), name="caption batch",
                                on_done=lambda report: self._on_batch_done(job, report),
                                on_error=lambda exc: self._on_batch_failed(job, exc))
        self._timer.start()
        return job

    def use_model(self, folder: Path, on_error: Callable[[str], None]) -> None:
        """Caption with the checkpoint in ``folder`` from now on. It runs on the describe lane, so the Describe asked
        for next runs after it; batch jobs wait for it too."""
        if self._stopping:
            return
        self._model_settled.clear()

        def switch() -> None:
            try:
                self._gate.get(timeout=SERVICE_WAIT_S).set_caption_model(str(folder))
            finally:
                self._model_settled.set()

        self._describe_lane.submit(switch, name="use caption model",
                                   on_error=lambda exc: on_error(_failure(exc).message))

    def cancel_batches(self) -> None:
        """Cancel the running job and those queued (what was written is kept)."""
        for job in self._jobs:
            job.cancel.set()

    def shutdown(self) -> None:
        """Stop everything (a running generation stops at its next token and is stored) and end both threads;
        ``finished_all`` follows."""
        if self._stopping:
            return
        self._stopping = True
        for request in self._running:
            request.cancel.set()
        self.stop_describe()
        self.cancel_batches()
        self._describe_lane.stop()
        self._batch_lane.stop()

    def wait(self, ms: int) -> bool:
        return self._describe_lane.wait(ms) and self._batch_lane.wait(ms)

    # --- jobs (lane threads) ------------------------------------------------------------------------------------

    def _service(self, cancel: threading.Event) -> object | None:
        if cancel.is_set():
            return None
        return self._gate.get(timeout=SERVICE_WAIT_S)

    def _run_describe(self, request: CaptionRequest) -> CaptionResult | None:
        service = self._service(request.cancel)
        if service is None or not service.load_captioner(self._load_progress.put, request.cancel):
            return None  # stopped before the model was ready: nothing was generated
        return service.caption(request.path, request.settings, on_token=request.append, cancel=request.cancel)

    def _run_batch(self, job: CaptionJob) -> CaptionBatchReport | None:
        while not self._model_settled.wait(0.1):  # a caption model switch comes first
            if job.cancel.is_set():
                return None
        service = self._service(job.cancel)
        if service is None:
            return None

        return service.caption_many(list(job.paths), job.settings, on_result=self._on_batch_result,
                                    progress=lambda value: self._batch_progress.put((job, value)), cancel=job.cancel)

    def _on_batch_result(self, path: Path, result: CaptionResult) -> None:  # lane thread
        with self._stored_lock:
            self._stored.append((path, result))

    # --- results (GUI thread) -----------------------------------------------------------------------------------

    def _deliver(self) -> None:
        """The timer: hand on what the lanes wrote since the last tick."""
        load = self._load_progress.take()
        if load is not None:
            self.loadProgress.emit(load)
        current = self._current
        if current is not None and current in self._running:
            text = current.take_text()
            if text:
                self.tokens.emit(current, text)
        progress = self._batch_progress.take()
        if progress is not None and progress[0] in self._jobs:
            self.batchProgress.emit(*progress)
        with self._stored_lock:
            stored, self._stored = self._stored, []
        for path, result in stored:
            self.captionStored.emit(path, result)
        if not self.busy:
            self._timer.stop()

    def _on_describe_done(self, request: CaptionRequest, result: CaptionResult | None) -> None:
        self._deliver()  # the last pieces first, then the end
        self._running.discard(request)
        if result is None:
            result = CaptionResult(text="", prompt=request.settings.prompt, model="", stop_reason="cancelled",
                                   settings=request.settings)
        elif result.stored_at is not None:
            self.captionStored.emit(request.path, result)
        self.finished.emit(request, result)

    def _on_describe_failed(self, request: CaptionRequest, exc: Exception) -> None:
        self._running.discard(request)
        self.failed.emit(request, _failure(exc))

    def _on_batch_done(self, job: CaptionJob, report: CaptionBatchReport | None) -> None:
        self._deliver()
        self._forget(job)
        self.batchFinished.emit(job, report if report is not None else CaptionBatchReport(cancelled=True))

    def _on_batch_failed(self, job: CaptionJob, exc: Exception) -> None:
        self._deliver()
        self._forget(job)
        self.batchFailed.emit(job, _failure(exc))

    def _forget(self, job: CaptionJob) -> None:
        if job in self._jobs:
            self._jobs.remove(job)

    def _on_lane_finished(self) -> None:
        if self.ended:
            self._timer.stop()
            self.finished_all.emit()


def _failure(exc: Exception) -> CaptionFailure:
    if isinstance(exc, ModelNotFoundError):
        return CaptionFailure(MODEL_MISSING, str(exc))
    if isinstance(exc, VSearchError):
        return CaptionFailure(FAILED, str(exc))
    log.error("a caption job failed", exc_info=exc)
    return CaptionFailure(FAILED, f"unexpected error: {type(exc).__name__}: {exc}")
