"""The window's side panel, status line and empty-state page: compact working versions the window uses until the
full panels (gui/views/folders_panel.py, status_bar.py, empty_states.py) are plugged in.

Each part is a plain widget with setters taking core.types values and signals for what the user asks; it never
calls the engine. The window creates them through ``make_folders_panel``, ``make_status_panel`` and
``make_empty_state`` (the seams): swapping in the full panels changes those three functions only, as long as the
replacements keep the signals and setters named here.

FoldersPanel:  set_folders(list[FolderInfo], counts: Mapping[Path, int] | None)
               addRequested(Path), removeRequested(Path), revealRequested(Path)
StatusPanel:   set_state(state, message), set_progress(IndexProgress), set_status(LibraryStatus)
               pauseRequested(), resumeRequested(), failedRequested()
EmptyState:    show_page(kind, title, text, action="")    actionRequested(kind)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from vsearch_app.core.types import FolderInfo, IndexProgress, LibraryStatus
from vsearch_app.gui import icons
from vsearch_app.gui.engine import library_lane as lane_states

PATH_ROLE = int(Qt.ItemDataRole.UserRole) + 1
TEXT_WIDTH = 460  # the empty page's lines wrap at this width


def _scaled_font(widget: QWidget, factor: float, weight: QFont.Weight = QFont.Weight.Normal) -> QFont:
    font = QFont(widget.font())
    font.setPointSizeF(font.pointSizeF() * factor)
    font.setWeight(weight)
    return font


def muted(widget: QWidget) -> None:
    """Secondary text: drawn in the palette's placeholder colour (a role, so a switch to dark mode follows)."""
    widget.setForegroundRole(QPalette.ColorRole.PlaceholderText)


