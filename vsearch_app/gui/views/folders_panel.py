"""The side panel of watched folders: each folder's name, where it is, and how many photos it holds.

A view only: it asks, it never acts. Add opens a folder chooser and emits ``addRequested(Path)``; Remove asks for
confirmation first (the photos themselves are never touched) and emits ``removeRequested(Path)``; Reveal (also a
double click) emits ``revealRequested(Path)``. The window passes data in with ``set_folders`` (FolderInfo list from
the engine) and ``set_counts`` (path -> photo count, per folder; folders with no count yet show none).

An offline folder (a drive unplugged, a share unreachable, a folder moved) stays in the list, greyed, with the reason
in words, because its photos are still known and come back when it does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QContextMenuEvent,
    QFont,
    QFontMetrics,
    QIcon,
    QKeyEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QMessageBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from vsearch_app.core.types import FolderInfo
from vsearch_app.gui import formatting, icons

OFFLINE_REASON = "Not reachable: unplugged or moved?"
EMPTY_HINT = "No folders yet.\nAdd one to start searching."

PATH_ROLE = Qt.ItemDataRole.UserRole + 1  # Path
ONLINE_ROLE = Qt.ItemDataRole.UserRole + 2  # bool
COUNT_ROLE = Qt.ItemDataRole.UserRole + 3  # int, or absent while unknown

_ICON_SIDE = 20
_PAD = 8


def folder_label(path: Path) -> str:
    """The name a folder goes by in the list: its last part, or the whole path for a drive root ("D:\\", "/")."""
    return path.name or str(path)


def location_label(path: Path, home: Path | None = None) -> str:
    """Where a folder is, shortened the way people read it: "~/Pictures" for a folder inside the home folder."""
    home = home if home is not None else Path.home()
    try:
        inside = path.relative_to(home)
    except ValueError:
        return str(path)
    return "~" if not inside.parts else str(Path("~", inside))


class FoldersPanel(QWidget):
    """The watched folders, with Add, Reveal and Remove. See the module docstring for the signals."""

    addRequested = Signal(object)  # Path
    removeRequested = Signal(object)  # Path
    revealRequested = Signal(object)  # Path
    captionRequested = Signal(object)  # Path: describe the folder's photos (a background caption job)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = QStandardItemModel(self)
        self._counts: dict[Path, int] = {}

        title = QLabel("Folders", self)
        font = title.font()
        font.setWeight(QFont.Weight.DemiBold)
        title.setFont(font)

        self._add_button = self._tool_button("add-folder", "Add a folder to watch…", self.choose_folder_to_add)
        self._reveal_button = self._tool_button("reveal", "Show in the file manager", self._reveal_current)
        # A minus, not a bin: stopping watching a folder deletes nothing, and the icon must not suggest otherwise.
        self._remove_button = self._tool_button("minus", "Stop watching this folder…", self._remove_current)

        header = QHBoxLayout()
        header.setContentsMargins(_PAD + 2, 4, 4, 2)
        header.setSpacing(0)
        header.addWidget(title)
        header.addStretch(1)
        for button in (self._add_button, self._reveal_button, self._remove_button):
            header.addWidget(button)

        self._list = _FolderList(self)
        self._list.setModel(self._model)
        self._list.setItemDelegate(_FolderDelegate(self._list))
        self._list.selectionModel().currentChanged.connect(self._update_buttons)
        self._list.doubleClicked.connect(self._on_double_clicked)
        self._list.contextMenuAt.connect(self._show_context_menu)
        self._list.deletePressed.connect(self._remove_current)

        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addLayout(header)
        column.addWidget(self._list, 1)
        self._update_buttons()

    # --- data in -------------------------------------------------------------------------------------------------

    def set_folders(self, folders: Sequence[FolderInfo]) -> None:
        """Show these folders (sorted by name), keeping the selection on the same folder if it is still there."""
        current = self.current_folder()
        self._model.clear()
        for info in sorted(folders, key=lambda f: (folder_label(f.path).casefold(), str(f.path))):
            item = QStandardItem(folder_label(info.path))
            item.setEditable(False)
            item.setData(info.path, PATH_ROLE)
            item.setData(bool(info.online), ONLINE_ROLE)
            self._model.appendRow(item)
            self._apply_count(item)
        if current is not None:
            self.select(current)
        self._update_buttons()

    def set_counts(self, counts: Mapping[Path | str, int]) -> None:
        """Photo counts per folder path; folders not in ``counts`` keep showing no number."""
        self._counts = {Path(path): int(n) for path, n in counts.items()}
        for row in range(self._model.rowCount()):
            self._apply_count(self._model.item(row))

    # --- state out -----------------------------------------------------------------------------------------------

    def folders(self) -> list[FolderInfo]:
        return [FolderInfo(item.data(PATH_ROLE), item.data(ONLINE_ROLE)) for item in self._items()]

    def current_folder(self) -> Path | None:
        index = self._list.currentIndex()
        return index.data(PATH_ROLE) if index.isValid() else None

    def select(self, path: Path) -> bool:
        for item in self._items():
            if item.data(PATH_ROLE) == Path(path):
                self._list.setCurrentIndex(item.index())
                return True
        return False

    @property
    def list_view(self) -> QListView:
        return self._list

    # --- user intents --------------------------------------------------------------------------------------------

    def choose_folder_to_add(self) -> None:
        """Ask for a folder with the system's folder chooser; emits ``addRequested`` unless the user cancels."""
        start = self.current_folder()
        start_dir = str(start.parent) if start is not None else str(Path.home())
        chosen = QFileDialog.getExistingDirectory(self, "Choose a folder of photos", start_dir)
        if chosen:
            self.addRequested.emit(Path(chosen))

    def confirm_remove(self, path: Path) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, "Stop watching folder",
                          f"Stop watching “{folder_label(path)}”?",
                          QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("VSearch forgets what it learned about the photos in this folder and stops looking "
                               "for new ones.\nYour photos are not touched.")
        box.button(QMessageBox.StandardButton.Ok).setText("Stop Watching")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        return QMessageBox.StandardButton(box.exec()) == QMessageBox.StandardButton.Ok

    def _remove_current(self) -> None:
        path = self.current_folder()
        if path is not None and self.confirm_remove(path):
            self.removeRequested.emit(path)

    def _reveal_current(self) -> None:
        path = self.current_folder()
        if path is not None:
            self.revealRequested.emit(path)

    def _caption_current(self) -> None:
        path = self.current_folder()
        if path is not None:
            self.captionRequested.emit(path)

    def _on_double_clicked(self, index: QModelIndex) -> None:
        self.revealRequested.emit(index.data(PATH_ROLE))

    def _show_context_menu(self, index: QModelIndex, global_pos: QPoint) -> None:
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if index.isValid():
            self._list.setCurrentIndex(index)
            menu.addAction(icons.icon("reveal"), "Show in File Manager", self._reveal_current)
            menu.addAction(icons.icon("caption"), "Generate Captions", self._caption_current)
            menu.addAction(icons.icon("minus"), "Stop Watching…", self._remove_current)
            menu.addSeparator()
        menu.addAction(icons.icon("add-folder"), "Add Folder…", self.choose_folder_to_add)
        menu.popup(global_pos)  # popup, not exec: the event loop (and tests) keep running

    # --- helpers -------------------------------------------------------------------------------------------------

    def _tool_button(self, icon_name: str, tip: str, slot) -> QToolButton:
        button = QToolButton(self)
        button.setIcon(icons.icon(icon_name))
        button.setIconSize(QSize(16, 16))
        button.setAutoRaise(True)
        button.setToolTip(tip)
        button.setAccessibleName(tip.rstrip("…"))
        button.clicked.connect(slot)
        return button

    def _items(self) -> list[QStandardItem]:
        return [self._model.item(row) for row in range(self._model.rowCount())]

    def _apply_count(self, item: QStandardItem) -> None:
        path: Path = item.data(PATH_ROLE)
        count = self._counts.get(path)
        item.setData(count, COUNT_ROLE)
        if item.data(ONLINE_ROLE):
            tip = str(path) if count is None else f"{path}\n{formatting.plural(count, 'photo')}"
        else:
            tip = f"{path}\n{OFFLINE_REASON} Its photos come back when the folder does."
        item.setToolTip(tip)
        item.setData(str(path) if item.data(ONLINE_ROLE) else f"{folder_label(path)}, offline",
                     Qt.ItemDataRole.AccessibleTextRole)

    def _update_buttons(self, *_args) -> None:
        has_current = self.current_folder() is not None
        self._reveal_button.setEnabled(has_current)
        self._remove_button.setEnabled(has_current)


