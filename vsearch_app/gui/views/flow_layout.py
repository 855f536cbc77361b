"""A layout that places its items left to right and wraps them onto new lines, like words in a paragraph.

Lines are as tall as their tallest item and items are centred vertically in their line, so 28 px chips and a
shorter text box sit on one baseline. Optionally the last item stretches to fill the rest of its line (the query
bar's text box), wrapping to a new line of its own when less than its minimum width is left.
"""

from __future__ import annotations

from PySide6.QtCore import QMargins, QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QStyle, QWidget, QWidgetItem


class FlowLayout(QLayout):
    def __init__(self, parent: QWidget | None = None, *, h_spacing: int = -1, v_spacing: int = -1,
                 stretch_last: bool = False) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._h_spacing = h_spacing
        self._v_spacing = v_spacing
        self._stretch_last = stretch_last

    # --- QLayout's item bookkeeping ------------------------------------------------------------------------------

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)
        self.invalidate()

    def insertWidget(self, index: int, widget: QWidget) -> None:
        """Insert ``widget`` before position ``index`` (QLayout itself has no insert)."""
        self.addChildWidget(widget)
        self._items.insert(max(0, min(index, len(self._items))), QWidgetItem(widget))
        self.invalidate()

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        if not 0 <= index < len(self._items):
            return None
        item = self._items.pop(index)
        self.invalidate()
        return item

    # --- sizes --------------------------------------------------------------------------------------------------

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._arrange(rect, apply=True)

    def sizeHint(self) -> QSize:
        """Everything on one line: the width the layout would like; heightForWidth answers for narrower ones."""
        items = self._visible_items()
        margins = self.contentsMargins()
        width = sum(item.sizeHint().width() for item in items) + self.horizontal_spacing() * max(0, len(items) - 1)
        height = max((item.sizeHint().height() for item in items), default=0)
        return QSize(width + margins.left() + margins.right(), height + margins.top() + margins.bottom())

    def minimumSize(self) -> QSize:
        size = QSize()
        for item in self._visible_items():
            size = size.expandedTo(item.minimumSize())
        margins = self.contentsMargins()
        return size + QSize(margins.left() + margins.right(), margins.top() + margins.bottom())

    def horizontal_spacing(self) -> int:
        if self._h_spacing >= 0:
            return self._h_spacing
        return self._style_spacing(QStyle.PixelMetric.PM_LayoutHorizontalSpacing)

    def vertical_spacing(self) -> int:
        if self._v_spacing >= 0:
            return self._v_spacing
        return self._style_spacing(QStyle.PixelMetric.PM_LayoutVerticalSpacing)

    # --- placement ----------------------------------------------------------------------------------------------

    def _visible_items(self) -> list[QLayoutItem]:
        return [item for item in self._items if not item.isEmpty()]

    def _arrange(self, rect: QRect, *, apply: bool) -> int:
        """Place the items in ``rect`` (when ``apply``) and return the height they need."""
        margins: QMargins = self.contentsMargins()
        area = rect.marginsRemoved(margins)
        items = self._visible_items()
        h_gap, v_gap = self.horizontal_spacing(), self.vertical_spacing()
        lines: list[list[tuple[QLayoutItem, QSize]]] = [[]]
        x = area.x()
        for i, item in enumerate(items):
            hint = item.sizeHint().expandedTo(item.minimumSize())
            width = min(hint.width(), area.width()) if area.width() > 0 else hint.width()
            if self._stretch_last and i == len(items) - 1:
                width = min(item.minimumSize().width() or hint.width(), max(area.width(), 1))
            if lines[-1] and x + width > area.right() + 1:
                lines.append([])
                x = area.x()
            lines[-1].append((item, QSize(width, hint.height())))
            x += width + h_gap
        y = area.y()
        for line in lines:
            if not line:
                continue
            line_height = max(size.height() for _, size in line)
            if apply:
                x = area.x()
                for i, (item, size) in enumerate(line):
                    width = size.width()
                    is_last = line is lines[-1] and i == len(line) - 1
                    if self._stretch_last and is_last:
                        width = max(width, area.right() + 1 - x)
                    height = size.height()
                    item.setGeometry(QRect(QPoint(x, y + (line_height - height) // 2), QSize(width, height)))
                    x += width + h_gap
            y += line_height + v_gap
        used = y - v_gap - area.y() if any(lines) else 0
        return used + margins.top() + margins.bottom()

    def _style_spacing(self, metric: QStyle.PixelMetric) -> int:
        parent = self.parent()
        spacing = -1
        if isinstance(parent, QWidget):
            spacing = parent.style().pixelMetric(metric, None, parent)
        elif isinstance(parent, QLayout):
            spacing = parent.spacing()
        return spacing if spacing >= 0 else 6  # some styles answer -1 ("ask per widget pair")
