"""The search field: the query's terms as chips, followed by a text box for more, wrapping onto more lines.

Typing plain language (or the CLI's query syntax: ``+ beach - people``, ``0.5:sunset``, quoted text, photo paths)
searches as you type: about 250 ms after typing stops the text is parsed and ``queryChanged`` carries the chips'
terms plus the typed ones, while the text stays editable in the box. Enter turns the typed terms into chips.
``queryChanged`` fires once per real change of the whole query, never twice for the same terms.

The text is parsed by the engine (``core.service.parse_query_terms``), continuing the chips' query, so
"- people" typed after a "beach" chip is an exclusion rather than a query with only negative terms. The service
is imported on first use, not at import time: it brings the catalog, hnswlib and numpy with it (not torch), and
the window's first paint does not wait for them.

Keyboard: Backspace in an empty box selects the last chip and a second Backspace removes it; Left at the start of
the box and Left/Right between chips move the selection; Esc clears the typed text, or all chips when there is
none. The chips themselves handle the rest (see chip.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QIcon, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLineEdit,
    QSizePolicy,
    QStyle,
    QStyleOptionFrame,
    QVBoxLayout,
    QWidget,
)

from vsearch_app.core.types import QueryTerm
from vsearch_app.errors import VSearchError
from vsearch_app.gui import icons
from vsearch_app.gui.models.query import QueryModel
from vsearch_app.gui.views.chip import CHIP_HEIGHT, Chip, ThumbnailProvider
from vsearch_app.gui.views.flow_layout import FlowLayout

TYPING_DEBOUNCE_MS = 250
PLACEHOLDER_EMPTY = "Search your photos — e.g. kids on a red bike"
PLACEHOLDER_MORE = "Add more, or - to exclude"
EDIT_MIN_WIDTH = 160

Parser = Callable[[str], list[QueryTerm]]
Formatter = Callable[[Sequence[QueryTerm]], str]


def _service_parser(text: str) -> list[QueryTerm]:
    from vsearch_app.core import service  # lazy: keeps the engine's imports out of the first paint

    return service.parse_query_terms(text)


def _service_formatter(terms: Sequence[QueryTerm]) -> str:
    from vsearch_app.core import service

    return service.format_query(terms)


class QueryBar(QWidget):
    """Chips plus a text box, drawn as one line-edit-like field. Public API: ``model`` (edit the terms there, e.g.
    to add a dropped photo), ``terms()``, ``clear()``, ``focus_text()``, ``on_thumbnail_ready(path)``."""

    queryChanged = Signal(list)  # list[QueryTerm]: the chips' terms plus what is typed and parses
    parseFailed = Signal(str)  # why the typed text is not a query (shown beside the text box too)

    def __init__(self, model: QueryModel | None = None, *, parser: Parser | None = None,
                 formatter: Formatter | None = None, thumbnail_provider: ThumbnailProvider | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model if model is not None else QueryModel(parent=self)
        self._parse = parser or _service_parser
        self._format = formatter or _service_formatter
        self._thumbnails = thumbnail_provider
        self._chips: list[Chip] = []
        self._pending: list[QueryTerm] = []  # parsed typed text, not yet chips
        self._last_emitted: list[QueryTerm] | None = None
        self.setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setBackgroundRole(QPalette.ColorRole.Base)
        self.setCursor(Qt.CursorShape.IBeamCursor)

        self._edit = QLineEdit(self)
        self._edit.setFrame(False)
        self._edit.setMinimumWidth(EDIT_MIN_WIDTH)
        self._edit.setMinimumHeight(CHIP_HEIGHT)  # every line of the field is one chip tall, typed text included
        self._edit.setAccessibleName("Search")
        self._edit.setClearButtonEnabled(False)
        self._edit.installEventFilter(self)
        self._edit.textEdited.connect(self._on_text_edited)
        self._error_action = QAction(icons.icon("warning"), "", self._edit)
        self._edit.addAction(self._error_action, QLineEdit.ActionPosition.TrailingPosition)
        self._error_action.setVisible(False)  # after addAction: the edit shows the actions it is given

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(TYPING_DEBOUNCE_MS)
        self._debounce.timeout.connect(self._preview_typed)

        self._search_icon = _IconWidget(icons.icon("search", QPalette.ColorRole.PlaceholderText), 16, self)
        icon_column = QVBoxLayout()
        icon_column.setContentsMargins(0, (CHIP_HEIGHT - 16) // 2, 0, 0)  # centred on the first line
        icon_column.addWidget(self._search_icon)
        icon_column.addStretch(1)

        self._chip_area = QWidget(self)
        self._flow = FlowLayout(self._chip_area, h_spacing=4, v_spacing=4, stretch_last=True)
        self._flow.setContentsMargins(0, 0, 0, 0)
        self._flow.addWidget(self._edit)

        row = QHBoxLayout(self)
        row.setContentsMargins(8, 3, 6, 3)
        row.setSpacing(6)
        row.addLayout(icon_column)
        row.addWidget(self._chip_area, 1)

        self.model.changed.connect(self._on_model_changed)
        QApplication.instance().focusChanged.connect(self._on_focus_changed)
        self._sync_chips()
        self._update_placeholder()

    # --- public API ---------------------------------------------------------------------------------------------

    @property
    def line_edit(self) -> QLineEdit:
        return self._edit

    @property
    def chips(self) -> list[Chip]:
        return list(self._chips)

    def terms(self) -> list[QueryTerm]:
        """What a search should use now: the chips' terms plus the typed text's, when it parses."""
        return [*self.model.terms, *self._pending]

    def clear(self) -> None:
        self._edit.clear()
        self._pending = []
        self._set_error(None)
        self.model.clear()
        self._emit_if_changed()

    def focus_text(self) -> None:
        self._edit.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def commit_text(self) -> bool:
        """Turn the typed text into chips (what Enter does). False, with ``parseFailed``, when it does not parse."""
        self._debounce.stop()
        if not self._edit.text().strip():
            return True
        try:
            new_terms = self._parse_typed(self._edit.text())
        except VSearchError as exc:
            self._set_error(str(exc))
            return False
        self._pending = []
        self._edit.clear()
        self.model.extend(new_terms)  # changed -> chips and the signal
        self._emit_if_changed()
        return True

    def on_thumbnail_ready(self, path: str) -> None:
        """A thumbnail is now available from the provider for ``path`` (an image term's value, or a photo term's
        file id): show it on its chips."""
        for chip in self._chips:
            if (chip.term.is_image or chip.term.is_photo) and chip.term.value == str(path):
                chip.refresh_thumbnail()

    # --- model -> chips ---------------------------------------------------------------------------------------

    def _on_model_changed(self) -> None:
        self._sync_chips()
        self._update_placeholder()
        self._emit_if_changed()

    def _sync_chips(self) -> None:
        terms = self.model.terms
        focused = next((i for i, chip in enumerate(self._chips) if chip.hasFocus()), None)
        while len(self._chips) > len(terms):
            chip = self._chips.pop()
            self._flow.removeWidget(chip)
            chip.hide()
            chip.deleteLater()
        for i, term in enumerate(terms):
            if i < len(self._chips):
                if self._chips[i].term != term:
                    self._chips[i].set_term(term)
            else:
                self._chips.append(self._new_chip(term))
        if focused is not None and focused >= len(self._chips):
            self._edit.setFocus(Qt.FocusReason.OtherFocusReason)
        self._chip_area.updateGeometry()
        self.updateGeometry()

    def _new_chip(self, term: QueryTerm) -> Chip:
        chip = Chip(term, self._thumbnails, self._chip_area)
        chip.signToggleRequested.connect(self._on_chip_sign)
        chip.weightChangeRequested.connect(self._on_chip_weight)
        chip.removeRequested.connect(self._on_chip_remove)
        chip.navigateRequested.connect(self._on_chip_navigate)
        chip.textTyped.connect(self._on_chip_text)
        self._flow.insertWidget(len(self._chips), chip)
        chip.show()
        return chip

    # --- chip requests -> model ---------------------------------------------------------------------------------

    def _on_chip_sign(self, chip: Chip) -> None:
        self.model.toggle_sign(self._chips.index(chip))

    def _on_chip_weight(self, chip: Chip, magnitude: float) -> None:
        self.model.set_weight(self._chips.index(chip), magnitude)

    def _on_chip_remove(self, chip: Chip) -> None:
        index = self._chips.index(chip)
        had_focus = chip.hasFocus()
        self.model.remove(index)
        if had_focus:
            self._edit.setFocus(Qt.FocusReason.OtherFocusReason)

    def _on_chip_navigate(self, chip: Chip, direction: int) -> None:
        index = self._chips.index(chip) + direction
        if direction == 0 or index >= len(self._chips):
            self._edit.setFocus(Qt.FocusReason.TabFocusReason)
            self._edit.setCursorPosition(0)
        else:
            self._chips[max(0, index)].setFocus(Qt.FocusReason.TabFocusReason)

    def _on_chip_text(self, chip: Chip, text: str) -> None:
        self._edit.setFocus(Qt.FocusReason.OtherFocusReason)
        self._edit.insert(text)
        self._on_text_edited(self._edit.text())

    # --- typing -------------------------------------------------------------------------------------------------

    def _on_text_edited(self, text: str) -> None:
        self._set_error(None)
        self._debounce.start()

    def _preview_typed(self) -> None:
        text = self._edit.text()
        if not text.strip():
            self._pending = []
        else:
            try:
                self._pending = self._parse_typed(text)
            except VSearchError as exc:
                self._set_error(str(exc))
                return  # keep the last good query on screen while the user fixes the text
        self._emit_if_changed()

    def _parse_typed(self, text: str) -> list[QueryTerm]:
        """Parse typed text as the continuation of the chips' query (so a leading "- x" is an exclusion)."""
        chips = self.model.terms
        if chips:
            try:
                prefix = self._format(chips)
            except VSearchError:
                prefix = None  # a chip the syntax cannot write (both quote kinds): parse the text on its own
            if prefix is not None:
                joiner = " " if text.lstrip()[:1] in ("+", "-") else " + "
                whole = self._parse(f"{prefix}{joiner}{text}")
                if whole[:len(chips)] == chips:
                    return whole[len(chips):]
        return self._parse(text)

    def _set_error(self, message: str | None) -> None:
        self._error_action.setVisible(message is not None)
        self._error_action.setToolTip(message or "")
        self._edit.setToolTip(message or "")
        if message is not None:
            self.parseFailed.emit(message)

    def _emit_if_changed(self) -> None:
        terms = self.terms()
        if terms != self._last_emitted:
            self._last_emitted = terms
            self.queryChanged.emit(terms)

    def _update_placeholder(self) -> None:
        self._edit.setPlaceholderText(PLACEHOLDER_MORE if self._chips else PLACEHOLDER_EMPTY)

    # --- keys on the text box -----------------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._edit and event.type() == QEvent.Type.KeyPress and self._on_edit_key(event):
            return True
        return super().eventFilter(watched, event)

    def _on_edit_key(self, event: QKeyEvent) -> bool:
        key = event.key()
        at_start = self._edit.cursorPosition() == 0 and not self._edit.hasSelectedText()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.commit_text()
            return True
        if key == Qt.Key.Key_Escape:
            if self._edit.text():
                self._edit.clear()
                self._debounce.stop()
                self._set_error(None)
                self._pending = []
                self._emit_if_changed()
            elif len(self.model):
                self.clear()
            else:
                return False  # nothing to clear: let the window use Esc (e.g. to stop)
            return True
        if self._chips and at_start and (key == Qt.Key.Key_Left or
                                          (key == Qt.Key.Key_Backspace and not self._edit.text())):
            self._chips[-1].setFocus(Qt.FocusReason.BacktabFocusReason)
            return True
        return False

    # --- looks --------------------------------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:  # a click on empty space goes to the text box
        self._edit.setFocus(Qt.FocusReason.MouseFocusReason)
        super().mousePressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        # Drawn as the style's line edit panel, so the field looks native and shows the focus ring while the
        # text box or any chip has focus.
        option = QStyleOptionFrame()
        option.initFrom(self)
        option.lineWidth = self.style().pixelMetric(QStyle.PixelMetric.PM_DefaultFrameWidth, option, self)
        option.midLineWidth = 0
        option.state |= QStyle.StateFlag.State_Sunken
        if self._has_focus_within():
            option.state |= QStyle.StateFlag.State_HasFocus
        painter = QPainter(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelLineEdit, option, painter, self)

    def _has_focus_within(self) -> bool:
        focus = QApplication.focusWidget()
        return focus is not None and (focus is self or self.isAncestorOf(focus))

    def _on_focus_changed(self, old: QWidget | None, new: QWidget | None) -> None:
        if any(w is not None and (w is self or self.isAncestorOf(w)) for w in (old, new)):
            self.update()


class _IconWidget(QWidget):
    """A fixed-size icon painted straight from the (vector, palette-following) icon on every paint."""

    def __init__(self, icon: QIcon, size: int, parent: QWidget) -> None:
        super().__init__(parent)
        self._icon = icon
        self.setFixedSize(size, size)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        self._icon.paint(painter, self.rect())
