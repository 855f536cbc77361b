"""The Describe panel: the selected photo large, its file facts, its stored caption, and Generate / Stop.

    panel = DescribePanel(controller)
    panel.show_photo(path, hit)       # the photo the grid selected (hit: its SearchHit, for the facts)
    panel.generate()                  # what the Generate button does: stream a caption with the chosen settings
    panel.stop()                      # Stop: the text so far stays, marked stopped

- The photo (gui/views/photo_view.py) is upright, fitted, and shown at 100% on demand; it is always decoded with a
  scaled size.
- The stored caption is read from the library on the query lane (``controller.stored_caption``): no model is loaded
  to show it. A caption written by a batch job for the photo on show appears as soon as it is stored.
- Generation runs on the caption lane (gui/engine/caption_lane.py): the text arrives in pieces a few times a second
  and is appended with QTextCursor.insertText (no re-layout of the whole text); the first Generate of a session
  loads the model in the background and says so. Selecting another photo does not stop a caption being written:
  it is stored when done, and shown again, still streaming, when the photo is selected again.
- A missing caption model emits ``captionModelMissing`` (the window opens the gated-model dialog).
- The generation settings default to CaptionSettings' (the CLI's): greedy, 100 tokens; sampling enables
  temperature, top-p and seed. They sit under "Options", folded away until wanted.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFont, QPalette, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from vsearch_app.core.types import CaptionResult, CaptionSettings, SearchHit
from vsearch_app.gui import formatting, icons
from vsearch_app.gui.engine.caption_lane import MODEL_MISSING, CaptionFailure, CaptionRequest
from vsearch_app.gui.views.photo_view import PhotoView

log = logging.getLogger(__name__)

PROMPTS = (  # (what the menu shows, the prompt)
    ("Caption", "caption en"),
    ("Detailed description", "describe en"),
    ("Question: what is in this photo?", "question: what is in this photo?"),
    ("Question: where was this taken?", "question: where was this taken?"),
)
SEED_NONE = -1  # the seed box's "none" (a new random seed for each caption)
IDLE, LOADING, WRITING, STOPPING, DONE, STOPPED, FAILED = (
    "idle", "loading", "writing", "stopping", "done", "stopped", "failed")


def photo_facts(path: Path, hit: SearchHit | None, pixel_size: QSize | None) -> list[str]:
    """The lines under the photo: folder, pixel size and file size, when it was taken (or modified), the camera.
    From the search hit when there is one (the catalog read EXIF already), else from the file itself."""
    lines = [str(path.parent)]
    size = hit.size if hit is not None and hit.size else _file_size(path)
    width, height = (hit.width, hit.height) if hit is not None and hit.width and hit.height else (
        (pixel_size.width(), pixel_size.height()) if pixel_size is not None else (None, None))
    dims = [f"{formatting.count(width)} × {formatting.count(height)}"] if width and height else []
    if size:
        dims.append(formatting.size(size))
    if dims:
        lines.append(" · ".join(dims))
    when = _when(path, hit)
    if when:
        lines.append(when)
    if hit is not None and hit.camera:
        lines.append(hit.camera)
    return lines


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _when(path: Path, hit: SearchHit | None) -> str:
    if hit is not None and hit.taken_at:
        try:
            moment = dt.datetime.fromisoformat(hit.taken_at)
        except ValueError:
            return ""
        verb = "Taken" if hit.taken_at_source != "mtime" else "Modified"
    else:
        try:
            moment = dt.datetime.fromtimestamp(path.stat().st_mtime)
        except (OSError, ValueError):
            return ""
        verb = "Modified"
    return f"{verb} {moment.day} {moment:%B %Y}, {moment:%H:%M}"


def settings_text(result: CaptionResult) -> str:
    """The small line under a finished caption: how long the model took to start and how fast it wrote."""
    parts = []
    if result.prefill_s > 0:
        wait = f"{result.prefill_s * 1000:.0f} ms" if result.prefill_s < 1 else f"{result.prefill_s:.1f} s"
        parts.append(f"first word after {wait}")
    if result.decode_tokens_per_s > 0:
        parts.append(f"{result.decode_tokens_per_s:.1f} tokens/s")
    if result.token_count:
        parts.append(formatting.plural(result.token_count, "token"))
    return " · ".join(parts)


class DescribePanel(QWidget):
    """See the module docstring. ``controller`` is the window's EngineController."""

    captionModelMissing = Signal(str)  # the model-missing message: the window offers the caption model dialog

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.captions = controller.captions
        self.path: Path | None = None
        self._hit: SearchHit | None = None
        self._request: CaptionRequest | None = None  # the panel's latest Generate
        self._text = ""  # what the latest Generate has written so far
        self._state = IDLE
        self._stored: CaptionResult | None = None
        self._missing_model = False  # the last Generate failed for want of the caption model
        self.setMinimumWidth(260)

        self.photo = PhotoView(controller.thumbnail, self)
        self.zoom_button = QToolButton(self)
        self.zoom_button.setText("100%")
        self.zoom_button.setCheckable(True)
        self.zoom_button.setAutoRaise(True)
        self.zoom_button.setToolTip("Show the photo pixel for pixel (click again to fit it to the panel)")
        self.zoom_button.toggled.connect(self.photo.set_actual_size)
        self.name = QLabel(self)
        self.name.setWordWrap(True)
        self.name.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bold = QFont(self.name.font())
        bold.setWeight(QFont.Weight.DemiBold)
        self.name.setFont(bold)
        self.facts = _secondary(self)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.prompt = QComboBox(self)
        self.prompt.setEditable(True)
        self.prompt.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        for label, prompt in PROMPTS:
            self.prompt.addItem(label, prompt)
        self.prompt.setToolTip("What to ask: a caption, a longer description, a question (“question: …”), or the "
                               "start of a sentence for the model to finish")
        self.prompt.lineEdit().setPlaceholderText("caption en")
        self.prompt.currentIndexChanged.connect(self._on_prompt_changed)
        self.prompt.lineEdit().returnPressed.connect(self.generate)
        self.generate_button = QPushButton(icons.icon("caption", QPalette.ColorRole.ButtonText), "Generate", self)
        self.generate_button.setDefault(True)
        self.generate_button.clicked.connect(self.generate)
        self.stop_button = QPushButton(icons.icon("stop", QPalette.ColorRole.ButtonText), "Stop", self)
        self.stop_button.clicked.connect(self.stop)

        self.status = _secondary(self)
        self.busy = QProgressBar(self)
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(6)
        self.busy.hide()
        self.text = QTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setAcceptRichText(False)
        self.text.setPlaceholderText("No caption yet")
        self.text.setToolTip("Captions are kept in the library with the photo")
        self.text.setMinimumHeight(72)
        self.stats = _secondary(self)
        small = QFont(self.stats.font())
        if small.pointSizeF() > 0:
            small.setPointSizeF(small.pointSizeF() * 0.85)
        self.stats.setFont(small)

        self.options_button = QToolButton(self)
        self.options_button.setText("Options")
        self.options_button.setCheckable(True)
        self.options_button.setAutoRaise(True)
        self.options_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.options_button.setArrowType(Qt.ArrowType.RightArrow)
        self.options_button.toggled.connect(self._show_options)
        self.options = self._build_options()
        self.options.hide()

        self._layout()
        self.set_defaults()
        self.captions.tokens.connect(self._on_tokens)
        self.captions.finished.connect(self._on_finished)
        self.captions.failed.connect(self._on_failed)
        self.captions.loadProgress.connect(self._on_load_progress)
        self.captions.captionStored.connect(self._on_caption_stored)
        self._show_nothing()

    # --- layout -------------------------------------------------------------------------------------------------

    def _build_options(self) -> QWidget:
        box = QWidget(self)
        form = QFormLayout(box)
        form.setContentsMargins(18, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        self.mode = QComboBox(box)
        self.mode.addItem("Most likely words", False)
        self.mode.addItem("Sampling", True)
        self.mode.setToolTip("Most likely words: the same text every time. Sampling: varied wording, shaped by "
                             "temperature and top-p")
        self.mode.currentIndexChanged.connect(self._update_sampling_enabled)
        self.temperature = QDoubleSpinBox(box)
        self.temperature.setRange(0.05, 2.0)
        self.temperature.setSingleStep(0.05)
        self.top_p = QDoubleSpinBox(box)
        self.top_p.setRange(0.05, 1.0)
        self.top_p.setSingleStep(0.05)
        self.max_tokens = QSpinBox(box)
        self.max_tokens.setRange(1, 1024)
        self.seed = QSpinBox(box)
        self.seed.setRange(SEED_NONE, 2_147_483_647)
        self.seed.setSpecialValueText("random")
        self.seed.setToolTip("The same seed gives the same sampled text again")
        form.addRow("Words:", self.mode)
        form.addRow("Temperature:", self.temperature)
        form.addRow("Top-p:", self.top_p)
        form.addRow("Seed:", self.seed)
        form.addRow("Longest answer:", self.max_tokens)
        self.max_tokens.setSuffix(" tokens")
        reset = QPushButton("Use the Defaults", box)
        reset.setAutoDefault(False)
        reset.clicked.connect(self.set_defaults)
        form.addRow("", reset)
        return box

    def _layout(self) -> None:
        column = QVBoxLayout(self)
        column.setContentsMargins(10, 8, 10, 10)
        column.setSpacing(6)
        column.addWidget(self.photo, 4)
        title = QHBoxLayout()
        title.addWidget(self.name, 1)
        title.addWidget(self.zoom_button, 0, Qt.AlignmentFlag.AlignTop)
        column.addLayout(title)
        column.addWidget(self.facts)
        column.addSpacing(6)
        ask = QHBoxLayout()
        ask.addWidget(self.prompt, 1)
        ask.addWidget(self.generate_button)
        ask.addWidget(self.stop_button)
        column.addLayout(ask)
        column.addWidget(self.options_button, 0, Qt.AlignmentFlag.AlignLeft)
        column.addWidget(self.options)
        column.addWidget(self.status)
        column.addWidget(self.busy)
        column.addWidget(self.text, 1)
        column.addWidget(self.stats)

    # --- state, for the window and tests ------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """IDLE, LOADING (the model), WRITING, STOPPING, DONE, STOPPED or FAILED."""
        return self._state

    @property
    def caption_text(self) -> str:
        return self.text.toPlainText()

    @property
    def request(self) -> CaptionRequest | None:
        return self._request

    # --- the photo ----------------------------------------------------------------------------------------------

    def show_photo(self, path: Path | None, hit: SearchHit | None = None) -> None:
        """Show ``path`` (None: nothing), its facts and its stored caption (read without loading a model)."""
        path = Path(path) if path is not None else None
        if path == self.path and (hit is None or hit == self._hit):
            return
        self.path, self._hit, self._stored = path, hit, None
        self.photo.set_photo(path)
        if path is None:
            self._show_nothing()
            return
        self.name.setText(path.name)
        self.facts.setText("\n".join(photo_facts(path, hit, self.photo.full_size)))
        self.setToolTip("")
        if self._showing_request() and self._generating():
            self.text.setPlainText(self._text)
            self._set_state(WRITING if self._text else LOADING)
            return
        self.text.clear()
        self.stats.clear()
        self._set_state(IDLE)
        self._read_stored()

    def _show_nothing(self) -> None:
        self.name.setText("No photo selected")
        self.facts.setText("Select a photo in the results to see it here and describe it in words.")
        self.text.clear()
        self.stats.clear()
        self._set_state(IDLE)

    def _read_stored(self) -> None:
        path, prompt = self.path, self.current_settings_prompt()
        if path is None:
            return
        self.controller.stored_caption(path, prompt, lambda result: self._on_stored(path, result))

    def _on_stored(self, path: Path, result: CaptionResult | None) -> None:
        if path != self.path or (self._state in (LOADING, WRITING, STOPPING) and self._showing_request()):
            return  # another photo is on show now, or a fresh caption is being written over it
        self._stored = result
        if result is None:
            if self._state == IDLE:
                self.text.clear()
                self.status.setText("")
            return
        self.text.setPlainText(result.text)
        when = ""
        if result.stored_at:
            moment = dt.datetime.fromtimestamp(result.stored_at)
            when = f", {moment.day} {moment:%b %Y}"
        marker = "Stopped early: the text is partial" if result.stopped else "Stored caption"
        self.status.setText(f"{marker} · “{result.prompt}”{when}")
        self.stats.setText(settings_text(result))
        if self._state not in (DONE, STOPPED):
            self._set_state(IDLE, keep_status=True)

    def _on_caption_stored(self, path: Path, result: CaptionResult) -> None:
        """A caption was written (by a batch job, or a Describe of a photo no longer on show)."""
        if Path(path) == self.path and not self._showing_request():
            self._on_stored(self.path, result)

    # --- generating ---------------------------------------------------------------------------------------------

    def current_settings_prompt(self) -> str:
        text = self.prompt.currentText().strip()
        index = self.prompt.findText(text)
        data = self.prompt.itemData(index) if index >= 0 else None
        return str(data) if data else (text or CaptionSettings().prompt)

    def caption_settings(self) -> CaptionSettings:
        seed = self.seed.value()
        return CaptionSettings(prompt=self.current_settings_prompt(), max_tokens=self.max_tokens.value(),
                               sample=bool(self.mode.currentData()), temperature=round(self.temperature.value(), 3),
                               top_p=round(self.top_p.value(), 3), seed=None if seed == SEED_NONE else seed)

    def set_defaults(self) -> None:
        """The generation settings the CLI uses (CaptionSettings' defaults)."""
        defaults = CaptionSettings()
        self.mode.setCurrentIndex(1 if defaults.sample else 0)
        self.temperature.setValue(defaults.temperature)
        self.top_p.setValue(defaults.top_p)
        self.max_tokens.setValue(defaults.max_tokens)
        self.seed.setValue(SEED_NONE if defaults.seed is None else defaults.seed)
        self._update_sampling_enabled()

    def generate(self) -> CaptionRequest | None:
        """Write a caption of the photo on show with the chosen settings, streaming it into the panel."""
        if self.path is None:
            return None
        self._request = self.captions.describe(self.path, self.caption_settings())
        self._missing_model = False
        self._text = ""
        self.text.clear()
        self.stats.clear()
        self._set_state(LOADING)
        return self._request

    def retry_after_model_missing(self, *_args) -> None:
        """The caption model is here now (downloaded, or a folder chosen): write the caption that could not be."""
        if self._state == FAILED and self._missing_model and self.path is not None:
            self.generate()

    def stop(self) -> None:
        if self._request is not None and self._state in (LOADING, WRITING):
            self.captions.stop_describe()
            self._set_state(STOPPING)

    def _showing_request(self) -> bool:
        return self._request is not None and self._request.path == self.path

    def _generating(self) -> bool:
        """The panel's latest Generate is still queued or writing."""
        return self._request is self.captions.current and self.captions.describing

    def _on_load_progress(self, progress: object) -> None:
        if self._state == LOADING and self._showing_request():
            phase = getattr(progress, "phase", "")
            self.status.setText("Loading the caption model…" + (f" {phase}" if phase and phase != "ready" else ""))

    def _on_tokens(self, request: CaptionRequest, text: str) -> None:
        if request is not self._request:
            return
        self._text += text
        if not self._showing_request():
            return
        if self._state == LOADING:
            self._set_state(WRITING)
        cursor = QTextCursor(self.text.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)  # appends without re-laying out what is already there
        self.text.verticalScrollBar().setValue(self.text.verticalScrollBar().maximum())

    def _on_finished(self, request: CaptionRequest, result: CaptionResult) -> None:
        if request is not self._request:
            return
        self._text = result.text or self._text
        if not self._showing_request():
            return
        if self.caption_text != self._text:
            self.text.setPlainText(self._text)  # the stored text is the truth (a piece may have been held back)
        self._set_state(STOPPED if result.stopped else DONE)
        if result.stopped:
            self.status.setText("Stopped: the text is partial" if self._text else "Stopped before the first word")
        else:
            words = {"max_tokens": " (reached the longest answer)"}.get(result.stop_reason, "")
            self.status.setText(f"Done{words}" + (" · kept with the photo" if result.stored_at else ""))
        self.stats.setText(settings_text(result))

    def _on_failed(self, request: CaptionRequest, failure: CaptionFailure) -> None:
        if request is not self._request:
            return
        self._set_state(FAILED)
        self._missing_model = failure.kind == MODEL_MISSING
        if failure.kind == MODEL_MISSING:
            self.status.setText("The caption model is not on this computer yet.")
            self.captionModelMissing.emit(failure.message)
        else:
            self.status.setText(formatting.sentence(failure.message))

    # --- widgets' state -----------------------------------------------------------------------------------------

    def _set_state(self, state: str, *, keep_status: bool = False) -> None:
        self._state = state
        running = state in (LOADING, WRITING, STOPPING)
        self.generate_button.setEnabled(self.path is not None and not running)
        self.generate_button.setText("Generate Again" if state in (DONE, STOPPED) or self._stored else "Generate")
        self.stop_button.setEnabled(state in (LOADING, WRITING))
        self.stop_button.setVisible(running)
        self.generate_button.setVisible(not running)
        self.busy.setVisible(running)
        self.busy.setRange(0, 0)
        if keep_status:
            return
        texts = {LOADING: "Getting ready…", WRITING: "Writing…", STOPPING: "Stopping…", IDLE: ""}
        if state in texts:
            self.status.setText(texts[state])

    def _update_sampling_enabled(self, *_args) -> None:
        sampling = bool(self.mode.currentData())
        for widget in (self.temperature, self.top_p, self.seed):
            widget.setEnabled(sampling)

    def _show_options(self, shown: bool) -> None:
        self.options.setVisible(shown)
        self.options_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _on_prompt_changed(self, _index: int) -> None:
        if self._state not in (LOADING, WRITING, STOPPING):
            self._read_stored()


def _secondary(parent: QWidget) -> QLabel:
    label = QLabel(parent)
    label.setWordWrap(True)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


class DescribeDock(QDockWidget):
    """The panel as a dock on the window's right; ``toggleViewAction()`` (Ctrl+D, the header's Describe button)
    shows and hides it, and the window remembers where it was and whether it was open."""

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__("Describe", parent)
        self.setObjectName("describe")  # QMainWindow.saveState keys docks by object name
        self.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.setAllowedAreas(Qt.DockWidgetArea.LeftDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        self.panel = DescribePanel(controller, self)
        self.setWidget(self.panel)
        action = self.toggleViewAction()
        action.setIcon(icons.icon("caption"))
        action.setText("Describe")
        action.setShortcut("Ctrl+D")
        keys = action.shortcut().toString()
        action.setToolTip(f"Show the selected photo large and describe it in words ({keys})")
