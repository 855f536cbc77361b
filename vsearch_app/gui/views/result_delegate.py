"""ResultDelegate: paints one search result as a photo tile: the thumbnail fitted in a square (or a placeholder while
it loads), the file name elided under it, selection and hover from the palette, the score as a badge on hover, and a
small caption mark (lines of text in a round badge, bottom-right of the photo) on a photo that its stored caption
raised because it holds the query's words.

Every colour comes from the palette (dark mode must work), mostly as blends of Base and Text so that placeholders are
a quiet tint of whatever background the theme has. It reads the model through index.data() with roles that never
return None (see gui.models.results).
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from vsearch_app.gui.models.results import (
    CAPTION_MATCHED_ROLE,
    GOOD_MATCH_ROLE,
    NAME_ROLE,
    SCORE_ROLE,
    THUMBNAIL_FAILURE_ROLE,
    THUMBNAIL_ROLE,
)

DEFAULT_THUMBNAIL_SIZE = 160  # logical pixels: the side of the square a thumbnail is fitted in
PADDING = 6  # around the square, inside the tile (the selection colour shows there)
TEXT_GAP = 4  # between the square and the name
RADIUS = 6.0  # corner radius of the tile and the placeholder
HOVER_ALPHA = 48  # the hover tint is the highlight colour, this opaque (of 255)


def blend(a: QColor, b: QColor, amount: float) -> QColor:
    """``a`` moved ``amount`` (0..1) of the way to ``b``."""
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * amount,
        a.greenF() + (b.greenF() - a.greenF()) * amount,
        a.blueF() + (b.blueF() - a.blueF()) * amount,
    )


def fit_rect(bounds: QRect, width: int, height: int) -> QRectF:
    """The largest rectangle of aspect ``width:height`` centred in ``bounds``."""
    if width <= 0 or height <= 0:
        return QRectF(bounds)
    scale = min(bounds.width() / width, bounds.height() / height)
    w, h = width * scale, height * scale
    return QRectF(bounds.x() + (bounds.width() - w) / 2, bounds.y() + (bounds.height() - h) / 2, w, h)


class ResultDelegate(QStyledItemDelegate):
    """Photo tiles of a fixed size (set_thumbnail_size); the view keeps uniform item sizes."""

    def __init__(self, parent: QWidget | None = None, thumbnail_size: int = DEFAULT_THUMBNAIL_SIZE) -> None:
        super().__init__(parent)
        self._size = thumbnail_size

    @property
    def thumbnail_size(self) -> int:
        return self._size

    def set_thumbnail_size(self, size: int) -> None:
        self._size = max(16, int(size))

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        side = self._size + 2 * PADDING
        return QSize(side, side + TEXT_GAP + option.fontMetrics.height())

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        painter.save()
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            self._paint_tile(painter, option, index)
        finally:
            painter.restore()

    # --- parts ------------------------------------------------------------------------------------------------------

    def _paint_tile(self, painter: QPainter, option: QStyleOptionViewItem,
                    index: QModelIndex | QPersistentModelIndex) -> None:
        palette = option.palette
        state = option.state
        group = QPalette.ColorGroup.Active if state & QStyle.StateFlag.State_Active else QPalette.ColorGroup.Inactive
        selected = bool(state & QStyle.StateFlag.State_Selected)
        hovered = bool(state & QStyle.StateFlag.State_MouseOver)
        highlight = palette.color(group, QPalette.ColorRole.Highlight)
        tile = QRectF(option.rect).adjusted(1, 1, -1, -1)

        if selected:
            painter.fillPath(_rounded(tile, RADIUS), highlight)
        elif hovered:
            tint = QColor(highlight)
            tint.setAlpha(HOVER_ALPHA)
            painter.fillPath(_rounded(tile, RADIUS), tint)
        if state & QStyle.StateFlag.State_HasFocus and not selected:
            painter.setPen(QPen(highlight, 1.0))
            painter.drawPath(_rounded(tile.adjusted(0.5, 0.5, -0.5, -0.5), RADIUS))

        square = QRect(option.rect.x() + PADDING, option.rect.y() + PADDING, self._size, self._size)
        pixmap = index.data(THUMBNAIL_ROLE)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            photo = fit_rect(square, pixmap.width(), pixmap.height())
            painter.drawPixmap(photo, pixmap, QRectF(pixmap.rect()))
        else:
            photo = QRectF(square)
            failed = bool(index.data(THUMBNAIL_FAILURE_ROLE))
            _paint_placeholder(painter, photo, palette, failed)

        if index.data(GOOD_MATCH_ROLE):
            _paint_good_match(painter, photo, palette, group)

        text_rect = QRect(option.rect.x() + PADDING, square.bottom() + 1 + TEXT_GAP,
                          option.rect.width() - 2 * PADDING, option.fontMetrics.height())
        name = str(index.data(NAME_ROLE))
        elided = option.fontMetrics.elidedText(name, Qt.TextElideMode.ElideMiddle, text_rect.width())
        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(palette.color(group, text_role))
        painter.setFont(option.font)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, elided)

        if index.data(CAPTION_MATCHED_ROLE) is True:
            _paint_caption_mark(painter, photo, palette, group)
        if hovered:
            _paint_score_badge(painter, photo, float(index.data(SCORE_ROLE)), option.font, palette, group)


def _rounded(rect: QRectF, radius: float) -> QPainterPath:
    path = QPainterPath()
    path.addRoundedRect(rect, radius, radius)
    return path


def _paint_placeholder(painter: QPainter, rect: QRectF, palette: QPalette, failed: bool) -> None:
    """A quiet tile with a small landscape glyph (a frame, a hill, a sun); struck through when there is no preview."""
    base = palette.color(QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorRole.Text)
    painter.fillPath(_rounded(rect, RADIUS), blend(base, text, 0.06))
    ink = blend(base, text, 0.45 if failed else 0.22)
    side = min(rect.width(), rect.height()) * 0.34
    glyph = QRectF(rect.center().x() - side / 2, rect.center().y() - side * 0.4, side, side * 0.8)
    pen = QPen(ink, max(1.5, side / 16))
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRoundedRect(glyph, side / 10, side / 10)
    hill = QPainterPath(QPointF(glyph.left(), glyph.bottom() - glyph.height() * 0.2))
    hill.lineTo(glyph.left() + glyph.width() * 0.38, glyph.top() + glyph.height() * 0.45)
    hill.lineTo(glyph.left() + glyph.width() * 0.6, glyph.top() + glyph.height() * 0.68)
    hill.lineTo(glyph.left() + glyph.width() * 0.75, glyph.top() + glyph.height() * 0.55)
    hill.lineTo(glyph.right(), glyph.bottom() - glyph.height() * 0.25)
    painter.drawPath(hill)
    sun = side * 0.09
    painter.setBrush(ink)
    painter.drawEllipse(QPointF(glyph.left() + glyph.width() * 0.72, glyph.top() + glyph.height() * 0.28), sun, sun)
    if failed:
        painter.drawLine(glyph.bottomLeft() + QPointF(-side * 0.1, side * 0.1),
                         glyph.topRight() + QPointF(side * 0.1, -side * 0.1))


def _paint_good_match(painter: QPainter, photo: QRectF, palette: QPalette, group: QPalette.ColorGroup) -> None:
    """A good match: a thin accent ring around the photo and a small check mark in its bottom-left corner."""
    accent = palette.color(group, QPalette.ColorRole.Highlight)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.setPen(QPen(accent, 2.0))
    painter.drawRoundedRect(photo.adjusted(1, 1, -1, -1), 3, 3)
    side = max(12.0, min(18.0, photo.width() * 0.12))
    badge = QRectF(photo.left() + 5, photo.bottom() - side - 5, side, side)
    painter.setPen(QPen(palette.color(group, QPalette.ColorRole.Base), 1.5))
    painter.setBrush(accent)
    painter.drawEllipse(badge)
    tick = QPainterPath(QPointF(badge.left() + side * 0.28, badge.top() + side * 0.52))
    tick.lineTo(badge.left() + side * 0.44, badge.top() + side * 0.68)
    tick.lineTo(badge.left() + side * 0.73, badge.top() + side * 0.35)
    pen = QPen(palette.color(group, QPalette.ColorRole.HighlightedText), max(1.5, side / 9))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawPath(tick)


def _paint_score_badge(painter: QPainter, photo: QRectF, score: float, font: QFont, palette: QPalette,
                       group: QPalette.ColorGroup) -> None:
    """The similarity score in a small pill at the photo's top-right corner."""
    small = QFont(font)
    small.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
    small.setBold(True)
    metrics = QFontMetrics(small)
    label = f"{score:.2f}"
    width = metrics.horizontalAdvance(label) + 10
    height = metrics.height() + 2
    badge = QRectF(photo.right() - width - 4, photo.top() + 4, width, height)
    painter.fillPath(_rounded(badge, height / 2), palette.color(group, QPalette.ColorRole.Highlight))
    painter.setPen(palette.color(group, QPalette.ColorRole.HighlightedText))
    painter.setFont(small)
    painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, label)


