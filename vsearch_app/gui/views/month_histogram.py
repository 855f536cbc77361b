"""MonthHistogram: photos per month as small bars; drag across it to choose a date range.

    histogram = MonthHistogram()
    histogram.set_months([("2019-06", 120), ("2019-07", 4), ...])   # LibraryService.photo_months()
    histogram.rangeSelected.connect(...)                            # ("2019-06", "2019-08") after a drag; None: cleared
    histogram.set_selection("2019-01", "2019-12")                   # from the window (no signal)

Readable with one month or thirty years: the months from the first to the last photo are grouped into bins of 1,
3, 6, 12, 24, 60 or 120 months, the smallest size whose bars are still MIN_BAR_WIDTH wide; a bar is never wider than
MAX_BAR_WIDTH (a single month is one calm bar in the middle, not a slab). Year labels go under the bars where they
fit. Heights are the square root of the count: a photo library has a few months with thousands of photos (holidays)
and many with a handful, and on a linear scale those would be invisible.

A drag selects whole bins; a click selects one bin; Esc or a right click clears. Colours are palette roles only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QHelpEvent, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from vsearch_app.gui import formatting
from vsearch_app.gui.models.filters import month_index, month_label, month_of, range_label
from vsearch_app.gui.views.result_delegate import blend

BIN_SIZES = (1, 3, 6, 12, 24, 60, 120)  # months per bar
MIN_BAR_WIDTH = 4.0
MAX_BAR_WIDTH = 22.0
BAR_GAP = 0.22  # of a bar's slot, left empty between bars (none below 3 px: the bars then read as an area)
BARS_HEIGHT = 34
LABEL_GAP = 3
MIN_WIDTH = 160


@dataclass(frozen=True)
class Bin:
    first: int  # month_index of its first month
    months: int  # how many months it spans
    count: int  # photos in it

    @property
    def last(self) -> int:
        return self.first + self.months - 1

    @property
    def label(self) -> str:
        return range_label(month_of(self.first), month_of(self.last))


def make_bins(counts: dict[int, int], width: float) -> list[Bin]:
    """The months from the first to the last with photos, grouped into the smallest bin size that gives each bar
    MIN_BAR_WIDTH in ``width`` pixels (the largest size when none does)."""
    if not counts:
        return []
    low, high = min(counts), max(counts)
    for size in BIN_SIZES:
        start = low - low % size  # aligned: quarters start in Jan/Apr/..., years in January
        bins = (high - start) // size + 1
        if bins * MIN_BAR_WIDTH <= width or size == BIN_SIZES[-1]:
            break
    return [Bin(first, size, sum(counts.get(m, 0) for m in range(first, first + size)))
            for first in range(start, high + 1, size)]


class MonthHistogram(QWidget):
    rangeSelected = Signal(object)  # (first_month, last_month) as "YYYY-MM", inclusive; None when cleared

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._counts: dict[int, int] = {}
        self._bins: list[Bin] = []
        self._selection: tuple[int, int] | None = None  # month indexes, inclusive
        self._anchor: Bin | None = None  # where a drag began
        self._hover: int | None = None  # bin under the mouse
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setAccessibleName("Photos per month")
        self.setToolTip("Drag across the bars to show photos from those months")

    # --- data -----------------------------------------------------------------------------------------------------

    def set_months(self, months: list[tuple[str, int]]) -> None:
        """Photo counts per "YYYY-MM" (any order); months that do not parse are ignored."""
        counts: dict[int, int] = {}
        for month, n in months:
            try:
                counts[month_index(str(month))] = counts.get(month_index(str(month)), 0) + int(n)
            except ValueError:
                continue
        self._counts = {m: n for m, n in counts.items() if n > 0}
        self._relayout()

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def bins(self) -> list[Bin]:
        return list(self._bins)

    def selection(self) -> tuple[str, str] | None:
        if self._selection is None:
            return None
        return month_of(self._selection[0]), month_of(self._selection[1])

    def set_selection(self, first: str | None, last: str | None) -> None:
        """Show a range chosen elsewhere (no signal); None clears."""
        if first is None or last is None:
            self._selection = None
        else:
            a, b = sorted((month_index(first), month_index(last)))
            self._selection = (a, b)
        self.update()

    def clear_selection(self) -> None:
        """Clear the range as the user would (``rangeSelected(None)`` when there was one)."""
        if self._selection is not None:
            self._selection = None
            self.update()
            self.rangeSelected.emit(None)

    # --- geometry -------------------------------------------------------------------------------------------------

    def sizeHint(self) -> QSize:
        return QSize(320, BARS_HEIGHT + LABEL_GAP + self.fontMetrics().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(MIN_WIDTH, self.sizeHint().height())

    def bar_rect(self, i: int) -> QRectF:
        """The slot of bin ``i`` (full height of the bar area), in widget coordinates."""
        slot, left = self._slot()
        return QRectF(left + i * slot, 0, slot, BARS_HEIGHT)

    def _slot(self) -> tuple[float, float]:
        """A bin's width and the x of the first one (bars are centred when capped at MAX_BAR_WIDTH)."""
        if not self._bins:
            return 0.0, 0.0
        slot = min(MAX_BAR_WIDTH, self.width() / len(self._bins))
        return slot, (self.width() - slot * len(self._bins)) / 2

    def _bin_at(self, x: float) -> int | None:
        slot, left = self._slot()
        if not self._bins or slot <= 0:
            return None
        i = math.floor((x - left) / slot)
        return max(0, min(len(self._bins) - 1, i))

    def _relayout(self) -> None:
        self._bins = make_bins(self._counts, max(1, self.width()))
        self._hover = None
        self.updateGeometry()
        self.update()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._relayout()

    # --- mouse and keys -------------------------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.RightButton:
            self.clear_selection()
            return
        i = self._bin_at(event.position().x())
        if event.button() != Qt.MouseButton.LeftButton or i is None:
            return super().mousePressEvent(event)
        self._anchor = self._bins[i]
        self._select_between(self._anchor, self._bins[i])

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        i = self._bin_at(event.position().x())
        if self._anchor is not None and i is not None:
            self._select_between(self._anchor, self._bins[i])
        if i != self._hover:
            self._hover = i
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._anchor is None or event.button() != Qt.MouseButton.LeftButton:
            return super().mouseReleaseEvent(event)
        self._anchor = None
        self.rangeSelected.emit(self.selection())

    def leaveEvent(self, event: QEvent) -> None:
        self._hover = None
        self.update()
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Escape, Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self._selection:
            self.clear_selection()
            return
        super().keyPressEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent) and self._bins:
            i = self._bin_at(event.pos().x())
            if i is not None:
                b = self._bins[i]
                QToolTip.showText(event.globalPos(), f"{b.label}: {formatting.plural(b.count, 'photo')}", self)
                return True
        return super().event(event)

    def _select_between(self, a: Bin, b: Bin) -> None:
        selection = (min(a.first, b.first), max(a.last, b.last))
        if selection != self._selection:
            self._selection = selection
            self.update()

    # --- painting -------------------------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        muted = palette.color(QPalette.ColorRole.PlaceholderText)
        if not self._bins:
            painter.setPen(muted)
            painter.drawText(QRectF(0, 0, self.width(), BARS_HEIGHT), Qt.AlignmentFlag.AlignCenter,
                             "No photo dates yet")
            return
        highlight = palette.color(QPalette.ColorRole.Highlight)
        plain, dimmed = blend(base, text, 0.42), blend(base, text, 0.2)
        slot, _left = self._slot()
        gap = slot * BAR_GAP if slot >= 3 else 0.0
        peak = max(b.count for b in self._bins) or 1
        painter.setPen(Qt.PenStyle.NoPen)
        for i, b in enumerate(self._bins):
            rect = self.bar_rect(i)
            selected = self._selection is not None and b.first <= self._selection[1] and b.last >= self._selection[0]
            color = highlight if selected else (dimmed if self._selection is not None else plain)
            if i == self._hover and not selected:
                color = blend(color, highlight, 0.5)
            if selected and self._selection is not None:  # the selected span gets a soft band behind its bars
                band = QColor(highlight)
                band.setAlpha(40)
                painter.fillRect(rect, band)
            if b.count:
                height = max(2.0, math.sqrt(b.count / peak) * (BARS_HEIGHT - 2))
                bar = QRectF(rect.left() + gap / 2, BARS_HEIGHT - height, max(1.0, rect.width() - gap), height)
                radius = min(2.0, bar.width() / 2)
                painter.setBrush(color)
                painter.drawRoundedRect(bar, radius, radius)
        painter.setPen(blend(base, text, 0.25))
        first, last = self.bar_rect(0), self.bar_rect(len(self._bins) - 1)
        painter.drawLine(QPointF(first.left(), BARS_HEIGHT + 0.5), QPointF(last.right(), BARS_HEIGHT + 0.5))
        self._paint_labels(painter, muted)

    def _paint_labels(self, painter: QPainter, color: QColor) -> None:
        """Years under the bars where a year starts (months too when the bins are months of one or two years);
        a label is left out where it would run into the previous one."""
        metrics = QFontMetrics(self.font())
        top = BARS_HEIGHT + LABEL_GAP
        painter.setPen(color)
        painter.setFont(self.font())
        if len(self._bins) == 1:
            label = self._bins[0].label if self._bins[0].months > 1 else month_label(month_of(self._bins[0].first))
            painter.drawText(QRectF(0, top, self.width(), metrics.height()), Qt.AlignmentFlag.AlignHCenter, label)
            return
        span_years = (self._bins[-1].last // 12) - (self._bins[0].first // 12)
        right_edge = -1e9
        for i, b in enumerate(self._bins):
            if b.first % 12 == 0 or i == 0:
                label = str(b.first // 12)
            elif b.months == 1 and span_years <= 1 and b.first % 3 == 0:
                label = month_label(month_of(b.first)).split()[0]
            else:
                continue
            x = self.bar_rect(i).left()
            width = metrics.horizontalAdvance(label)
            if x < right_edge + 6 or x + width > self.width():
                continue
            painter.drawText(QRectF(x, top, width + 2, metrics.height()), Qt.AlignmentFlag.AlignLeft, label)
            right_edge = x + width
