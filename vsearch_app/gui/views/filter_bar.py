"""The filter bar under the search field: when (a histogram of photos per month to drag across), which folder, which
camera, and the sort order. Plus ``ActiveFilterPill``, the "Filtered: 2019 · Pixel 7 ×" button the window shows
beside the result count, which clears every filter in one click (it stays visible when the bar is hidden).

    bar = FilterBar()
    bar.set_months(service.photo_months()); bar.set_cameras(service.cameras()); bar.set_folders(paths)
    bar.filterChanged.connect(...)   # FilterChoice (gui/models/filters.py), after every user change
    bar.sortChanged.connect(...)     # SortOrder

The bar only edits a FilterChoice; the window runs the search with it (any query, or none: browse). Months and
cameras are fetched by the controller off the GUI thread and handed in here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from vsearch_app.core.types import SortOrder
from vsearch_app.gui import formatting, icons
from vsearch_app.gui.models.filters import SORT_LABELS, FilterChoice, range_label
from vsearch_app.gui.views.month_histogram import MonthHistogram
from vsearch_app.gui.views.result_delegate import blend

_CHOOSE_SUBFOLDER = "choose-subfolder"  # the folder combo's last item: pick a folder inside a watched one
COMBO_WIDTH = 190


class FilterBar(QWidget):
    filterChanged = Signal(object)  # FilterChoice
    sortChanged = Signal(object)  # SortOrder
    notice = Signal(str)  # something to tell the user (a folder outside the library was chosen)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._choice = FilterChoice()
        self._folders: list[Path] = []
        self._cameras: list[tuple[str, int]] = []
        self._updating = False  # True while the bar fills its own combos (no signals then)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

        self.histogram = MonthHistogram(self)
        self.histogram.rangeSelected.connect(self._on_range)
        self._when = QLabel(self)
        self._when.setTextFormat(Qt.TextFormat.PlainText)
        self._clear_dates = QToolButton(self)
        self._clear_dates.setIcon(icons.icon("close"))
        self._clear_dates.setIconSize(QSize(12, 12))
        self._clear_dates.setAutoRaise(True)
        self._clear_dates.setToolTip("Any date")
        self._clear_dates.setAccessibleName("Clear the dates")
        self._clear_dates.clicked.connect(self.histogram.clear_selection)

        self.folder_combo = QComboBox(self)
        self.folder_combo.setAccessibleName("Folder")
        self.folder_combo.setMinimumContentsLength(14)
        self.folder_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.folder_combo.activated.connect(self._on_folder_activated)
        self.camera_combo = QComboBox(self)
        self.camera_combo.setAccessibleName("Camera")
        self.camera_combo.setMinimumContentsLength(14)
        self.camera_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.camera_combo.activated.connect(self._on_camera_activated)
        self.sort_combo = QComboBox(self)
        self.sort_combo.setAccessibleName("Sort")
        for order, label in SORT_LABELS.items():
            self.sort_combo.addItem(label, order.value)
        self.sort_combo.activated.connect(self._on_sort_activated)

        when_row = QHBoxLayout()
        when_row.setContentsMargins(0, 0, 0, 0)
        when_row.setSpacing(2)
        when_row.addWidget(_caption("Taken", self))
        when_row.addSpacing(6)
        when_row.addWidget(self._when)
        when_row.addWidget(self._clear_dates)
        when_row.addStretch(1)
        dates = QVBoxLayout()
        dates.setContentsMargins(0, 0, 0, 0)
        dates.setSpacing(2)
        dates.addLayout(when_row)
        dates.addWidget(self.histogram)

        choices = QGridLayout()
        choices.setContentsMargins(0, 0, 0, 0)
        choices.setHorizontalSpacing(8)
        choices.setVerticalSpacing(6)
        for row, (label, combo) in enumerate((("Folder", self.folder_combo), ("Camera", self.camera_combo))):
            choices.addWidget(_caption(label, self), row, 0, Qt.AlignmentFlag.AlignRight)
            choices.addWidget(combo, row, 1)
        choices.addWidget(_caption("Sort", self), 0, 2, Qt.AlignmentFlag.AlignRight)
        choices.addWidget(self.sort_combo, 0, 3)
        for combo in (self.folder_combo, self.camera_combo, self.sort_combo):
            combo.setFixedWidth(COMBO_WIDTH if combo is not self.sort_combo else COMBO_WIDTH - 50)

        row = QHBoxLayout(self)
        row.setContentsMargins(16, 6, 14, 8)
        row.setSpacing(18)
        row.addLayout(dates, 1)
        row.addLayout(choices, 0)
        self._fill_folders()
        self._fill_cameras()
        self._show_when()

    # --- what the engine knows (from the controller) --------------------------------------------------------------

    def set_months(self, months: list[tuple[str, int]]) -> None:
        self.histogram.set_months(months)
        self._show_when()

    def set_cameras(self, cameras: list[tuple[str, int]]) -> None:
        self._cameras = [(str(name), int(n)) for name, n in cameras if name]
        self._fill_cameras()

    def set_folders(self, folders: list[Path]) -> None:
        self._folders = [Path(f) for f in folders]
        self._fill_folders()

    def folders(self) -> list[Path]:
        """The watched folders, as last set."""
        return list(self._folders)

    # --- the choice -----------------------------------------------------------------------------------------------

    def choice(self) -> FilterChoice:
        return self._choice

    def set_choice(self, choice: FilterChoice) -> None:
        """Show ``choice`` (no signal)."""
        self._choice = choice
        self.histogram.set_selection(choice.first_month, choice.last_month)
        self._fill_folders()
        self._fill_cameras()
        self._show_when()

    def clear(self) -> None:
        """Clear every filter, as the user would (``filterChanged`` when something was set)."""
        if not self._choice.is_empty:
            self.set_choice(FilterChoice())
            self.filterChanged.emit(self._choice)

    def sort(self) -> SortOrder:
        return SortOrder(self.sort_combo.currentData())

    def set_sort(self, order: SortOrder) -> None:
        """Show ``order`` (no signal)."""
        self.sort_combo.setCurrentIndex(max(0, self.sort_combo.findData(SortOrder(order).value)))

    def choose_month_range(self, first: str | None, last: str | None) -> None:
        """Select months as a drag on the histogram would (``filterChanged``)."""
        self.histogram.set_selection(first, last)
        self._on_range(self.histogram.selection())

    def choose_folder(self, folder: Path | None) -> None:
        self._change(dataclasses.replace(self._choice, folder=Path(folder) if folder is not None else None))
        self._fill_folders()

    def choose_camera(self, camera: str | None) -> None:
        self._change(dataclasses.replace(self._choice, camera=camera or None))
        self._fill_cameras()

    def choose_sort(self, order: SortOrder) -> None:
        self.set_sort(order)
        self.sortChanged.emit(self.sort())

    # --- user actions ---------------------------------------------------------------------------------------------

    def _on_range(self, selection: tuple[str, str] | None) -> None:
        first, last = selection if selection is not None else (None, None)
        self._change(self._choice.with_months(first, last))

    def _on_folder_activated(self, index: int) -> None:
        data = self.folder_combo.itemData(index)
        if data == _CHOOSE_SUBFOLDER:
            self._fill_folders()  # back to the current choice while the dialog is open (or cancelled)
            self._pick_subfolder()
            return
        self.choose_folder(Path(data) if data else None)

    def _pick_subfolder(self) -> None:
        start = self._choice.folder or (self._folders[0] if self._folders else Path.home())
        chosen = QFileDialog.getExistingDirectory(self, "Show photos in this folder", str(start))
        if not chosen:
            return
        folder = Path(chosen)
        if not any(folder == root or folder.is_relative_to(root) for root in self._folders):
            self.notice.emit(f"{folder} is not in a watched folder: add it to your library first")
            return
        self.choose_folder(folder)

    def _on_camera_activated(self, index: int) -> None:
        self.choose_camera(self.camera_combo.itemData(index) or None)

    def _on_sort_activated(self, _index: int) -> None:
        self.sortChanged.emit(self.sort())

    def _change(self, choice: FilterChoice) -> None:
        if choice != self._choice:
            self._choice = choice
            self._show_when()
            self.filterChanged.emit(choice)

    # --- filling the controls -------------------------------------------------------------------------------------

    def _fill_folders(self) -> None:
        combo = self.folder_combo
        combo.clear()
        combo.addItem(icons.icon("folder"), "All folders", "")
        folders = list(self._folders)
        chosen = self._choice.folder
        if chosen is not None and chosen not in folders:
            folders.append(chosen)  # a subfolder (or a folder no longer watched) stays visible while chosen
        for folder in folders:
            combo.addItem(icons.icon("folder"), folder.name or str(folder), str(folder))
            combo.setItemData(combo.count() - 1, str(folder), Qt.ItemDataRole.ToolTipRole)
        combo.insertSeparator(combo.count())
        combo.addItem("Choose a Subfolder…", _CHOOSE_SUBFOLDER)
        combo.setCurrentIndex(max(0, combo.findData(str(chosen))) if chosen is not None else 0)

    def _fill_cameras(self) -> None:
        combo = self.camera_combo
        combo.clear()
        combo.addItem("Any camera", "")
        cameras = list(self._cameras)
        chosen = self._choice.camera
        if chosen and all(name != chosen for name, _ in cameras):
            cameras.append((chosen, 0))
        for name, n in cameras:
            combo.addItem(f"{name}  ({formatting.count(n)})" if n else name, name)
        combo.setEnabled(bool(cameras))
        combo.setToolTip("" if cameras else "No photo says which camera took it")
        combo.setCurrentIndex(max(0, combo.findData(chosen)) if chosen else 0)

    def _show_when(self) -> None:
        choice = self._choice
        if choice.has_dates:
            self._when.setText(range_label(choice.first_month, choice.last_month))
            self._when.setForegroundRole(QPalette.ColorRole.Highlight)
        else:
            total = self.histogram.total
            self._when.setText(f"Any time · {formatting.plural(total, 'photo')}" if total else "Any time")
            self._when.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self._clear_dates.setVisible(choice.has_dates)


def _caption(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    font = label.font()
    font.setWeight(QFont.Weight.DemiBold)
    label.setFont(font)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


class ActiveFilterPill(QAbstractButton):
    """ "Filtered: 2019 · Pixel 7 ×": shows what is filtered; a click clears it (the window connects ``clicked``)."""

    PADDING = 10
    CLOSE_SIDE = 10

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Clear the filter")
        self.setAccessibleName("Clear the filter")
        self.setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.hide()

    def set_choice(self, choice: FilterChoice) -> None:
        self.setText(f"Filtered: {choice.label()}" if not choice.is_empty else "")
        self.setVisible(not choice.is_empty)
        self.updateGeometry()

    def sizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        return QSize(metrics.horizontalAdvance(self.text()) + 3 * self.PADDING + self.CLOSE_SIDE,
                     metrics.height() + 6)

    def paintEvent(self, event: QPaintEvent) -> None:
        palette = self.palette()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        highlight = palette.color(QPalette.ColorRole.Highlight)
        fill = QColor(highlight)
        fill.setAlpha(70 if self.underMouse() else 38)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
        ink = blend(palette.color(QPalette.ColorRole.WindowText), highlight, 0.55)
        painter.setPen(ink)
        text_rect = QRectF(self.PADDING, 0, self.width() - 2 * self.PADDING - self.CLOSE_SIDE, self.height())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, self.text())
        side = self.CLOSE_SIDE
        icon = icons.icon("close").pixmap(QSize(side, side), self.devicePixelRatioF())
        painter.drawPixmap(QRectF(self.width() - self.PADDING - side, (self.height() - side) / 2, side, side), icon,
                           QRectF(icon.rect()))
