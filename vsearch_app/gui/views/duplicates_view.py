"""The Duplicates window: groups of near-identical photos (bursts, edited copies, resized exports) and byte-identical
copies, each shown side by side with the suggested keeper first and marked "Best shot".

It asks the controller to find them when it opens (``LibraryService.duplicates`` on the duplicates lane, with
progress and Cancel) and shows each member's pixel size, file size and best-shot quality. VSearch never deletes:
a group offers "Reveal" (the best shot, selected in the file manager) and "Copy List of the Others" (the paths of the
photos that are not the best shot, one per line, for the user's own clean-up). Nothing here writes to a photo.

Thumbnails come from the engine's cache through a ThumbnailLoader of its own (shut down in ``shutdown``). Groups are
shown GROUPS_PER_PAGE at a time with "Show More", so a library with thousands of groups does not build thousands of
widgets at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QFont,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from vsearch_app.core.types import DuplicateGroup, DuplicateMember
from vsearch_app.gui import desktop, formatting, icons
from vsearch_app.gui.engine.duplicates_lane import progress_fraction
from vsearch_app.gui.thumbs.loader import ThumbnailLoader
from vsearch_app.gui.views.flow_layout import FlowLayout
from vsearch_app.gui.views.result_delegate import blend, fit_rect

log = logging.getLogger(__name__)

TILE_SIDE = 168  # logical pixels of a member's picture
GROUPS_PER_PAGE = 60
BADGE_TEXT = "Best shot"


def others_of(group: DuplicateGroup) -> list[Path]:
    """The paths of a group's members that are not the suggested keeper (members[0])."""
    return [member.path for member in group.members[1:]]


def member_details(member: DuplicateMember) -> str:
    """ "4,032 × 3,024 · 3.1 MB" (what is known)."""
    parts = []
    if member.width and member.height:
        parts.append(f"{member.width:,} × {member.height:,}")
    if member.size:
        parts.append(formatting.size(member.size))
    return " · ".join(parts)


class _Picture(QWidget):
    """A member's thumbnail, fitted in a square, with the "Best shot" badge on the keeper."""

    def __init__(self, keeper: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap = QPixmap()
        self._failed = False
        self._keeper = keeper
        self.setFixedSize(TILE_SIDE, TILE_SIDE)

    def set_pixmap(self, pixmap: QPixmap) -> None:
        self._pixmap = pixmap
        self.update()

    def set_failed(self) -> None:
        self._failed = True
        self.update()

    @property
    def has_pixmap(self) -> bool:
        return not self._pixmap.isNull()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        palette = self.palette()
        base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        square = QRectF(self.rect())
        clip = QPainterPath()
        clip.addRoundedRect(square, 6, 6)
        painter.fillPath(clip, blend(base, text, 0.06))
        if not self._pixmap.isNull():
            photo = fit_rect(self.rect(), self._pixmap.width(), self._pixmap.height())
            painter.drawPixmap(photo, self._pixmap, QRectF(self._pixmap.rect()))
        elif self._failed:
            painter.setPen(blend(base, text, 0.45))
            painter.drawText(square, Qt.AlignmentFlag.AlignCenter, "No preview")
        if self._keeper:
            highlight = palette.color(QPalette.ColorRole.Highlight)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            ring = QPainterPath()
            ring.addRoundedRect(square.adjusted(1, 1, -1, -1), 6, 6)
            painter.strokePath(ring, QPen(highlight, 2.5))
            font = QFont(self.font())
            font.setBold(True)
            font.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
            painter.setFont(font)
            metrics = painter.fontMetrics()
            badge = QRectF(8, 8, metrics.horizontalAdvance(BADGE_TEXT) + 16, metrics.height() + 6)
            pill = QPainterPath()
            pill.addRoundedRect(badge, badge.height() / 2, badge.height() / 2)
            painter.fillPath(pill, highlight)
            painter.setPen(palette.color(QPalette.ColorRole.HighlightedText))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, BADGE_TEXT)