class _FolderList(QListView):
    """The list itself: two-line rows, a hint when empty, and the context-menu and Delete keys as signals."""

    contextMenuAt = Signal(QModelIndex, QPoint)
    deletePressed = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setFrameShape(QListView.Shape.NoFrame)
        self.setUniformItemSizes(True)
        self.setMouseTracking(True)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        index = self.indexAt(event.pos())
        if event.reason() == QContextMenuEvent.Reason.Keyboard and self.currentIndex().isValid():
            index = self.currentIndex()
            self.contextMenuAt.emit(index, self.viewport().mapToGlobal(self.visualRect(index).center()))
            return
        self.contextMenuAt.emit(index, event.globalPos())

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.currentIndex().isValid():
            self.deletePressed.emit()
            return
        super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.model() is not None and self.model().rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            area = self.viewport().rect().adjusted(12, 16, -12, -12)
            painter.drawText(area, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
                             EMPTY_HINT)
            painter.end()


class _FolderDelegate(QStyledItemDelegate):
    """A row: folder icon, the name with the photo count at the right, and the parent path (or the offline reason)
    below in the secondary colour. Offline rows use the palette's Disabled colours and a warning icon."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        line = QFontMetrics(option.font).height()
        small = QFontMetrics(_small_font(option.font)).height()
        return QSize(160, _PAD + line + 2 + small + _PAD)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        self.initStyleOption(option, index)
        widget = option.widget
        style = widget.style() if widget is not None else None
        # The style draws the selection/hover background only; we draw the content.
        option.text = ""
        option.icon = QIcon()
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, widget)

        path: Path = index.data(PATH_ROLE)
        online = bool(index.data(ONLINE_ROLE))
        count = index.data(COUNT_ROLE)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        palette = option.palette
        group = QPalette.ColorGroup.Active if online else QPalette.ColorGroup.Disabled
        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        main_color = palette.color(group, text_role)
        secondary = palette.color(group, QPalette.ColorRole.PlaceholderText)
        if selected:
            secondary = main_color

        rect = option.rect.adjusted(_PAD + 2, _PAD, -_PAD, -_PAD)
        line_height = QFontMetrics(option.font).height()
        icon_rect = QRect(rect.left(), rect.top() + (line_height - _ICON_SIDE) // 2, _ICON_SIDE, _ICON_SIDE)
        if online:
            mode = QIcon.Mode.Selected if selected else QIcon.Mode.Normal
            icons.icon("folder").paint(painter, icon_rect, Qt.AlignmentFlag.AlignCenter, mode)
        else:
            role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.PlaceholderText
            icons.icon("warning", role).paint(painter, icon_rect, Qt.AlignmentFlag.AlignCenter)

        text_left = icon_rect.right() + 8
        painter.save()
        painter.setFont(option.font)
        count_text = formatting.count(count) if count is not None else ""
        count_width = QFontMetrics(option.font).horizontalAdvance(count_text) if count_text else 0
        name_rect = QRect(text_left, rect.top(), rect.right() - text_left - (count_width + 8 if count_width else 0),
                          line_height)
        metrics = QFontMetrics(option.font)
        painter.setPen(main_color)
        painter.drawText(name_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         metrics.elidedText(folder_label(path), Qt.TextElideMode.ElideRight, name_rect.width()))
        if count_text:
            painter.setPen(secondary)
            painter.drawText(QRect(rect.right() - count_width, rect.top(), count_width, line_height),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, count_text)

        small = _small_font(option.font)
        small_metrics = QFontMetrics(small)
        detail_rect = QRect(text_left, rect.top() + line_height + 2, rect.right() - text_left, small_metrics.height())
        detail = location_label(path.parent) if online and path.parent != path else ("" if online else OFFLINE_REASON)
        painter.setFont(small)
        painter.setPen(secondary)
        painter.drawText(detail_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         small_metrics.elidedText(detail, Qt.TextElideMode.ElideMiddle, detail_rect.width()))
        painter.restore()


def _small_font(font: QFont) -> QFont:
    small = QFont(font)
    if small.pointSizeF() > 0:
        small.setPointSizeF(max(7.0, small.pointSizeF() * 0.88))
    else:
        small.setPixelSize(max(9, round(small.pixelSize() * 0.88)))
    return small
