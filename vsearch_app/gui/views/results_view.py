"""ResultsView: the grid of search results (a QListView in icon mode over gui.models.results.ResultsModel).

Signals, for the window to act on (the view itself opens nothing):
- ``openRequested(paths)``: Enter/Return, or a double click.
- ``previewRequested(path)``: Space on the current photo.
- ``contextMenuRequested(paths, global_pos)``: a right click on a photo (selecting it first if it was not selected)
  or the Menu key (at the current photo). The window builds and pops up the menu.

Built for 100,000 rows (GUI.md "Results grid"): Batched layout, uniform item sizes, per-pixel scrolling, and a paged
model. While the user scrolls or resizes, a throttled timer tells the model which rows are visible, and the model
asks the thumbnail loader for those first. Drags out carry copies only: a file manager must never move a photo.
"""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QAbstractItemModel, QItemSelectionModel, QModelIndex, QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QContextMenuEvent, QDrag, QKeyEvent, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyleOptionViewItem, QWidget

from vsearch_app.gui.models.results import PATH_ROLE, THUMBNAIL_ROLE
from vsearch_app.gui.views.result_delegate import DEFAULT_THUMBNAIL_SIZE, ResultDelegate

VISIBLE_UPDATE_MS = 100  # at most this often, while scrolling, the model hears which rows are visible
LAYOUT_BATCH = 1000  # rows laid out per event-loop pass (GUI.md: setModel 0.85 s -> 0.06 s at 100k)
DRAG_PIXMAP_SIDE = 96
MIN_GAP = 8  # logical pixels between tiles, at least