class MemberTile(QWidget):
    """One photo of a group: picture, name, pixel and file size, quality (and how similar it is to the keeper)."""

    revealRequested = Signal(object)  # Path (a double click)

    def __init__(self, member: DuplicateMember, keeper: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.member = member
        self.keeper = keeper
        self.picture = _Picture(keeper, self)
        name = QLabel(self)
        name.setTextFormat(Qt.TextFormat.PlainText)
        name.setText(self.fontMetrics().elidedText(member.path.name, Qt.TextElideMode.ElideMiddle, TILE_SIDE))
        details = QLabel(member_details(member) or " ", self)
        details.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        quality = f"Quality {member.quality:.2f}"
        if not keeper:
            quality += f" · {round(member.similarity * 100)}% alike"
        self.quality_label = QLabel(quality, self)
        self.quality_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        for label in (name, details, self.quality_label):
            label.setFixedWidth(TILE_SIDE)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(self.picture)
        column.addSpacing(4)
        column.addWidget(name)
        column.addWidget(details)
        column.addWidget(self.quality_label)
        self.setToolTip(str(member.path) + ("\nThe suggested keeper: the sharpest, best exposed, largest" if keeper
                                            else ""))

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.revealRequested.emit(self.member.path)


class GroupCard(QFrame):
    """A group: its kind and size, Reveal and Copy List of the Others, and the members side by side."""

    revealRequested = Signal(object)  # Path
    copied = Signal(list)  # the paths put on the clipboard

    def __init__(self, group: DuplicateGroup, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.group = group
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundRole(QPalette.ColorRole.Base)
        self.setAutoFillBackground(True)
        kind = "Identical copies" if group.kind == "exact" else "Near-identical"
        title = QLabel(f"{kind} · {formatting.plural(len(group.members), 'photo')}", self)
        font = title.font()
        font.setWeight(QFont.Weight.DemiBold)
        title.setFont(font)
        saved = sum(m.size for m in group.members[1:])
        detail = QLabel(f"{formatting.size(saved)} in the others" if saved else "", self)
        detail.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.reveal_button = QPushButton(icons.icon("reveal"), "Reveal", self)
        self.reveal_button.setToolTip(f"Show {group.members[0].path.name} in the file manager")
        self.reveal_button.clicked.connect(self._reveal)
        self.copy_button = QPushButton(icons.icon("copy"), "Copy List of the Others", self)
        self.copy_button.setToolTip("Put the paths of the photos that are not the best shot on the clipboard, one "
                                    "per line. VSearch deletes nothing.")
        self.copy_button.clicked.connect(self.copy_others)
        self.copy_button.setEnabled(len(group.members) > 1)
        header = QHBoxLayout()
        header.setSpacing(10)
        header.addWidget(title)
        header.addWidget(detail)
        header.addStretch(1)
        header.addWidget(self.reveal_button)
        header.addWidget(self.copy_button)

        self.tiles: list[MemberTile] = []
        members = QWidget(self)
        flow = FlowLayout(members, h_spacing=14, v_spacing=12)
        flow.setContentsMargins(0, 0, 0, 0)
        for i, member in enumerate(group.members):
            tile = MemberTile(member, keeper=i == 0, parent=members)
            tile.revealRequested.connect(self.revealRequested)
            flow.addWidget(tile)
            self.tiles.append(tile)
        column = QVBoxLayout(self)
        column.setContentsMargins(16, 12, 16, 14)
        column.setSpacing(10)
        column.addLayout(header)
        column.addWidget(members)

    def copy_others(self) -> None:
        paths = others_of(self.group)
        if paths:
            desktop.copy_paths(paths)
            self.copied.emit(paths)

    def _reveal(self) -> None:
        self.revealRequested.emit(self.group.members[0].path)


class DuplicatesView(QWidget):
    """A window of its own (View: Ctrl+Shift+D, or the sidebar's "Find Duplicates")."""

    revealRequested = Signal(object)  # Path: the main window reveals it (and reports a missing file)

    def __init__(self, controller: object, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.controller = controller
        self.groups: list[DuplicateGroup] = []
        self.cards: list[GroupCard] = []
        self._state = "idle"  # idle, running, done, cancelled, failed
        self._tiles_by_path: dict[Path, list[MemberTile]] = {}
        self.setWindowTitle("Duplicates — VSearch")
        self.setWindowIcon(icons.app_icon())
        self.resize(1000, 720)
        self.loader = ThumbnailLoader(controller.thumbnail, side=TILE_SIDE * 2, memory_items=400, parent=self)
        self.loader.thumbnailReady.connect(self._on_thumbnail_ready)
        self.loader.thumbnailFailed.connect(self._on_thumbnail_failed)

        title = QLabel("Duplicates", self)
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.45)
        font.setWeight(QFont.Weight.DemiBold)
        title.setFont(font)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.summary.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.find_button = QPushButton(icons.icon("refresh"), "Find Again", self)
        self.find_button.clicked.connect(self.find)
        self.folder_combo = QComboBox(self)  # where to look: the whole library or one watched folder
        self.folder_combo.setAccessibleName("Look in")
        self.folder_combo.setMinimumContentsLength(16)
        self.folder_combo.activated.connect(self._on_folder_chosen)
        self.set_folders([])
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(6)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setIcon(icons.icon("stop"))
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.cancel_button.clicked.connect(self.cancel)
        self.note = QLabel(self)
        self.note.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        header = QHBoxLayout()
        header.addWidget(title)
        header.addStretch(1)
        header.addWidget(self.folder_combo)
        header.addWidget(self.find_button)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)

        self._list = QWidget()
        self._list.setBackgroundRole(QPalette.ColorRole.Window)
        self._list_layout = QVBoxLayout(self._list)
        self._list_layout.setContentsMargins(0, 0, 0, 0)
        self._list_layout.setSpacing(12)
        self.more_button = QPushButton("Show More", self._list)
        self.more_button.clicked.connect(self.show_more)
        self._list_layout.addWidget(self.more_button, 0, Qt.AlignmentFlag.AlignHCenter)
        self._list_layout.addStretch(1)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(self._list)

        column = QVBoxLayout(self)
        column.setContentsMargins(20, 16, 20, 12)
        column.setSpacing(8)
        column.addLayout(header)
        column.addWidget(self.summary)
        column.addLayout(progress_row)
        column.addWidget(self.scroll, 1)
        column.addWidget(self.note)

        lane = controller.duplicates
        lane.progress.connect(self._on_progress)
        lane.found.connect(self._on_found)
        lane.failed.connect(self._on_failed)
        lane.cancelled.connect(self._on_cancelled)
        self._show_state("idle")

    # --- state ----------------------------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    def start_if_idle(self) -> None:
        """Find duplicates unless a run is going or results are shown (opening the window again keeps them)."""
        if self._state in ("idle", "failed", "cancelled"):
            self.find()

    def set_folders(self, folders: Sequence[Path]) -> None:
        """The watched folders to offer (the current choice stays when it is still one of them)."""
        chosen = self.folder_combo.currentData()
        self.folder_combo.clear()
        self.folder_combo.addItem(icons.icon("folder"), "All folders", "")
        for folder in folders:
            self.folder_combo.addItem(icons.icon("folder"), Path(folder).name or str(folder), str(folder))
        self.folder_combo.setCurrentIndex(max(0, self.folder_combo.findData(chosen)) if chosen else 0)

    @property
    def folder(self) -> Path | None:
        data = self.folder_combo.currentData()
        return Path(data) if data else None

    def _on_folder_chosen(self, _index: int) -> None:
        if self._state != "running":
            self.find()

    def find(self) -> None:
        if self.controller.find_duplicates(self.folder):
            self._clear_groups()
            self._show_state("running")
        elif self._state != "running":
            self._show_state("failed", "VSearch is closing" if self.controller.is_stopping else
                             "A search for duplicates is still finishing")

    def cancel(self) -> None:
        self.controller.duplicates.cancel()
        self.cancel_button.setEnabled(False)
        self.summary.setText("Cancelling…")

    def shutdown(self) -> None:
        """The window's thumbnails stop (the controller stops the lane itself, with the library)."""
        self.loader.shutdown()

    # --- lane results -------------------------------------------------------------------------------------------

    def _on_progress(self, value: object) -> None:
        fraction = progress_fraction(value)
        if self._state != "running" or fraction is None:
            return
        done, total = fraction
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(min(done, total) if total else 0)
        phase = getattr(value, "phase", "") or "comparing"
        if total:
            self.summary.setText(f"{str(phase).capitalize()} photos… {formatting.count(done)} / "
                                 f"{formatting.count(total)}")

    def _on_found(self, groups: list) -> None:
        self.groups = list(groups)
        self._show_state("done")
        self.show_more()

    def _on_failed(self, message: str) -> None:
        self._show_state("failed", message)

    def _on_cancelled(self) -> None:
        self._show_state("cancelled")

    def _show_state(self, state: str, message: str = "") -> None:
        self._state = state
        running = state == "running"
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.find_button.setEnabled(not running)
        self.folder_combo.setEnabled(not running)
        if running:
            self.progress.setRange(0, 0)
            self.summary.setText("Looking for photos of the same scene…")
        elif state == "done":
            self.summary.setText(self._summary_text())
        elif state == "cancelled":
            self.summary.setText("Cancelled. Nothing was changed.")
        elif state == "failed":
            self.summary.setText(f"Duplicates could not be found: {message}")
        else:
            self.summary.setText("")
        self.note.setText("VSearch never deletes photos. Reveal shows the best shot in your file manager; Copy List "
                          "of the Others puts the other photos' paths on the clipboard for your own clean-up.")
        self._update_more()

    def _summary_text(self) -> str:
        if not self.groups:
            return "No duplicates: every photo is one of a kind."
        others = sum(len(g.members) - 1 for g in self.groups)
        size = sum(m.size for g in self.groups for m in g.members[1:])
        text = (f"{formatting.plural(len(self.groups), 'group')} · {formatting.plural(others, 'photo')} besides the "
                "best shots")
        return text + (f" · {formatting.size(size)}" if size else "")

    # --- the list -------------------------------------------------------------------------------------------------

    def show_more(self) -> None:
        """Add the next GROUPS_PER_PAGE groups to the list."""
        start = len(self.cards)
        for group in self.groups[start:start + GROUPS_PER_PAGE]:
            if not group.members:
                continue
            card = GroupCard(group, self._list)
            card.revealRequested.connect(self.revealRequested)
            card.copied.connect(self._on_copied)
            self._list_layout.insertWidget(self._list_layout.count() - 2, card)
            self.cards.append(card)
            for tile in card.tiles:
                self._tiles_by_path.setdefault(tile.member.path, []).append(tile)
                self.loader.request(tile.member.path)
        self._update_more()

    def _update_more(self) -> None:
        left = len(self.groups) - len(self.cards)
        self.more_button.setVisible(self._state == "done" and left > 0)
        self.more_button.setText(f"Show {min(left, GROUPS_PER_PAGE)} More of {formatting.count(left)}")

    def _clear_groups(self) -> None:
        for card in self.cards:
            card.deleteLater()
        self.cards = []
        self.groups = []
        self._tiles_by_path = {}
        self.loader.new_generation()

    def _on_copied(self, paths: Sequence[Path]) -> None:
        self.note.setText(f"Copied {formatting.plural(len(paths), 'path')} to the clipboard. Nothing was deleted.")

    def _on_thumbnail_ready(self, path: Path) -> None:
        pixmap = self.loader.pixmap(path)
        if pixmap is not None:
            for tile in self._tiles_by_path.get(Path(path), []):
                tile.picture.set_pixmap(pixmap)

    def _on_thumbnail_failed(self, path: Path, _reason: str) -> None:
        for tile in self._tiles_by_path.get(Path(path), []):
            tile.picture.set_failed()

    def sizeHint(self) -> QSize:
        return QSize(1000, 720)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._state == "running":
            self.cancel()  # closing the window stops the work it asked for
        super().closeEvent(event)