def count_text(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def time_left_text(seconds: float) -> str:
    if seconds < 60:
        return "less than a minute left"
    return f"about {duration_text(seconds)} left"


def duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return count_text(minutes, "min", "min")
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# --- folders ------------------------------------------------------------------------------------------------------


class FoldersPanel(QWidget):
    """The watched folders, as a source list: name, full path on hover, offline ones greyed with the reason."""

    addRequested = Signal(object)  # Path chosen in the folder dialog
    removeRequested = Signal(object)  # Path, after the user confirmed
    revealRequested = Signal(object)  # Path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(170)
        header = QLabel("Folders", self)
        header.setFont(_scaled_font(self, 0.92, QFont.Weight.DemiBold))
        muted(header)
        self._add = QToolButton(self)
        self._add.setIcon(icons.icon("add-folder"))
        self._add.setToolTip("Add a photo folder")
        self._add.setAutoRaise(True)
        self._add.clicked.connect(self.choose_folder)
        top = QHBoxLayout()
        top.setContentsMargins(12, 10, 6, 2)
        top.addWidget(header)
        top.addStretch(1)
        top.addWidget(self._add)

        self._list = QListWidget(self)
        self._list.setFrameShape(QListWidget.Shape.NoFrame)
        self._list.setIconSize(QSize(18, 18))
        self._list.setSpacing(1)
        self._list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self._list.customContextMenuRequested.connect(self._menu_at)
        self._list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._list.setAutoFillBackground(False)
        self._list.viewport().setAutoFillBackground(False)
        self._list.setTextElideMode(Qt.TextElideMode.ElideMiddle)

        self._hint = QLabel("No folders yet.\nAdd one to start.", self)
        self._hint.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._hint.setContentsMargins(14, 4, 8, 0)
        muted(self._hint)

        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 8)
        column.setSpacing(4)
        column.addLayout(top)
        column.addWidget(self._list, 1)
        column.addWidget(self._hint)
        column.addStretch(0)
        self.set_folders([])

    def folders(self) -> list[Path]:
        return [self._list.item(i).data(PATH_ROLE) for i in range(self._list.count())]

    def set_folders(self, folders: list[FolderInfo], counts: Mapping[Path, int] | None = None) -> None:
        self._list.clear()
        folder_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_DirIcon)
        for folder in folders:
            label = folder.path.name or str(folder.path)
            if counts and folder.path in counts:
                label = f"{label}  ·  {counts[folder.path]:,}"
            item = QListWidgetItem(folder_icon, label)
            item.setData(PATH_ROLE, folder.path)
            item.setSizeHint(QSize(0, 28))
            if folder.online:
                item.setToolTip(str(folder.path))
            else:
                item.setToolTip(f"{folder.path}\nNot reachable: unplugged or moved? Its photos are kept.")
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            self._list.addItem(item)
        self._hint.setVisible(not folders)
        self._list.setVisible(bool(folders))

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a photo folder", str(Path.home()))
        if folder:
            self.addRequested.emit(Path(folder))

    def confirm_remove(self, path: Path) -> None:
        answer = QMessageBox.question(
            self, "Stop watching this folder?",
            f"VSearch will stop watching “{path.name or path}” and forget its photos.\n\n"
            "Your photos are not touched.",
            QMessageBox.StandardButton.Cancel | QMessageBox.StandardButton.Ok, QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Ok:
            self.removeRequested.emit(path)

    def _menu_at(self, pos) -> None:
        item = self._list.itemAt(pos)
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if item is not None:
            path = item.data(PATH_ROLE)
            menu.addAction(icons.icon("reveal"), "Show in File Manager", lambda: self.revealRequested.emit(path))
            menu.addAction(icons.icon("remove"), "Stop Watching…", lambda: self.confirm_remove(path))
            menu.addSeparator()
        menu.addAction(icons.icon("add-folder"), "Add Folder…", self.choose_folder)
        menu.popup(self._list.viewport().mapToGlobal(pos))


# --- status line --------------------------------------------------------------------------------------------------


class StatusPanel(QWidget):
    """One line at the bottom: what indexing does now, a small progress bar, Pause/Resume and the failed count."""

    pauseRequested = Signal()
    resumeRequested = Signal()
    failedRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = lane_states.STOPPED
        self._message = ""
        self._progress: IndexProgress | None = None
        self._status: LibraryStatus | None = None
        self._text = QLabel(self)
        self._text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self._bar = QProgressBar(self)
        self._bar.setFixedSize(120, 6)
        self._bar.setTextVisible(False)
        self._pause = QToolButton(self)
        self._pause.setAutoRaise(True)
        self._pause.clicked.connect(self._on_pause_clicked)
        self._failed = QToolButton(self)
        self._failed.setAutoRaise(True)
        self._failed.setIcon(icons.icon("warning"))
        self._failed.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._failed.setToolTip("Photos VSearch could not read: show them and why")
        self._failed.clicked.connect(self.failedRequested)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 0, 4, 0)
        row.setSpacing(8)
        row.addWidget(self._text, 1)
        row.addWidget(self._bar)
        row.addWidget(self._pause)
        row.addWidget(self._failed)
        self._render()

    @property
    def text(self) -> str:
        return self._text.text()

    def set_state(self, state: str, message: str = "") -> None:
        self._state, self._message = state, message
        self._render()

    def set_progress(self, progress: IndexProgress | None) -> None:
        self._progress = progress
        self._render()

    def set_status(self, status: LibraryStatus) -> None:
        self._status = status
        self._render()

    def indexing(self) -> bool:
        p = self._progress
        return self._state == lane_states.WATCHING and p is not None and p.done < p.total

    def _render(self) -> None:
        counts = self._status.counts if self._status is not None else {}
        indexed, pending = counts.get("indexed", 0), counts.get("pending", 0)
        bar = False
        tooltip = ""
        if self._state == lane_states.STARTING:
            text = "Opening your library…"
        elif self._state in (lane_states.BUSY, lane_states.PROBLEM, lane_states.FAILED):
            text = self._message[:1].upper() + self._message[1:]
            tooltip = self._message
        elif self._state == lane_states.PAUSED:
            text = f"Indexing paused · {count_text(pending, 'photo')} waiting" if pending else "Indexing paused"
        elif self.indexing():
            p = self._progress
            phase = getattr(p, "phase", None)
            text = f"Indexing {p.done:,} of {p.total:,}" if phase in (None, "embedding") else f"{phase.title()}…"
            if p.rate > 0:
                text += f" · {p.rate:.1f} photos/s"
            if p.eta_s is not None:
                text += f" · {time_left_text(p.eta_s)}"
            bar = True
            self._bar.setRange(0, max(1, p.total))
            self._bar.setValue(p.done)
        elif self._state == lane_states.WATCHING and pending:
            text = f"Getting ready to index {count_text(pending, 'photo')}…"
        elif self._status is not None and self._status.roots:
            text = f"{count_text(indexed, 'photo')} indexed · watching for new ones"
        else:
            text = ""
        self._text.setText(text)
        self._text.setToolTip(tooltip or text)
        self._bar.setVisible(bar)
        has_folders = self._status is not None and bool(self._status.roots)
        running = self._state in (lane_states.WATCHING, lane_states.BUSY) and has_folders
        self._pause.setVisible(running or self._state == lane_states.PAUSED)
        if self._state == lane_states.PAUSED:
            self._pause.setIcon(icons.icon("play"))
            self._pause.setToolTip("Resume indexing")
        else:
            self._pause.setIcon(icons.icon("pause"))
            self._pause.setToolTip("Pause indexing (searching still works)")
        failed = len(self._status.failed) if self._status is not None else 0
        self._failed.setVisible(failed > 0)
        self._failed.setText(f"{failed:,} failed")

    def _on_pause_clicked(self) -> None:
        if self._state == lane_states.PAUSED:
            self.resumeRequested.emit()
        else:
            self.pauseRequested.emit()


