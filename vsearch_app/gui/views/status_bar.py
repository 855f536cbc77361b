"""The window's status bar: what indexing is doing, a Pause/Resume button, and how many files could not be read.

Data in: ``set_progress(IndexProgress)`` as often as the engine reports (it may be hundreds of times a second);
``set_idle(indexed)`` when indexing has nothing to do; ``set_indexed(n)`` keeps the idle line's count current;
``set_paused(bool)`` and ``set_failed_count(n)`` to mirror the engine's state; ``set_note(text)`` for what the library
is doing when no progress explains it (opening, loading the model, another VSearch indexing, a problem).
Signals out: ``pauseRequested``, ``resumeRequested`` (the button flips at once and the window asks the engine),
``failedRequested`` (open the list of failed files).

Rendering is throttled (GUI.md "Delivery"): ``set_progress`` only stores the latest value; a 200 ms timer paints it.
``IndexProgress.phase`` ("scanning", "embedding", "rebuilding", "saving", "idle") is read with getattr, so progress
objects from before the engine had phases work too (they read as embedding).

It is a QStatusBar, so ``showMessage`` still works for short notes; they cover the progress text while shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QSizePolicy, QStatusBar, QToolButton, QWidget

from vsearch_app.core.types import IndexProgress
from vsearch_app.gui import formatting, icons

RENDER_INTERVAL_MS = 200
_BAR_WIDTH = 140


@dataclass(frozen=True)
class ProgressView:
    """What the status bar shows for one progress report: the text, and the bar (None: hidden; 0 total: busy)."""

    text: str
    bar: tuple[int, int] | None  # (value, maximum); maximum 0 draws Qt's busy indicator
    tooltip: str = ""


def describe_progress(progress: IndexProgress, *, paused: bool = False) -> ProgressView:
    """Words for an indexing progress report (pure, so tests read it directly)."""
    phase = getattr(progress, "phase", None) or "embedding"
    done, total = int(progress.done), int(progress.total)
    counts = f"{formatting.count(done)} / {formatting.count(total)}"
    if paused:
        return ProgressView(f"Indexing paused · {counts}", (done, max(total, 1)),
                            "Indexing is paused; search works on the photos indexed so far.")
    if phase == "scanning":
        found = f" · {formatting.plural(total, 'photo')} found" if total else ""
        return ProgressView(f"Looking for new photos…{found}", (0, 0), "Checking the watched folders for changes.")
    if phase == "rebuilding":
        return ProgressView("Preparing the search index…", (0, 0), "Rebuilding the index from the stored photos.")
    if phase == "saving":
        return ProgressView("Saving the search index…", (0, 0), "")
    if phase == "idle":
        return ProgressView("", None)
    parts = [f"Indexing {counts}"]
    if progress.rate > 0:
        parts.append(formatting.rate(progress.rate))
    left = formatting.time_left(progress.eta_s)
    if left:
        parts.append(left)
    return ProgressView(" · ".join(parts), (done, max(total, 1)),
                        "Search already works on the photos indexed so far; results improve as indexing goes on.")


def idle_text(indexed: int | None) -> str:
    if indexed is None:
        return "Up to date"
    return "No photos indexed yet" if indexed == 0 else f"{formatting.plural(indexed, 'photo')} indexed"


class StatusBar(QStatusBar):
    """See the module docstring."""

    pauseRequested = Signal()
    resumeRequested = Signal()
    failedRequested = Signal()

    def __init__(self, parent: QWidget | None = None, *, render_interval_ms: int = RENDER_INTERVAL_MS) -> None:
        super().__init__(parent)
        self.setSizeGripEnabled(False)
        self._latest: IndexProgress | None = None
        self._showing: IndexProgress | None = None  # the progress on screen; None when idle
        self._paused = False
        self._indexed: int | None = None
        self._note = ""

        self._text = QLabel(self)
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self._text.setContentsMargins(6, 0, 0, 0)
        self._text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # long text never widens
        self._bar = QProgressBar(self)
        self._bar.setTextVisible(False)
        self._bar.setFixedWidth(_BAR_WIDTH)
        self._bar.setMaximumHeight(12)
        self._bar.hide()

        self._pause = QToolButton(self)
        self._pause.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._pause.setAutoRaise(True)
        self._pause.setIconSize(QSize(14, 14))
        self._pause.clicked.connect(self._on_pause_clicked)
        self._pause.hide()

        self._failed = QToolButton(self)
        self._failed.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._failed.setAutoRaise(True)
        self._failed.setIconSize(QSize(14, 14))
        self._failed.setIcon(icons.icon("warning"))
        self._failed.clicked.connect(self.failedRequested)
        self._failed.hide()

        self.addWidget(self._text, 1)
        self.addPermanentWidget(self._bar)
        self.addPermanentWidget(self._pause)
        self.addPermanentWidget(self._failed)

        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(render_interval_ms)
        self._render_timer.timeout.connect(self._render)
        self._update_pause_button()

    # --- data in -------------------------------------------------------------------------------------------------

    def set_progress(self, progress: IndexProgress) -> None:
        """Store the latest report; it is painted within ``render_interval_ms`` (later reports replace it)."""
        self._latest = progress
        if not self._render_timer.isActive():
            self._render_timer.start()

    def set_idle(self, indexed: int | None = None) -> None:
        """Indexing has nothing to do: show how many photos are searchable (None: the last count given, if any)."""
        self._render_timer.stop()
        self._latest = None
        self._showing = None
        if indexed is not None:
            self._indexed = int(indexed)
        self._bar.hide()
        self._text.setText(self._note or idle_text(self._indexed))
        self._text.setToolTip(self._note)
        self._update_pause_button()

    def set_indexed(self, indexed: int) -> None:
        """The number of searchable photos, for the idle line (shown at once when idle)."""
        self._indexed = int(indexed)
        if self._showing is None and self._latest is None:
            self.set_idle()

    def set_note(self, text: str) -> None:
        """A standing line about the library ("Opening your library…", a problem), shown instead of the idle count
        while no progress is shown; "" removes it."""
        self._note = text
        if self._showing is None and self._latest is None:
            self.set_idle()

    def set_paused(self, paused: bool) -> None:
        """Mirror the engine's pause state (no signal)."""
        self._paused = bool(paused)
        self._update_pause_button()
        if self._showing is not None and self._latest is None:
            self._latest = self._showing
        if self._latest is not None:
            self._render()

    def set_failed_count(self, failed: int) -> None:
        self._failed.setVisible(failed > 0)
        self._failed.setText(f"{formatting.count(failed)} failed")
        self._failed.setToolTip(f"{formatting.plural(failed, 'file')} could not be read: show which, and why")

    # --- state, for the window and tests -------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    def text(self) -> str:
        return self._text.text()

    def indexing(self) -> bool:
        """Whether indexing progress is on show (and not paused)."""
        return self._showing is not None and not self._paused

    @property
    def pause_button(self) -> QToolButton:
        return self._pause

    @property
    def failed_button(self) -> QToolButton:
        return self._failed

    @property
    def progress_bar(self) -> QProgressBar:
        return self._bar

    # --- internals -----------------------------------------------------------------------------------------------

    def _render(self) -> None:
        progress, self._latest = self._latest, None
        if progress is None:
            return
        view = describe_progress(progress, paused=self._paused)
        if view.bar is None:  # the engine says idle
            self.set_idle()
            return
        self._showing = progress
        self._text.setText(view.text)
        self._text.setToolTip(view.tooltip)
        value, maximum = view.bar
        self._bar.setRange(0, maximum)
        self._bar.setValue(min(value, maximum) if maximum else 0)
        self._bar.setEnabled(not self._paused)  # a paused bar is drawn in the disabled colours
        self._bar.show()
        self._update_pause_button()

    def _on_pause_clicked(self) -> None:
        if self._paused:
            self.set_paused(False)
            self.resumeRequested.emit()
        else:
            self.set_paused(True)
            self.pauseRequested.emit()

    def _update_pause_button(self) -> None:
        # Pause only means something while indexing runs; Resume stays until the user resumes.
        self._pause.setVisible(self._paused or self._showing is not None)
        if self._paused:
            self._pause.setIcon(icons.icon("play"))
            self._pause.setText("Resume")
            self._pause.setToolTip("Resume indexing")
        else:
            self._pause.setIcon(icons.icon("pause"))
            self._pause.setText("Pause")
            self._pause.setToolTip("Pause indexing; search keeps working on what is indexed")