CAPTION_MARK_SIDE = 20.0  # logical pixels: the caption mark's diameter (shrinks on small thumbnails)


def caption_mark_rect(photo: QRectF) -> QRectF:
    """Where the caption mark sits: inside the photo's bottom-right corner (the score badge has the top right)."""
    side = min(CAPTION_MARK_SIDE, max(12.0, min(photo.width(), photo.height()) * 0.18))
    return QRectF(photo.right() - 4 - side, photo.bottom() - 4 - side, side, side)


def _paint_caption_mark(painter: QPainter, photo: QRectF, palette: QPalette, group: QPalette.ColorGroup) -> None:
    """Three lines of "text" in a round badge: this photo's caption matched the query's words."""
    mark = caption_mark_rect(photo)
    painter.setPen(QPen(palette.color(group, QPalette.ColorRole.Base), 1.2))  # a rim keeps it visible on any photo
    painter.setBrush(palette.color(group, QPalette.ColorRole.Highlight))
    painter.drawEllipse(mark)
    ink = QPen(palette.color(group, QPalette.ColorRole.HighlightedText), max(1.2, mark.width() / 12))
    ink.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(ink)
    left, width = mark.left() + mark.width() * 0.28, mark.width() * 0.44
    for row, share in enumerate((1.0, 1.0, 0.6)):  # the last line shorter, as a paragraph ends
        y = mark.top() + mark.height() * (0.34 + 0.16 * row)
        painter.drawLine(QPointF(left, y), QPointF(left + width * share, y))
