"""The results grid: a paged model over 100,000 hits, thumbnails replacing placeholders, drag-out data that only
copies, the keyboard and context-menu signals, palette-driven painting, and a screenshot of a real grid."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QMimeData, QModelIndex, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QContextMenuEvent, QHoverEvent, QPalette
from PySide6.QtWidgets import QApplication, QMainWindow, QStyleOptionViewItem

from vsearch_app.core.types import SearchHit
from vsearch_app.errors import VSearchError
from vsearch_app.gui.models.results import (
    MIME_TYPE,
    PATH_ROLE,
    SCORE_ROLE,
    ResultsModel,
    paths_from_mime_data,
)
from vsearch_app.gui.views import results_view as results_view_module
from vsearch_app.gui.views.result_delegate import PADDING, blend, fit_rect
from vsearch_app.gui.views.results_view import MIN_GAP, ResultsView

DECORATION = Qt.ItemDataRole.DecorationRole


class FakeHits:
    """A page source over ``total`` made-up hits, recording every (offset, count) it is asked for."""

    def __init__(self, total: int, paths: list[Path] | None = None) -> None:
        self.total = total
        self.paths = paths
        self.calls: list[tuple[int, int]] = []

    def __call__(self, offset: int, count: int) -> list[SearchHit]:
        self.calls.append((offset, count))
        end = min(self.total, offset + count)
        return [SearchHit(self._path(i), 1.0 - i / self.total) for i in range(offset, end)]

    def _path(self, i: int) -> Path:
        return self.paths[i] if self.paths else Path(f"/library/photo_{i:06d}.jpg")


@pytest.fixture
def grid(qtbot):
    """grid(model) -> a shown ResultsView of 900 x 600 holding ``model``."""

    def make(model: ResultsModel, size: tuple[int, int] = (900, 600)) -> ResultsView:
        view = ResultsView()
        qtbot.addWidget(view)
        view.setModel(model)
        view.resize(*size)
        view.show()
        qtbot.waitExposed(view)
        return view

    return make


def _select(view: ResultsView, *rows: int) -> None:
    model = view.model()
    view.setCurrentIndex(model.index(rows[0], 0))
    selection = view.selectionModel()
    for row in rows:
        selection.select(model.index(row, 0), selection.SelectionFlag.Select)


# --- paging ---------------------------------------------------------------------------------------------------------


def test_100k_hits_are_read_a_page_at_a_time(qtbot, grid):
    source = FakeHits(100_000)
    model = ResultsModel()
    model.set_results(source, source.total)
    assert (model.rowCount(), model.total, source.calls) == (1000, 100_000, [(0, 1000)])
    view = grid(model)
    qtbot.waitUntil(lambda: view.visualRect(model.index(0, 0)).isValid())  # the first page is on screen
    assert view.visible_rows()[0] == 0
    bar = view.verticalScrollBar()
    for _ in range(2):
        before = model.rowCount()
        qtbot.waitUntil(lambda: bar.maximum() > bar.value())  # the rows loaded so far are laid out
        view.scrollToBottom()  # reaching the end of what is loaded asks for more (a page or two per scroll)
        qtbot.waitUntil(lambda before=before: model.rowCount() > before)
    assert 3000 <= model.rowCount() <= 5000  # a few thousand rows, never the 100,000
    assert source.calls == [(offset, 1000) for offset in range(0, model.rowCount(), 1000)]  # consecutive pages
    assert model.canFetchMore(QModelIndex())
    assert model.hit(2999).path == Path("/library/photo_002999.jpg")


def test_a_source_with_fewer_hits_than_announced_stops_paging(qtbot):
    model = ResultsModel(page_size=100)
    model.set_results(FakeHits(150), 1000)
    model.fetchMore(QModelIndex())
    assert model.rowCount() == 150 and model.total == 150
    assert not model.canFetchMore(QModelIndex())


def test_a_page_that_cannot_be_read_is_reported_and_keeps_the_rows(qtbot):
    pages = FakeHits(5000)

    def failing(offset: int, count: int) -> list[SearchHit]:
        if offset:
            raise VSearchError("the library was closed")
        return pages(offset, count)

    model = ResultsModel()
    model.set_results(failing, 5000)
    with qtbot.waitSignal(model.fetchFailed) as blocker:
        model.fetchMore(QModelIndex())
    assert blocker.args == ["the library was closed"]
    assert model.rowCount() == 1000 and not model.canFetchMore(QModelIndex())


def test_roles_for_display_tooltip_path_and_score(qtbot):
    model = ResultsModel()
    model.set_results(FakeHits(10), 10)
    data = model.itemData(model.index(2, 0))
    assert data[Qt.ItemDataRole.DisplayRole] == "photo_000002.jpg"
    assert data[Qt.ItemDataRole.ToolTipRole].splitlines() == ["/library/photo_000002.jpg", "Score 0.800"]
    assert data[DECORATION].isNull()  # no loader: the placeholder, as a null pixmap, never None
    assert model.data(model.index(2, 0), PATH_ROLE) == Path("/library/photo_000002.jpg")
    assert model.data(model.index(2, 0), SCORE_ROLE) == pytest.approx(0.8)
    model.clear()
    assert model.rowCount() == 0 and not model.canFetchMore(QModelIndex())


# --- thumbnails -----------------------------------------------------------------------------------------------------


def test_a_placeholder_then_the_real_thumbnail(qtbot, grid, make_loader, photos, thumbnail_cache):
    loader = make_loader(thumbnail_cache.get)
    model = ResultsModel(loader)
    model.set_results(FakeHits(len(photos), photos), len(photos))
    first = model.index(0, 0)
    assert model.itemData(first)[DECORATION].isNull()
    view = grid(model)
    assert loader.side == math.ceil(view.thumbnail_size * view.devicePixelRatioF())
    qtbot.waitUntil(lambda: not model.itemData(first)[DECORATION].isNull(), timeout=20_000)
    pixmap = model.itemData(first)[DECORATION]
    assert max(pixmap.width(), pixmap.height()) == loader.side
    last_visible = view.visible_rows()[1]
    qtbot.waitUntil(lambda: not model.itemData(model.index(last_visible, 0))[DECORATION].isNull(), timeout=20_000)


def test_visible_rows_follow_the_scrolling(qtbot, grid):
    model = ResultsModel()
    model.set_results(FakeHits(5000), 5000)
    view = grid(model)
    qtbot.waitUntil(lambda: view.visible_rows() is not None)
    first, last = view.visible_rows()
    assert first == 0 and 0 < last < 100
    view.scrollTo(model.index(600, 0), ResultsView.ScrollHint.PositionAtTop)
    qtbot.waitUntil(lambda: view.visible_rows()[0] > 0)
    first, last = view.visible_rows()
    assert first <= 600 <= last


def test_a_new_query_drops_the_old_querys_thumbnails_in_flight(qtbot, make_loader, photos, thumbnail_cache):
    loader = make_loader(thumbnail_cache.get)
    model = ResultsModel(loader)
    model.set_results(FakeHits(20, photos[:20]), 20)
    generation = loader.generation
    model.set_results(FakeHits(20, photos[20:]), 20)
    assert loader.generation > generation


# --- drag out -------------------------------------------------------------------------------------------------------


def test_mime_data_carries_file_urls_and_exact_paths(qtbot):
    odd = Path(os.fsdecode(b"/library/caf\xe9 night.jpg")) if os.name == "posix" else Path("C:/library/cafe.jpg")
    paths = [Path("/library/a b.jpg"), odd, Path("/library/été.jpg")]
    model = ResultsModel()
    model.set_results(lambda offset, count: [SearchHit(p, 0.5) for p in paths][offset:offset + count], 3)
    mime = model.mimeData([model.index(2, 0), model.index(0, 0), model.index(1, 0)])
    assert mime.hasUrls() and all(url.isLocalFile() for url in mime.urls())
    assert mime.hasFormat(MIME_TYPE)
    assert paths_from_mime_data(mime) == paths  # row order, exact bytes
    urls_only = QMimeData()
    urls_only.setUrls(mime.urls())
    assert paths_from_mime_data(urls_only) == paths  # what a file manager would read


def test_drags_out_of_the_view_only_copy(qtbot, grid, monkeypatch):
    executed: list[tuple] = []

    class RecordingDrag:
        def __init__(self, source):
            self.mime = None

        def setMimeData(self, mime):
            self.mime = mime

        def setPixmap(self, pixmap):
            pass

        def exec(self, *actions):
            executed.append((actions, paths_from_mime_data(self.mime)))
            return Qt.DropAction.CopyAction

    monkeypatch.setattr(results_view_module, "QDrag", RecordingDrag)
    model = ResultsModel()
    model.set_results(FakeHits(50), 50)
    view = grid(model)
    assert model.supportedDragActions() == Qt.DropAction.CopyAction
    assert view.defaultDropAction() == Qt.DropAction.CopyAction
    _select(view, 3, 5)
    view.startDrag(Qt.DropAction.CopyAction | Qt.DropAction.MoveAction)  # even when asked to allow a move
    assert executed == [((Qt.DropAction.CopyAction, Qt.DropAction.CopyAction),
                         [model.hit(3).path, model.hit(5).path])]


# --- keyboard and context menu --------------------------------------------------------------------------------------


def test_enter_opens_the_selection_and_space_previews_the_current(qtbot, grid):
    model = ResultsModel()
    model.set_results(FakeHits(50), 50)
    view = grid(model)
    _select(view, 1, 3)
    with qtbot.waitSignal(view.openRequested) as opened:
        qtbot.keyClick(view, Qt.Key.Key_Return)
    assert opened.args == [[model.hit(1).path, model.hit(3).path]]
    with qtbot.waitSignal(view.previewRequested) as previewed:
        qtbot.keyClick(view, Qt.Key.Key_Space)
    assert previewed.args == [model.hit(1).path]


def test_double_click_opens_the_photo(qtbot, grid):
    model = ResultsModel()
    model.set_results(FakeHits(50), 50)
    view = grid(model)
    qtbot.waitUntil(lambda: view.visualRect(model.index(4, 0)).isValid())
    centre = view.visualRect(model.index(4, 0)).center()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    with qtbot.waitSignal(view.openRequested) as opened:
        qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert opened.args == [[model.hit(4).path]]


def test_the_menu_key_and_a_right_click_ask_for_a_context_menu(qtbot, grid):
    model = ResultsModel()
    model.set_results(FakeHits(50), 50)
    view = grid(model)
    _select(view, 2, 6)
    with qtbot.waitSignal(view.contextMenuRequested) as by_key:
        qtbot.keyClick(view, Qt.Key.Key_Menu)
    assert by_key.args[0] == [model.hit(2).path, model.hit(6).path]
    assert isinstance(by_key.args[1], QPoint)

    qtbot.waitUntil(lambda: view.visualRect(model.index(9, 0)).isValid())
    where = view.visualRect(model.index(9, 0)).center()
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, where, view.viewport().mapToGlobal(where))
    with qtbot.waitSignal(view.contextMenuRequested) as by_mouse:
        view.contextMenuEvent(event)
    assert by_mouse.args == [[model.hit(9).path], view.viewport().mapToGlobal(where)]  # row 9 alone is selected now


# --- painting -------------------------------------------------------------------------------------------------------


def _brightness(colour: QColor) -> float:
    return (colour.red() + colour.green() + colour.blue()) / 3


@pytest.mark.parametrize("dark", [False, True])
def test_placeholders_are_painted_in_the_palettes_colours(qtbot, grid, dark):
    model = ResultsModel()
    model.set_results(FakeHits(30), 30)
    view = grid(model)
    palette = QPalette(view.palette())
    base, text = (QColor(30, 30, 32), QColor(230, 230, 230)) if dark else (QColor(255, 255, 255), QColor(20, 20, 20))
    for role, colour in ((QPalette.ColorRole.Base, base), (QPalette.ColorRole.Text, text)):
        palette.setColor(role, colour)
    view.setPalette(palette)
    qtbot.waitUntil(lambda: view.visualRect(model.index(1, 0)).isValid())
    image = view.viewport().grab().toImage()
    tile = view.visualRect(model.index(1, 0))
    placeholder = image.pixelColor(tile.left() + 12, tile.top() + 12)
    background = image.pixelColor(tile.left() - 2, tile.top() + 12)
    assert placeholder != background  # the placeholder is visible ...
    assert abs(_brightness(placeholder) - _brightness(base)) < 40  # ... as a quiet tint of the theme's background


def test_the_columns_fill_the_width(qtbot, grid):
    model = ResultsModel()
    model.set_results(FakeHits(60), 60)
    view = grid(model)
    tile = view.itemDelegate().sizeHint(QStyleOptionViewItem(), model.index(0, 0)).width()
    for width in (500, 799, 800, 801, 1013):
        view.resize(width, 600)
        expected = (view.viewport().width() - 2) // (tile + MIN_GAP)
        qtbot.waitUntil(lambda expected=expected: len({view.visualRect(model.index(i, 0)).x() for i in range(20)})
                        == expected)
        right_edge = max(view.visualRect(model.index(i, 0)).right() for i in range(20))
        assert view.viewport().width() - right_edge < tile  # no ragged strip on the right


def test_tile_geometry_helpers():
    from PySide6.QtCore import QRect

    assert fit_rect(QRect(0, 0, 100, 100), 200, 100).getRect() == (0.0, 25.0, 100.0, 50.0)
    assert fit_rect(QRect(0, 0, 100, 100), 50, 100).getRect() == (25.0, 0.0, 50.0, 100.0)
    assert blend(QColor(0, 0, 0), QColor(255, 255, 255), 0.5).red() in (127, 128)


def test_screenshot_of_a_grid_of_forty_photos(qtbot, make_loader, photos, thumbnail_cache, tmp_path):
    loader = make_loader(thumbnail_cache.get)
    model = ResultsModel(loader)
    model.set_results(FakeHits(len(photos), photos), len(photos))
    window = QMainWindow()
    qtbot.addWidget(window)
    view = ResultsView()
    view.setModel(model)
    window.setCentralWidget(view)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: view.visible_rows() is not None)
    first, last = view.visible_rows()
    rows = range(first, last + 1)
    qtbot.waitUntil(lambda: all(not model.itemData(model.index(r, 0))[DECORATION].isNull() for r in rows),
                    timeout=30_000)
    _select(view, 3)
    qtbot.wait(50)
    shot = window.grab()
    path = Path(os.environ.get("VSEARCH_SCREENSHOT_DIR", tmp_path)) / "grid.png"
    assert shot.save(str(path))
    image = shot.toImage()
    tile = view.visualRect(model.index(0, 0)).translated(view.viewport().mapTo(window, QPoint(0, 0)))
    colours = {image.pixelColor(tile.center() + QPoint(dx, dy)).name() for dx in (-40, 0, 40) for dy in (-40, 0, 40)}
    assert len(colours) >= 3  # a photo (sky, sun, hills), not a flat placeholder


def test_hover_shows_the_score_badge(qtbot, grid):
    model = ResultsModel()
    model.set_results(FakeHits(30), 30)
    view = grid(model)
    qtbot.waitUntil(lambda: view.visualRect(model.index(0, 0)).isValid())
    tile = view.visualRect(model.index(1, 0))
    badge = QPoint(tile.left() + PADDING + view.thumbnail_size - 12, tile.top() + PADDING + 12)  # top-right corner
    before = view.viewport().grab().toImage().pixelColor(badge)
    inside = QPointF(tile.center())
    hover = QHoverEvent(QEvent.Type.HoverMove, inside, view.viewport().mapToGlobal(inside), QPointF(-1, -1))
    QApplication.sendEvent(view.viewport(), hover)  # through the view's viewportEvent, as a real mouse would
    qtbot.waitUntil(lambda: view.viewport().grab().toImage().pixelColor(badge) != before)
    highlight = view.palette().color(QPalette.ColorGroup.Active, QPalette.ColorRole.Highlight)
    after = view.viewport().grab().toImage().pixelColor(badge)
    assert abs(_brightness(after) - _brightness(highlight)) < 30  # the badge is in the highlight colour
