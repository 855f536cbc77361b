"""The status bar's part for batch caption jobs ("Generate caption" on a selection or a folder): what the job is
doing, a bar, and Cancel. Hidden while no job runs. Search and everything else keep working meanwhile.

Progress comes pull-throttled from the caption lane (a few reports a second at most). When a job ends the widget
emits ``message`` with a one-line summary for the status bar ("Described 12 photos · 3 already had a caption"), and
``captionModelMissing`` when the model is not there (the window opens the caption model dialog).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from vsearch_app.core.types import CaptionBatchProgress, CaptionBatchReport
from vsearch_app.gui import formatting, icons
from vsearch_app.gui.engine.caption_lane import MODEL_MISSING, CaptionFailure, CaptionJob

_BAR_WIDTH = 120


def progress_text(progress: CaptionBatchProgress, queued: int = 0) -> str:
    """Words for a job's progress (pure, so tests read it directly)."""
    if progress.phase == "loading":
        text = "Loading the caption model…"
    else:
        text = f"Describing photos {formatting.count(progress.done)} / {formatting.count(progress.total)}"
    if queued:
        text += f" · {queued} more {'job' if queued == 1 else 'jobs'} waiting"
    return text


def report_text(report: CaptionBatchReport) -> str:
    """The summary when a job ends."""
    if report.total == 0:
        return "No photos to describe there yet: they are described once they are in the library."
    parts = [("Stopped after " if report.cancelled else "Described ") + formatting.plural(report.captioned, "photo")]
    if report.skipped:
        parts.append(f"{formatting.count(report.skipped)} already had a caption")
    if report.failed:
        parts.append(f"{formatting.count(len(report.failed))} could not be read")
    if report.cancelled:
        parts.append("the rest is described when you run it again")
    return " · ".join(parts)


class CaptionJobStatus(QWidget):
    message = Signal(str)  # a summary when a job ends (or why it failed)
    captionModelMissing = Signal(str)

    def __init__(self, captions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.captions = captions  # the controller's CaptionLane
        self._text = QLabel(self)
        self._bar = QProgressBar(self)
        self._bar.setTextVisible(False)
        self._bar.setFixedWidth(_BAR_WIDTH)
        self._bar.setMaximumHeight(12)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setIcon(icons.icon("stop"))
        self.cancel_button.setIconSize(QSize(14, 14))
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.cancel_button.setAutoRaise(True)
        self.cancel_button.setToolTip("Stop describing photos; the captions written so far are kept")
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 0, 0, 0)
        row.setSpacing(6)
        row.addWidget(self._text)
        row.addWidget(self._bar)
        row.addWidget(self.cancel_button)
        captions.batchProgress.connect(self._on_progress)
        captions.batchFinished.connect(self._on_finished)
        captions.batchFailed.connect(self._on_failed)
        self.hide()

    @property
    def text(self) -> str:
        return self._text.text()

    def job_started(self, job: CaptionJob) -> None:
        """A job was queued: show the widget at once (progress follows)."""
        if not self.isVisible() or len(self.captions.jobs) == 1:
            self._text.setText("Describing photos…")
            self._bar.setRange(0, 0)
        self.cancel_button.setEnabled(True)
        self.show()

    def cancel(self) -> None:
        self.captions.cancel_batches()
        self.cancel_button.setEnabled(False)
        self._text.setText("Stopping after the photo in hand…")

    def _on_progress(self, job: CaptionJob, progress: CaptionBatchProgress) -> None:
        if job.cancel.is_set():
            return
        self._text.setText(progress_text(progress, len(self.captions.jobs) - 1))
        if progress.phase == "loading" or progress.total == 0:
            self._bar.setRange(0, 0)
        else:
            self._bar.setRange(0, progress.total)
            self._bar.setValue(progress.done)
        self.show()

    def _on_finished(self, job: CaptionJob, report: CaptionBatchReport) -> None:
        self.message.emit(report_text(report))
        self._hide_when_idle()

    def _on_failed(self, job: CaptionJob, failure: CaptionFailure) -> None:
        if failure.kind == MODEL_MISSING:
            self.captions.cancel_batches()  # the jobs behind it would fail the same way
            self.message.emit("Describing photos needs the caption model")
            self.captionModelMissing.emit(failure.message)
        else:
            self.message.emit(f"Describing photos stopped: {failure.message}")
        self._hide_when_idle()

    def _hide_when_idle(self) -> None:
        if not self.captions.jobs:
            self.hide()
