"""What the results area shows when there are no results to show, and what to do about it.

One page for a QStackedWidget (the window flips between it and the results grid): a picture, a headline, a line
of detail and at most one button. The states:

- ``show_no_folders()``: "Add a photo folder to start", one big button -> ``addFolderRequested``.
- ``show_loading_model()``: "Loading the search model…" with a busy bar.
- ``show_indexing(done, total)``: "Indexing 1,200 / 5,000" - search already works.
- ``show_ready(indexed)``: the folders are indexed and the query is empty: say what to type.
- ``show_no_matches(threshold)``: "No matches above the threshold".
- ``show_model_missing(model)``: the search model is not on this computer; the button -> ``modelRequested`` (the
  window opens the first-run dialog, which holds the download).

The window also shows pages of its own through ``show_message(state, headline, detail, button=...)`` (opening
the library, searching, a problem with "Try Again"); any button emits ``actionRequested(state)`` too.

``state`` names the state shown (one of ``STATES``, or the window's own), for the window's logic and for tests.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QFont, QIcon, QPalette, QResizeEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from vsearch_app.gui import formatting, icons

STATES = ("no_folders", "loading_model", "indexing", "ready", "no_matches", "model_missing")

_PICTURE_SIDE = 96
_TEXT_WIDTH = 440
_MARGIN = 24


class EmptyState(QWidget):
    """See the module docstring."""

    addFolderRequested = Signal()
    modelRequested = Signal()
    actionRequested = Signal(str)  # the state whose button was clicked (every button)

    def __init__(self, parent: QWidget | None = None) -> None:
        self._picture: QLabel | None = None  # changeEvent can run before the widgets exist
        super().__init__(parent)
        self._state = ""
        self._picture_icon = QIcon()
        self._button_icon = "add-folder"
        self.setBackgroundRole(QPalette.ColorRole.Base)
        self.setAutoFillBackground(True)

        self._picture = QLabel(self)
        self._picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._picture.setFixedSize(_PICTURE_SIDE, _PICTURE_SIDE)

        self._headline = QLabel(self)
        font = self._headline.font()
        if font.pointSizeF() > 0:
            font.setPointSizeF(font.pointSizeF() * 1.45)
        font.setWeight(QFont.Weight.DemiBold)
        self._headline.setFont(font)
        self._headline.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._headline.setWordWrap(True)

        self._detail = QLabel(self)
        self._detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._detail.setWordWrap(True)
        self._detail.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self._detail.setTextFormat(Qt.TextFormat.PlainText)

        self._bar = QProgressBar(self)
        self._bar.setTextVisible(False)
        self._bar.setFixedSize(240, 6)

        self._button = QPushButton(self)
        self._button.setDefault(True)
        self._button.setIconSize(QSize(18, 18))
        self._button.setMinimumHeight(40)
        self._button.setMinimumWidth(200)
        button_font = self._button.font()
        if button_font.pointSizeF() > 0:
            button_font.setPointSizeF(button_font.pointSizeF() * 1.1)
        self._button.setFont(button_font)
        self._button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self._button.clicked.connect(self._on_button)

        self._hint = QLabel(self)
        self._hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        # The text sits in a column of at most _TEXT_WIDTH, centred: wrapped labels need a definite width to wrap to.
        self._content = QWidget(self)
        column = QVBoxLayout(self._content)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self._picture, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addSpacing(18)
        column.addWidget(self._headline)
        column.addSpacing(8)
        column.addWidget(self._detail)
        column.addSpacing(20)
        column.addWidget(self._bar, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addWidget(self._button, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addSpacing(8)
        column.addWidget(self._hint, 0, Qt.AlignmentFlag.AlignHCenter)

        centred = QHBoxLayout()
        centred.addStretch(1)
        centred.addWidget(self._content)
        centred.addStretch(1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(_MARGIN, _MARGIN, _MARGIN, _MARGIN)
        outer.addStretch(3)
        outer.addLayout(centred)
        outer.addStretch(4)
        self._fit_content()
        self.show_no_folders()

    # --- states --------------------------------------------------------------------------------------------------

    def show_no_folders(self, shortcut: str | None = None) -> None:
        """``shortcut``: the Add Folder action's key, shown under the button (e.g. "Ctrl+O")."""
        self._show("no_folders", icons.app_icon(), "Add a photo folder to start",
                   "VSearch finds your photos by what they show. Point it at a folder; it keeps watching it for new "
                   "photos. Nothing leaves this computer.",
                   button=("add-folder", "Add a Photo Folder…"),
                   hint=f"or press {shortcut}" if shortcut else "")

    def show_loading_model(self, model: str | None = None) -> None:
        self._show("loading_model", icons.app_icon(), "Loading the search model…",
                   f"Getting {model} ready. This takes a few seconds." if model else "This takes a few seconds.",
                   bar=(0, 0))

    def show_indexing(self, done: int, total: int) -> None:
        self._show("indexing", icons.app_icon(),
                   f"Indexing {formatting.count(done)} / {formatting.count(total)}",
                   "Search already works: type what you are looking for above. Results get better as more photos "
                   "are indexed.",
                   bar=(min(done, total), max(total, 1)))

    def show_ready(self, indexed: int) -> None:
        self._show("ready", icons.app_icon(), f"Search {formatting.plural(indexed, 'photo')}",
                   "Describe what you are looking for, like “kids on a red bike” or “sunset over water”. "
                   "Drop a photo here to find similar ones.")

    def show_no_matches(self, threshold: float | None = None) -> None:
        below = f" (a score of at least {threshold:.2f})" if threshold is not None else ""
        self._show("no_matches", icons.icon("search", QPalette.ColorRole.PlaceholderText),
                   "No matches above the threshold",
                   f"No photo matches this search closely enough{below}. Try other words, fewer excluded terms, or "
                   "a photo as an example.")

    def show_model_missing(self, model: str | None = None, size_bytes: int | None = None) -> None:
        size = f" ({formatting.size(size_bytes)})" if size_bytes else ""
        name = f"The search model{f' {model}' if model else ''}{size}"
        self._show("model_missing", icons.icon("warning", QPalette.ColorRole.PlaceholderText),
                   "The search model is missing",
                   f"{name} is not on this computer yet. VSearch needs it to understand photos and words; it is "
                   "downloaded once and then works offline.",
                   button=("download", "Get the Search Model…"))

    def show_message(self, state: str, headline: str, detail: str = "", *, button: tuple[str, str] | None = None,
                     busy: bool = False, warning: bool = False) -> None:
        """A page of the window's own: ``button`` is (icon name, text); ``busy`` adds the busy bar."""
        picture = icons.icon("warning", QPalette.ColorRole.PlaceholderText) if warning else icons.app_icon()
        self._show(state, picture, headline, detail, button=button, bar=(0, 0) if busy else None)

    # --- state, for the window and tests -------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    @property
    def headline(self) -> str:
        return self._headline.text()

    @property
    def detail(self) -> str:
        return self._detail.text()

    @property
    def button(self) -> QPushButton:
        return self._button

    @property
    def progress_bar(self) -> QProgressBar:
        return self._bar

    # --- internals -----------------------------------------------------------------------------------------------

    def _show(self, state: str, picture: QIcon, headline: str, detail: str, *,
              button: tuple[str, str] | None = None, bar: tuple[int, int] | None = None, hint: str = "") -> None:
        self._state = state
        self._picture_icon = picture
        self._render_picture()
        self._headline.setText(headline)
        self._detail.setText(detail)
        self._bar.setVisible(bar is not None)
        if bar is not None:
            self._bar.setRange(0, bar[1])
            self._bar.setValue(bar[0])
        self._button.setVisible(button is not None)
        if button is not None:
            self._button_icon = button[0]
            self._style_button()
            self._button.setText(f"  {button[1]}")
        self._hint.setVisible(bool(hint))
        self._hint.setText(hint)

    def _style_button(self) -> None:
        # The bar's groove is drawn in Base, the page's own colour: give it Midlight so the empty part shows.
        groove = self.palette()
        groove.setColor(QPalette.ColorRole.Base, groove.color(QPalette.ColorRole.Midlight))
        self._bar.setPalette(groove)
        # The one thing to do here, so it wears the accent colour (palette roles, so it follows light and dark).
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Button, palette.color(QPalette.ColorRole.Highlight))
        palette.setColor(QPalette.ColorRole.ButtonText, palette.color(QPalette.ColorRole.HighlightedText))
        self._button.setPalette(palette)
        self._button.setIcon(icons.icon(self._button_icon, QPalette.ColorRole.HighlightedText))

    def _render_picture(self) -> None:
        # A pixmap at the screen's pixel ratio, re-rendered when the palette changes (themed icons change colour).
        side = _PICTURE_SIDE if self._state in ("no_folders", "loading_model", "indexing", "ready") else 64
        self._picture.setPixmap(self._picture_icon.pixmap(QSize(side, side), self.devicePixelRatioF()))

    def _on_button(self) -> None:
        if self._state == "no_folders":
            self.addFolderRequested.emit()
        elif self._state == "model_missing":
            self.modelRequested.emit()
        self.actionRequested.emit(self._state)

    def _fit_content(self) -> None:
        self._content.setFixedWidth(max(120, min(_TEXT_WIDTH, self.width() - 2 * _MARGIN)))

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._fit_content()
        super().resizeEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        if self._picture is not None and event.type() in (QEvent.Type.PaletteChange,
                                                          QEvent.Type.ApplicationPaletteChange):
            self._render_picture()
            self._style_button()
        super().changeEvent(event)