class ResultsView(QListView):
    """A grid of photo tiles with keyboard, context-menu and drag-out behaviour for a photo browser."""

    openRequested = Signal(list)  # list[Path]
    previewRequested = Signal(object)  # Path
    contextMenuRequested = Signal(list, QPoint)  # list[Path], global position

    def __init__(self, parent: QWidget | None = None, *, thumbnail_size: int = DEFAULT_THUMBNAIL_SIZE) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(LAYOUT_BATCH)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSpacing(0)  # the gaps come from the grid size (_fit_grid), which spreads the columns evenly
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setMouseTracking(True)  # hover state for the score badge
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.DefaultContextMenu)
        self._delegate = ResultDelegate(self, thumbnail_size)
        self.setItemDelegate(self._delegate)
        self._visible_timer = QTimer(self)
        self._visible_timer.setSingleShot(True)
        self._visible_timer.setInterval(VISIBLE_UPDATE_MS)
        self._visible_timer.timeout.connect(self._report_visible_rows)
        self.verticalScrollBar().valueChanged.connect(self._schedule_visible_update)
        self.doubleClicked.connect(self._open_index)

    # --- configuration ----------------------------------------------------------------------------------------------

    def setModel(self, model: QAbstractItemModel | None) -> None:
        old = self.model()
        if old is not None:
            for signal in (old.modelReset, old.rowsInserted, old.layoutChanged):
                signal.disconnect(self._schedule_visible_update)
        super().setModel(model)
        if model is not None:
            for signal in (model.modelReset, model.rowsInserted, model.layoutChanged):
                signal.connect(self._schedule_visible_update)
        self._apply_thumbnail_side()
        self._schedule_visible_update()

    @property
    def thumbnail_size(self) -> int:
        return self._delegate.thumbnail_size

    def set_thumbnail_size(self, size: int) -> None:
        """Logical pixels of a tile's photo square; the loader is asked for that times the devicePixelRatio."""
        self._delegate.set_thumbnail_size(size)
        self._apply_thumbnail_side()
        self._fit_grid()
        self.scheduleDelayedItemsLayout()  # uniform item sizes are cached by the view
        self._schedule_visible_update()

    def selected_paths(self) -> list[Path]:
        """The selected photos in grid order; the current one when nothing is selected."""
        indexes = sorted(self.selectionModel().selectedIndexes(), key=QModelIndex.row) if self.selectionModel() else []
        if not indexes and self.currentIndex().isValid():
            indexes = [self.currentIndex()]
        return [index.data(PATH_ROLE) for index in indexes]

    def visible_rows(self) -> tuple[int, int] | None:
        """(first, last) rows at least partly in the viewport, or None. Rows run left to right, line by line, so a
        binary search over visualRect finds both ends in O(log n) (rows not laid out yet count as below)."""
        model = self.model()
        count = model.rowCount() if model is not None else 0
        if count == 0:
            return None
        height = self.viewport().height()

        def first_where(predicate) -> int:
            lo, hi = 0, count
            while lo < hi:
                mid = (lo + hi) // 2
                if predicate(self.visualRect(model.index(mid, 0))):
                    hi = mid
                else:
                    lo = mid + 1
            return lo

        first = first_where(lambda r: not r.isValid() or r.bottom() >= 0)
        end = first_where(lambda r: not r.isValid() or r.top() >= height)
        if first >= end:
            return None
        return first, end - 1

    # --- events -----------------------------------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            paths = self.selected_paths()
            if paths:
                self.openRequested.emit(paths)
            event.accept()
        elif key == Qt.Key.Key_Space and not event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            current = self.currentIndex()  # Ctrl+Space keeps Qt's meaning: toggle the current photo's selection
            if current.isValid():
                self.previewRequested.emit(current.data(PATH_ROLE))
            event.accept()
        elif key == Qt.Key.Key_Menu:
            self._context_menu_at_current()
            event.accept()
        else:
            super().keyPressEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        if event.reason() != QContextMenuEvent.Reason.Mouse:
            self._context_menu_at_current()
            return
        index = self.indexAt(event.pos())
        if not index.isValid():
            return
        if not self.selectionModel().isSelected(index):
            self.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.contextMenuRequested.emit(self.selected_paths(), event.globalPos())

    def startDrag(self, supportedActions: Qt.DropAction) -> None:
        indexes = [i for i in self.selectedIndexes() if i.flags() & Qt.ItemFlag.ItemIsDragEnabled]
        if not indexes or self.model() is None:
            return
        drag = QDrag(self)
        drag.setMimeData(self.model().mimeData(indexes))
        pixmap = _drag_pixmap(indexes[0].data(THUMBNAIL_ROLE), len(indexes), self.palette())
        if pixmap is not None:
            drag.setPixmap(pixmap)
        drag.exec(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction)  # copy only, whatever the target offers

    def resizeEvent(self, event) -> None:
        self._fit_grid()
        super().resizeEvent(event)
        self._schedule_visible_update()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._apply_thumbnail_side()
        self._schedule_visible_update()

    # --- internals --------------------------------------------------------------------------------------------------

    def _fit_grid(self) -> None:
        """As many columns as fit with at least MIN_GAP between tiles, the spare width shared out evenly, so the
        grid fills the window instead of leaving a ragged strip on the right."""
        tile = self._delegate.sizeHint(self._item_option(), QModelIndex())
        available = max(1, self.viewport().width() - 2)  # QListView wraps a row that reaches the last pixel
        columns = max(1, available // (tile.width() + MIN_GAP))
        self.setGridSize(QSize(max(tile.width(), available // columns), tile.height() + MIN_GAP))

    def _item_option(self) -> QStyleOptionViewItem:
        option = QStyleOptionViewItem()
        self.initViewItemOption(option)
        return option

    def _schedule_visible_update(self, *_args: object) -> None:
        if not self._visible_timer.isActive():  # a throttle, not a debounce: updates keep coming while scrolling
            self._visible_timer.start()

    def _report_visible_rows(self) -> None:
        rows = self.visible_rows()
        model = self.model()
        if rows is not None and hasattr(model, "set_visible_range"):
            model.set_visible_range(*rows)

    def _apply_thumbnail_side(self) -> None:
        loader = getattr(self.model(), "loader", None)
        if loader is not None:
            loader.set_side(math.ceil(self._delegate.thumbnail_size * self.devicePixelRatioF()))

    def _context_menu_at_current(self) -> None:
        index = self.currentIndex()
        if not index.isValid():
            selected = self.selectionModel().selectedIndexes() if self.selectionModel() else []
            if not selected:
                return
            index = min(selected, key=QModelIndex.row)
        if not self.selectionModel().isSelected(index):
            self.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.scrollTo(index)
        position = self.viewport().mapToGlobal(self.visualRect(index).center())
        self.contextMenuRequested.emit(self.selected_paths(), position)

    def _open_index(self, index: QModelIndex) -> None:
        if index.isValid():
            self.openRequested.emit([index.data(PATH_ROLE)])


def _drag_pixmap(thumbnail: object, count: int, palette: QPalette) -> QPixmap | None:
    """The first photo, small, with the number of photos dragged when there are several."""
    if not isinstance(thumbnail, QPixmap) or thumbnail.isNull():
        return None
    pixmap = thumbnail.scaled(DRAG_PIXMAP_SIDE, DRAG_PIXMAP_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                              Qt.TransformationMode.SmoothTransformation)
    if count > 1:
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        label = str(count)
        width = painter.fontMetrics().horizontalAdvance(label) + 12
        height = painter.fontMetrics().height() + 4
        painter.setBrush(palette.color(QPalette.ColorRole.Highlight))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawRoundedRect(pixmap.width() - width - 2, 2, width, height, height / 2, height / 2)
        painter.setPen(palette.color(QPalette.ColorRole.HighlightedText))
        painter.drawText(pixmap.width() - width - 2, 2, width, height, Qt.AlignmentFlag.AlignCenter, label)
        painter.end()
    return pixmap
