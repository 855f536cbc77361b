"""One query term shown as a chip: a +/- toggle, the text (or the photo's thumbnail), the weight, and a close button.

The chip is a view: it never changes the term itself. Every edit is a request signal (carrying the chip, so the
query bar knows which term) that the bar turns into a QueryModel call; the model's ``changed`` then updates the
chip through ``set_term``.

Mouse: click the sign to include/exclude, scroll over the chip to change the weight in 0.1 steps, click the weight
to type one, click x to remove; right-click for the same actions in a menu. Keyboard (a focused chip is the
"selected" one): Backspace/Delete remove, Left/Right move, Up/Down change the weight, Space toggles the sign,
F2 edits the weight, Esc returns to the text box, typing goes on in the text box.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QFocusEvent,
    QKeyEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QWheelEvent,
)
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QMenu, QToolButton, QWidget

from vsearch_app.core.types import QueryTerm
from vsearch_app.gui import icons
from vsearch_app.gui.models.query import MAX_WEIGHT, MIN_WEIGHT, WEIGHT_STEP, clamp_weight

# (path, edge length in device pixels) -> the photo's thumbnail, or None while it is not ready yet.
ThumbnailProvider = Callable[[str, int], QPixmap | None]

THUMB_SIZE = 24  # logical px
CHIP_HEIGHT = THUMB_SIZE + 4
LABEL_MAX_WIDTH = 220  # longer text is elided; the tooltip has all of it
IMAGE_NAME_MAX_WIDTH = 120
_WHEEL_NOTCH = 120  # QWheelEvent.angleDelta units per notch


def _pictured(term: QueryTerm) -> bool:
    """Terms shown with a thumbnail: an example image file, or an indexed photo (Find similar)."""
    return term.is_image or term.is_photo


def blend(a: QColor, b: QColor, amount: float) -> QColor:
    """``a`` moved ``amount`` (0..1) of the way towards ``b``; chips derive their tints from palette roles."""
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * amount,
        a.greenF() + (b.greenF() - a.greenF()) * amount,
        a.blueF() + (b.blueF() - a.blueF()) * amount,
        1.0,
    )


def format_weight(magnitude: float) -> str:
    return f"×{magnitude:g}"


class Chip(QWidget):
    signToggleRequested = Signal(object)  # the chip
    weightChangeRequested = Signal(object, float)  # the chip, the new magnitude
    removeRequested = Signal(object)
    navigateRequested = Signal(object, int)  # the chip, -1 left / +1 right / 0 back to the text box
    textTyped = Signal(object, str)  # printable keys typed while the chip has focus

    def __init__(self, term: QueryTerm, thumbnail_provider: ThumbnailProvider | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._term = term
        self._provider = thumbnail_provider
        self._has_thumbnail = False
        self._thumb_ratio = 0.0  # the devicePixelRatio the shown thumbnail (or placeholder) was made for
        self._hovered = False
        self._wheel_rest = 0  # high-resolution wheels send fractions of a notch
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.setCursor(Qt.CursorShape.ArrowCursor)  # not the text box's I-beam that the bar uses

        self._sign = self._tool_button()
        self._sign.clicked.connect(lambda: self.signToggleRequested.emit(self))
        self._thumb = QLabel(self)
        self._thumb.setFixedSize(THUMB_SIZE, THUMB_SIZE)
        self._thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._label = QLabel(self)
        self._weight = self._tool_button()
        self._weight.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self._weight.clicked.connect(self.edit_weight)
        self._weight_editor = _WeightEditor(self)
        self._weight_editor.committed.connect(self._on_weight_typed)
        self._weight_editor.hide()
        self._close = self._tool_button()
        self._close.setIcon(icons.icon("close"))
        self._close.setIconSize(QSize(12, 12))
        self._close.setToolTip("Remove")
        self._close.setAccessibleName("Remove term")
        self._close.clicked.connect(lambda: self.removeRequested.emit(self))

        row = QHBoxLayout(self)
        row.setContentsMargins(3, 2, 4, 2)
        row.setSpacing(3)
        for widget in (self._sign, self._thumb, self._label, self._weight, self._weight_editor, self._close):
            row.addWidget(widget)
        self.set_term(term)

    # --- state ----------------------------------------------------------------------------------------------

    @property
    def term(self) -> QueryTerm:
        return self._term

    def set_term(self, term: QueryTerm) -> None:
        """Show ``term``; cheap when little changed (the bar calls it on every model change)."""
        previous, self._term = self._term, term
        excluded, magnitude = term.weight < 0, abs(term.weight)
        self._sign.setIcon(icons.icon("minus" if excluded else "plus"))
        self._sign.setIconSize(QSize(12, 12))
        self._sign.setToolTip("Excluded: results avoid this. Click to include" if excluded
                              else "Included: results match this. Click to exclude")
        self._sign.setAccessibleName("Include term" if excluded else "Exclude term")
        if term.is_photo:  # Find similar: the photo's thumbnail says which one
            self._label.setText("Similar photos")
            self._thumb.show()
            if previous.value != term.value or not previous.is_photo or not self._has_thumbnail:
                self.refresh_thumbnail()
        elif term.is_image:
            name = os.path.basename(term.value) or term.value
            self._label.setText(self.fontMetrics().elidedText(name, Qt.TextElideMode.ElideMiddle,
                                                              IMAGE_NAME_MAX_WIDTH))
            self._thumb.show()
            if previous.value != term.value or not previous.is_image or not self._has_thumbnail:
                self.refresh_thumbnail()
        else:
            self._label.setText(self.fontMetrics().elidedText(term.value, Qt.TextElideMode.ElideRight,
                                                              LABEL_MAX_WIDTH))
            self._thumb.hide()
            self._has_thumbnail = False
        self._weight.setText(format_weight(magnitude))
        self._weight.setToolTip("Weight: how strongly this term counts. Click to type one, or scroll over the term")
        self._weight.setAccessibleName(f"Weight {magnitude:g}, click to edit")
        self._weight.setVisible(magnitude != 1.0 and not self._weight_editor.isVisible())
        what = ("photos like this one" if term.is_photo else f"photo {term.value}" if term.is_image
                else term.value)
        self.setToolTip(f"{'Excluded' if excluded else 'Included'}: {what}" +
                        (f"\nWeight {magnitude:g}" if magnitude != 1.0 else "") +
                        "\nScroll to change the weight; right-click for more")
        self.setAccessibleName(f"{'Excluded' if excluded else 'Included'} "
                               f"{'photo' if _pictured(term) else 'text'} term: {what}, weight {magnitude:g}")
        self.update()

    def refresh_thumbnail(self) -> None:
        """Ask the provider again (the bar calls this when a thumbnail has been loaded)."""
        if not _pictured(self._term):
            return
        ratio = self._thumb_ratio = self.devicePixelRatioF()
        pixmap = self._provider(self._term.value, round(THUMB_SIZE * ratio)) if self._provider else None
        self._has_thumbnail = pixmap is not None and not pixmap.isNull()
        if self._has_thumbnail:
            self._thumb.setPixmap(_rounded_square(pixmap, THUMB_SIZE, ratio))
        else:
            self._thumb.setPixmap(icons.icon("image").pixmap(QSize(18, 18), ratio))

    @property
    def has_thumbnail(self) -> bool:
        return self._has_thumbnail

    def edit_weight(self) -> None:
        """Show the inline weight editor in place of the weight (focused, value selected)."""
        self._weight.hide()
        self._weight_editor.setValue(abs(self._term.weight))
        self._weight_editor.show()
        self._weight_editor.setFocus(Qt.FocusReason.OtherFocusReason)
        self._weight_editor.selectAll()

    def _on_weight_typed(self, value: float | None, by_key: bool) -> None:
        self._weight_editor.hide()
        self._weight.setVisible(abs(self._term.weight) != 1.0)
        if by_key:  # Enter/Esc: the selection returns to this chip; a click elsewhere keeps its own focus
            self.setFocus(Qt.FocusReason.OtherFocusReason)
        if value is not None and clamp_weight(value) != abs(self._term.weight):
            self.weightChangeRequested.emit(self, clamp_weight(value))

    def _step_weight(self, steps: int) -> None:
        new = clamp_weight(abs(self._term.weight) + steps * WEIGHT_STEP)
        if new != abs(self._term.weight):
            self.weightChangeRequested.emit(self, new)

    # --- input ----------------------------------------------------------------------------------------------

    def wheelEvent(self, event: QWheelEvent) -> None:
        self._wheel_rest += event.angleDelta().y()
        steps = int(self._wheel_rest / _WHEEL_NOTCH)
        if steps:
            self._wheel_rest -= steps * _WHEEL_NOTCH
            self._step_weight(steps)
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete):
            self.removeRequested.emit(self)
        elif key == Qt.Key.Key_Left:
            self.navigateRequested.emit(self, -1)
        elif key == Qt.Key.Key_Right:
            self.navigateRequested.emit(self, 1)
        elif key == Qt.Key.Key_Escape:
            self.navigateRequested.emit(self, 0)
        elif key == Qt.Key.Key_Up:
            self._step_weight(1)
        elif key == Qt.Key.Key_Down:
            self._step_weight(-1)
        elif key == Qt.Key.Key_Space:
            self.signToggleRequested.emit(self)
        elif key == Qt.Key.Key_F2:
            self.edit_weight()
        elif event.text() and event.text().isprintable():
            self.textTyped.emit(self, event.text())
        else:
            super().keyPressEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # one menu per right-click; none pile up
        excluded = self._term.weight < 0
        menu.addAction(icons.icon("plus" if excluded else "minus"), "Include" if excluded else "Exclude",
                       lambda: self.signToggleRequested.emit(self))
        menu.addSeparator()
        magnitude = abs(self._term.weight)
        menu.addAction("Increase weight", lambda: self._step_weight(1)).setEnabled(magnitude < MAX_WEIGHT)
        menu.addAction("Decrease weight", lambda: self._step_weight(-1)).setEnabled(magnitude > MIN_WEIGHT)
        menu.addAction("Set weight…", self.edit_weight)
        menu.addAction("Reset weight", lambda: self.weightChangeRequested.emit(self, 1.0)).setEnabled(magnitude != 1)
        menu.addSeparator()
        menu.addAction(icons.icon("close"), "Remove", lambda: self.removeRequested.emit(self))
        menu.popup(event.globalPos())

    def event(self, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.HoverEnter, QEvent.Type.HoverLeave):
            self._hovered = event.type() == QEvent.Type.HoverEnter
            self.update()
        elif event.type() == QEvent.Type.PaletteChange and _pictured(self._term) and not self._has_thumbnail:
            self.refresh_thumbnail()  # the placeholder icon is a pixmap in the old colour
        elif (event.type() in (QEvent.Type.Show, QEvent.Type.DevicePixelRatioChange) and _pictured(self._term)
              and self.devicePixelRatioF() != self._thumb_ratio):
            self.refresh_thumbnail()  # made before the chip knew its screen, or moved to a denser one
        return super().event(event)

    def focusInEvent(self, event: QFocusEvent) -> None:
        super().focusInEvent(event)
        self.update()

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        self.update()

    # --- painting -------------------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.WindowText)
        accent = palette.color(QPalette.ColorRole.Highlight)
        selected = self.hasFocus() or self._weight_editor.hasFocus()
        if self._term.weight < 0:
            fill = blend(base, text, 0.10 if self._hovered else 0.06)
            border = blend(base, text, 0.35)
        else:
            fill = blend(base, accent, 0.22 if self._hovered else 0.15)
            border = blend(base, accent, 0.50)
        if selected:
            fill = blend(base, accent, 0.30)
            border = accent
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        width = 2.0 if selected else 1.0
        rect = QRectF(self.rect()).adjusted(width / 2, width / 2, -width / 2, -width / 2)
        radius = rect.height() / 2
        pen = QPen(border, width)
        if self._term.weight < 0 and not selected:
            pen.setStyle(Qt.PenStyle.DashLine)  # an excluded term reads as "not in the result" even in greyscale
        painter.setPen(pen)
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, radius, radius)

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        return QSize(hint.width(), max(hint.height(), CHIP_HEIGHT))

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def _tool_button(self) -> QToolButton:
        button = QToolButton(self)
        button.setAutoRaise(True)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the chip as a whole takes keyboard focus
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        return button


class _WeightEditor(QDoubleSpinBox):
    """The inline weight field: Enter or leaving it commits, Esc cancels (``committed`` gets None)."""

    committed = Signal(object, bool)  # the value (None when cancelled), whether a key (not focus loss) ended it

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setRange(MIN_WEIGHT, MAX_WEIGHT)
        self.setSingleStep(WEIGHT_STEP)
        self.setDecimals(2)
        self.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)
        self.setFrame(False)
        self.setAccessibleName("Weight")
        self.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.setFixedWidth(self.fontMetrics().horizontalAdvance("10.00") + 8)
        self._done = False
        self.installEventFilter(self)

    def showEvent(self, event: QEvent) -> None:
        self._done = False
        super().showEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress:
            key = event.key()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._finish(cancelled=False, by_key=True)
                return True
            if key == Qt.Key.Key_Escape:
                self._finish(cancelled=True, by_key=True)
                return True
        elif event.type() == QEvent.Type.FocusOut and self.isVisible():
            self._finish(cancelled=False, by_key=False)
        return super().eventFilter(watched, event)

    def _finish(self, *, cancelled: bool, by_key: bool) -> None:
        if not self._done:
            self._done = True
            self.interpretText()
            self.committed.emit(None if cancelled else self.value(), by_key)


def _rounded_square(pixmap: QPixmap, size: int, ratio: float) -> QPixmap:
    """``pixmap`` centre-cropped to a square, scaled to ``size`` logical px at ``ratio``, with rounded corners."""
    side = min(pixmap.width(), pixmap.height())
    square = pixmap.copy((pixmap.width() - side) // 2, (pixmap.height() - side) // 2, side, side)
    device = max(1, round(size * ratio))
    scaled = square.scaled(device, device, Qt.AspectRatioMode.IgnoreAspectRatio,
                           Qt.TransformationMode.SmoothTransformation)
    result = QPixmap(device, device)
    result.fill(Qt.GlobalColor.transparent)
    painter = QPainter(result)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    clip = QPainterPath()
    clip.addRoundedRect(QRectF(0, 0, device, device), 4 * ratio, 4 * ratio)
    painter.setClipPath(clip)
    painter.drawPixmap(QPointF(0, 0), scaled)
    painter.end()
    result.setDevicePixelRatio(ratio)
    return result