# --- empty states -------------------------------------------------------------------------------------------------


class EmptyState(QWidget):
    """A centred page: the app icon, a title, a line of text and at most one button."""

    actionRequested = Signal(str)  # the kind of the page whose button was clicked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = ""
        self._logo = QLabel(self)
        self._logo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._logo.setPixmap(icons.app_icon().pixmap(QSize(88, 88), self.devicePixelRatioF()))
        self._title = QLabel(self)
        self._title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._title.setFont(_scaled_font(self, 1.55, QFont.Weight.DemiBold))
        self._title.setWordWrap(True)
        self._title.setForegroundRole(QPalette.ColorRole.Text)
        self._text = QLabel(self)
        self._text.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self._text.setWordWrap(True)
        self._text.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.setAutoFillBackground(True)
        self.setBackgroundRole(QPalette.ColorRole.Base)  # the grid's background: no flash between the two
        self._button = QPushButton(self)
        self._button.setDefault(True)
        self._button.setMinimumHeight(34)
        self._button.setMinimumWidth(180)
        self._button.clicked.connect(lambda: self.actionRequested.emit(self.kind))
        # A fixed-width column centred by stretches: word-wrapped labels need a definite width to wrap, and an
        # alignment flag on them in the layout would ignore their height-for-width (one clipped line).
        column_widget = QWidget(self)
        column_widget.setFixedWidth(TEXT_WIDTH)
        column = QVBoxLayout(column_widget)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self._logo)
        column.addSpacing(14)
        column.addWidget(self._title)
        column.addSpacing(4)
        column.addWidget(self._text)
        column.addSpacing(18)
        column.addWidget(self._button, 0, Qt.AlignmentFlag.AlignHCenter)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(column_widget)
        row.addStretch(1)
        outer = QVBoxLayout(self)
        outer.addStretch(3)
        outer.addLayout(row)
        outer.addStretch(4)

    @property
    def title(self) -> str:
        return self._title.text()

    @property
    def body(self) -> str:
        return self._text.text()

    def show_page(self, kind: str, title: str, text: str = "", action: str = "", *, logo: bool = True) -> None:
        self.kind = kind
        self._title.setText(title)
        self._text.setText(text)
        self._text.setVisible(bool(text))
        self._button.setText(action)
        self._button.setVisible(bool(action))
        self._logo.setVisible(logo)


# --- the seams --------------------------------------------------------------------------------------------------


def make_folders_panel(parent: QWidget) -> FoldersPanel:
    return FoldersPanel(parent)


def make_status_panel(parent: QWidget) -> StatusPanel:
    return StatusPanel(parent)


def make_empty_state(parent: QWidget) -> EmptyState:
    return EmptyState(parent)
