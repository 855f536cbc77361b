"""The Settings dialog: models, where they run, how results look, and which data folder is in use.

``SettingsDialog(prefs, data_dir=...)`` shows a Preferences (gui.settings_model) and ``preferences()`` reads the
widgets back; it saves nothing itself. ``edit_preferences(parent, store, data_dir)`` is the whole flow: load,
show, and on OK save and return the new Preferences (None on Cancel). The window applies them (theme, thumbnail
size, and the engine for model, device and number format).

The caption-match weight is the library's own setting (kept in its catalog, shared with `vsearch config`), not a
preference: ``set_caption_weight(w)`` shows it (None while the library is not open: the field is disabled) and
``caption_weight()`` reads it back; the window stores it through the engine.

The lists of models offered come from the caller (the installed ones, from the engine); any hub id can be typed,
and "Choose Folder…" picks a local checkpoint folder. The data folder is shown read-only: it is chosen with
``--data-dir`` or ``VSEARCH_DATA_DIR``, not here; its button reveals it in the file manager.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from vsearch_app.core.types import DEFAULT_CAPTION_WEIGHT, MAX_CAPTION_WEIGHT
from vsearch_app.errors import VSearchError
from vsearch_app.gui import desktop, icons
from vsearch_app.gui.settings_model import (
    COLOR_SCHEMES,
    DEVICES,
    DTYPES,
    MAX_RESULT_LIMIT,
    THUMBNAIL_SIZES,
    Preferences,
    PreferencesStore,
)
from vsearch_app.settings import DEFAULT_MODEL

DEVICE_LABELS = {"auto": "Automatic", "cpu": "CPU", "cuda": "NVIDIA GPU (CUDA)", "mps": "Apple GPU (Metal)"}
DTYPE_LABELS = {"auto": "Automatic", "float32": "float32 (exact, slower)", "bfloat16": "bfloat16 (fast on recent CPUs)",
                "float16": "float16 (GPUs)"}
SCHEME_LABELS = {"system": "Same as the system", "light": "Light", "dark": "Dark"}
ENGINE_NOTE = "Model, device and number format changes take effect when VSearch next starts."
THUMBNAIL_STEP = 16
CAPTION_WEIGHT_NOTE = ("How far up the results a photo moves when its stored caption contains the words you search "
                       "for. 1: a caption with all your words puts its photo first, one with some of them part of "
                       "the way; 2 and more: fewer words are enough; Off: captions do not count. Saved with this "
                       "library.")

Reveal = Callable[[Path], None]


class SettingsDialog(QDialog):
    """See the module docstring."""

    def __init__(self, prefs: Preferences | None = None, *, data_dir: Path, search_models: Sequence[str] = (),
                 caption_models: Sequence[str] = (), engine_note: str = ENGINE_NOTE, reveal: Reveal | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("VSearch Settings")
        self.setWindowIcon(icons.app_icon())
        self.setMinimumWidth(560)
        self._reveal = reveal or desktop.reveal_in_file_manager
        self._data_dir = Path(data_dir)

        # Models
        self.search_model = _model_combo(search_models, "Automatic: the library's own model")
        self.search_model.setToolTip(f"Leave empty to use the model the library was indexed with (at first, "
                                     f"{DEFAULT_MODEL}).")
        self.caption_model = _model_combo(caption_models, "")
        self.device = _choice_combo(DEVICES, DEVICE_LABELS)
        self.dtype = _choice_combo(DTYPES, DTYPE_LABELS)
        models = QFormLayout()
        models.addRow("Search model:", self._with_folder_button(self.search_model, "search"))
        models.addRow("Caption model:", self._with_folder_button(self.caption_model, "caption"))
        models.addRow("Run on:", self.device)
        models.addRow("Number format:", self.dtype)
        note = _secondary_label(engine_note, self)
        models.addRow(note)
        self._model_error = _secondary_label("", self)
        self._model_error.hide()
        models.addRow(self._model_error)

        # Display
        self.thumbnail_size = QSlider(Qt.Orientation.Horizontal, self)
        self.thumbnail_size.setRange(*THUMBNAIL_SIZES)
        self.thumbnail_size.setSingleStep(THUMBNAIL_STEP)
        self.thumbnail_size.setPageStep(THUMBNAIL_STEP * 2)
        self._thumbnail_label = QLabel(self)
        self._thumbnail_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("000 px") + 4)
        self.thumbnail_size.valueChanged.connect(self._on_thumbnail_size)
        size_row = QHBoxLayout()
        size_row.addWidget(self.thumbnail_size, 1)
        size_row.addWidget(self._thumbnail_label)
        self.result_limit = QSpinBox(self)
        self.result_limit.setRange(0, MAX_RESULT_LIMIT)
        self.result_limit.setSingleStep(100)
        self.result_limit.setSpecialValueText("All matches")
        self.result_limit.setGroupSeparatorShown(True)
        self.color_scheme = _choice_combo(COLOR_SCHEMES, SCHEME_LABELS)
        display = QFormLayout()
        display.addRow("Thumbnail size:", size_row)
        display.addRow("Show at most:", self.result_limit)
        display.addRow("Appearance:", self.color_scheme)

        # Search
        self.caption_weight_box = QDoubleSpinBox(self)
        self.caption_weight_box.setRange(0.0, MAX_CAPTION_WEIGHT)
        self.caption_weight_box.setSingleStep(0.5)
        self.caption_weight_box.setDecimals(1)
        self.caption_weight_box.setSpecialValueText("Off")
        self.caption_weight_box.setAccessibleName("Caption match weight")
        self._caption_note = _secondary_label("", self)
        search = QFormLayout()
        search.addRow("Caption matches:", self.caption_weight_box)
        search.addRow(self._caption_note)

        # Library
        self.data_folder = QLineEdit(str(self._data_dir), self)
        self.data_folder.setReadOnly(True)
        self.data_folder.setCursorPosition(0)
        reveal_button = QPushButton(icons.icon("reveal", QPalette.ColorRole.ButtonText), "Show", self)
        reveal_button.setAutoDefault(False)
        reveal_button.clicked.connect(self.reveal_data_folder)
        self.reveal_button = reveal_button
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.data_folder, 1)
        folder_row.addWidget(reveal_button)
        library = QFormLayout()
        library.addRow("Data folder:", folder_row)
        library.addRow(_secondary_label("The index and thumbnails live here. Start VSearch with --data-dir (or set "
                                        "VSEARCH_DATA_DIR) to use another one.", self))
        self._library_error = _secondary_label("", self)
        self._library_error.hide()
        library.addRow(self._library_error)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore_defaults)
        self.buttons = buttons

        forms = (models, display, search, library)
        for combo in (self.device, self.dtype, self.color_scheme):
            _fixed_width(combo, 260)
        _fixed_width(self.result_limit, 160)
        _fixed_width(self.caption_weight_box, 160)
        _align_label_columns(forms)
        column = QVBoxLayout(self)
        column.setSpacing(12)
        for title, form in zip(("Models", "Display", "Search", "Library"), forms, strict=True):
            column.addWidget(_group(title, form, self))
        column.addStretch(1)
        column.addWidget(buttons)
        self.set_preferences(prefs or Preferences())
        self.set_caption_weight(None)

    # --- data in and out -----------------------------------------------------------------------------------------

    def set_preferences(self, prefs: Preferences) -> None:
        self.search_model.setCurrentText(prefs.search_model or "")
        self.caption_model.setCurrentText(prefs.caption_model)
        _select(self.device, prefs.device)
        _select(self.dtype, prefs.dtype)
        self.thumbnail_size.setValue(prefs.thumbnail_size)
        self._on_thumbnail_size(self.thumbnail_size.value())
        self.result_limit.setValue(prefs.result_limit)
        _select(self.color_scheme, prefs.color_scheme)

    def preferences(self) -> Preferences:
        """The choices in the widgets. Raises InvalidArgumentError for an empty caption model."""
        return Preferences(
            search_model=self.search_model.currentText().strip() or None,
            caption_model=self.caption_model.currentText().strip(),
            device=self.device.currentData(),
            dtype=self.dtype.currentData(),
            thumbnail_size=self.thumbnail_size.value(),
            result_limit=self.result_limit.value(),
            color_scheme=self.color_scheme.currentData(),
        )

    def set_caption_weight(self, weight: float | None) -> None:
        """Show the library's caption weight; None: not known (the library is not open yet), so it cannot change."""
        known = weight is not None
        self.caption_weight_box.setEnabled(known)
        self.caption_weight_box.setValue(weight if known else DEFAULT_CAPTION_WEIGHT)
        self._caption_note.setText(CAPTION_WEIGHT_NOTE if known else "Available once the library is open.")

    def caption_weight(self) -> float | None:
        """The caption weight in the field (None when it was not known)."""
        return self.caption_weight_box.value() if self.caption_weight_box.isEnabled() else None

    # --- actions -------------------------------------------------------------------------------------------------

    def accept(self) -> None:
        try:
            self.preferences()
        except VSearchError as exc:  # stay open and say what to fix
            self._model_error.setText(f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
            self._model_error.show()
            return
        super().accept()

    def restore_defaults(self) -> None:
        self.set_preferences(Preferences())
        if self.caption_weight_box.isEnabled():
            self.caption_weight_box.setValue(DEFAULT_CAPTION_WEIGHT)

    def reveal_data_folder(self) -> None:
        try:
            self._reveal(self._data_dir)
        except VSearchError as exc:
            self._library_error.setText(str(exc))
            self._library_error.show()

    def choose_model_folder(self, which: str) -> None:
        combo = self.search_model if which == "search" else self.caption_model
        current = Path(combo.currentText()).expanduser()
        start = str(current) if combo.currentText() and current.is_dir() else str(Path.home())
        chosen = QFileDialog.getExistingDirectory(self, f"Choose a {which} model folder", start)
        if chosen:
            combo.setCurrentText(chosen)

    # --- helpers -------------------------------------------------------------------------------------------------

    def _with_folder_button(self, combo: QComboBox, which: str) -> QHBoxLayout:
        button = QPushButton("Choose Folder…", self)
        button.setAutoDefault(False)
        button.setToolTip(f"Use a {which} model folder on this computer (for example one copied from another)")
        button.clicked.connect(lambda: self.choose_model_folder(which))
        setattr(self, f"{which}_folder_button", button)
        row = QHBoxLayout()
        row.addWidget(combo, 1)
        row.addWidget(button)
        return row

    def _on_thumbnail_size(self, value: int) -> None:
        snapped = THUMBNAIL_SIZES[0] + round((value - THUMBNAIL_SIZES[0]) / THUMBNAIL_STEP) * THUMBNAIL_STEP
        snapped = min(max(snapped, THUMBNAIL_SIZES[0]), THUMBNAIL_SIZES[1])
        if snapped != value:
            self.thumbnail_size.setValue(snapped)  # re-enters with the snapped value
            return
        self._thumbnail_label.setText(f"{value} px")


def edit_preferences(parent: QWidget | None, store: PreferencesStore, *, data_dir: Path,
                     search_models: Sequence[str] = (), caption_models: Sequence[str] = (),
                     reveal: Reveal | None = None) -> Preferences | None:
    """Show the saved preferences; on OK save and return the new ones, on Cancel return None."""
    dialog = SettingsDialog(store.load(), data_dir=data_dir, search_models=search_models,
                            caption_models=caption_models, reveal=reveal, parent=parent)
    try:
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        prefs = dialog.preferences()
        store.save(prefs)
        return prefs
    finally:
        dialog.deleteLater()


def _model_combo(options: Sequence[str], placeholder: str) -> QComboBox:
    combo = QComboBox()
    combo.setEditable(True)
    combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
    combo.addItems(list(dict.fromkeys(options)))
    combo.lineEdit().setPlaceholderText(placeholder)
    combo.setMinimumContentsLength(28)
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    return combo


def _choice_combo(values: Sequence[str], labels: dict[str, str]) -> QComboBox:
    combo = QComboBox()
    for value in values:
        combo.addItem(labels.get(value, value), value)
    return combo


def _select(combo: QComboBox, value: str) -> None:
    index = combo.findData(value)
    combo.setCurrentIndex(max(index, 0))


def _secondary_label(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    label.setWordWrap(True)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


def _fixed_width(widget: QWidget, width: int) -> None:
    widget.setFixedWidth(width)
    widget.setSizePolicy(QSizePolicy.Policy.Fixed, widget.sizePolicy().verticalPolicy())


def _align_label_columns(forms: Sequence[QFormLayout]) -> None:
    """One label column width for all the groups, so their fields line up as one form."""
    labels = [form.itemAt(row, QFormLayout.ItemRole.LabelRole).widget()
              for form in forms for row in range(form.rowCount())
              if form.itemAt(row, QFormLayout.ItemRole.LabelRole) is not None]
    width = max((label.sizeHint().width() for label in labels), default=0)
    for label in labels:
        label.setMinimumWidth(width)
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


def _group(title: str, form: QFormLayout, parent: QWidget) -> QGroupBox:
    box = QGroupBox(title, parent)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    box.setLayout(form)
    return box
