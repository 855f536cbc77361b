"""Hits that their stored caption raised (issue 13, caption fusion): the grid marks them and the tooltip says why."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QPoint, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QMainWindow

from vsearch_app.core.types import SearchHit
from vsearch_app.gui.models.results import CAPTION_MATCHED_ROLE, ResultsModel
from vsearch_app.gui.views.result_delegate import PADDING, caption_mark_rect, fit_rect
from vsearch_app.gui.views.results_view import ResultsView

DECORATION = Qt.ItemDataRole.DecorationRole


class CaptionedHits:
    """Made-up hits: every third one raised by its caption, the others captioned or not."""

    def __init__(self, total: int, paths: list[Path] | None = None) -> None:
        self.total, self.paths = total, paths

    def __call__(self, offset: int, count: int) -> list[SearchHit]:
        return [self.hit(i) for i in range(offset, min(self.total, offset + count))]

    def hit(self, i: int) -> SearchHit:
        path = self.paths[i] if self.paths else Path(f"/library/photo_{i:03d}.jpg")
        matched = i % 3 == 0
        caption = f"Zorblax on the beach, photo {i}" if matched else ("a quiet street" if i % 3 == 1 else "")
        return SearchHit(path, 0.5 - i / 100, caption=caption, caption_matched=matched)


def test_the_roles_and_the_tooltip_say_which_caption_matched(qtbot):
    model = ResultsModel()
    model.set_results(CaptionedHits(6), 6)
    assert [model.data(model.index(row, 0), CAPTION_MATCHED_ROLE) for row in range(6)] == [True, False, False] * 2
    matched, other, bare = (model.itemData(model.index(row, 0)) for row in (3, 4, 5))
    assert matched[Qt.ItemDataRole.ToolTipRole].splitlines() == [
        "/library/photo_003.jpg", "Score 0.470", "Caption matches your words: “Zorblax on the beach, photo 3”"]
    assert other[Qt.ItemDataRole.ToolTipRole].splitlines()[-1] == "“a quiet street”"
    assert bare[Qt.ItemDataRole.ToolTipRole].splitlines() == ["/library/photo_005.jpg", "Score 0.450"]


def _near(a: QColor, b: QColor, tolerance: int = 40) -> bool:
    return all(abs(x - y) < tolerance for x, y in zip(a.getRgb()[:3], b.getRgb()[:3], strict=True))


def test_the_grid_marks_only_the_raised_hits(qtbot):
    model = ResultsModel()
    model.set_results(CaptionedHits(12), 12)
    view = ResultsView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.resize(900, 600)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: view.visualRect(model.index(5, 0)).isValid())
    image = view.viewport().grab().toImage()
    highlight = view.palette().color(QPalette.ColorGroup.Active, QPalette.ColorRole.Highlight)
    for row in range(6):
        tile = view.visualRect(model.index(row, 0))
        mark = caption_mark_rect(QRectF(tile.left() + PADDING, tile.top() + PADDING, view.thumbnail_size,
                                        view.thumbnail_size))  # no thumbnails: the placeholder fills the square
        # Inside the badge, above its first line of "text": the badge's fill.
        probe = QPoint(round(mark.center().x()), round(mark.top() + mark.height() * 0.18))
        assert _near(image.pixelColor(probe), highlight) == (row % 3 == 0), row


def test_screenshot_of_marked_photos(qtbot, make_loader, photos, thumbnail_cache, tmp_path):
    loader = make_loader(thumbnail_cache.get)
    model = ResultsModel(loader)
    model.set_results(CaptionedHits(len(photos), photos), len(photos))
    window = QMainWindow()
    qtbot.addWidget(window)
    view = ResultsView()
    view.setModel(model)
    window.setCentralWidget(view)
    window.resize(1000, 500)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: view.visible_rows() is not None)
    first, last = view.visible_rows()
    qtbot.waitUntil(lambda: all(not model.itemData(model.index(r, 0))[DECORATION].isNull()
                                for r in range(first, last + 1)), timeout=30_000)
    shot = window.grab()
    path = Path(os.environ.get("VSEARCH_SCREENSHOT_DIR", tmp_path)) / "grid-caption-marks.png"
    assert shot.save(str(path))
    # On real photos too, the first tile (raised) carries the badge and the second does not.
    highlight = view.palette().color(QPalette.ColorGroup.Active, QPalette.ColorRole.Highlight)
    offset = view.viewport().mapTo(window, QPoint(0, 0))
    image = shot.toImage()
    ratio = shot.devicePixelRatio()
    for row, marked in ((0, True), (1, False), (3, True)):
        tile = view.visualRect(model.index(row, 0))
        pixmap = model.itemData(model.index(row, 0))[DECORATION]
        square = QRect(tile.left() + PADDING, tile.top() + PADDING, view.thumbnail_size, view.thumbnail_size)
        mark = caption_mark_rect(fit_rect(square, pixmap.width(), pixmap.height()))
        probe = QPoint(round(mark.center().x()), round(mark.top() + mark.height() * 0.18)) + offset
        colour = image.pixelColor(round(probe.x() * ratio), round(probe.y() * ratio))
        assert _near(colour, highlight) == marked, (row, colour.name())
