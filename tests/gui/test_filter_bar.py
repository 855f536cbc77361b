"""The filter bar in the real window: the month histogram, date range / folder / camera filters on the grid, sort,
browsing without a query, the "Filtered: … ×" pill, the empty state when a filter hides everything, the good-match
mark and count, and the bar's visibility and sort kept in ui_state. Against FilterService (tests/gui/
filter_service.py: exact, known answers); test_filters_end_to_end.py runs the real LibraryService."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, QPoint, QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QFileDialog, QStyle, QStyleOptionViewItem

from tests.gui.filter_service import FilterService, Photo, make_library
from vsearch_app.core.types import QueryTerm, SearchFilter, SortOrder
from vsearch_app.gui.engine.controller import EngineController
from vsearch_app.gui.models.filters import FilterChoice, range_label
from vsearch_app.gui.models.results import (
    GOOD_MATCH_ROLE,
    NAME_ROLE,
    SCORE_ROLE,
    THUMBNAIL_FAILURE_ROLE,
    THUMBNAIL_ROLE,
)
from vsearch_app.gui.ui_state import UiState
from vsearch_app.gui.views.main_window import MainWindow
from vsearch_app.gui.views.month_histogram import MAX_BAR_WIDTH, MIN_BAR_WIDTH, MonthHistogram
from vsearch_app.gui.views.result_delegate import PADDING, ResultDelegate
from vsearch_app.settings import AppSettings


@pytest.fixture
def library(tmp_path):
    photos = make_library(tmp_path / "Pictures")
    return FilterService(tmp_path / "Pictures", photos)


@pytest.fixture
def open_window(qtbot, windows, tmp_path):
    """open_window(service, ui_state=None) -> the real MainWindow on ``service``, shown, engine started, facets in."""
    def open_(service: FilterService, ui_state: Path | None = None) -> MainWindow:
        settings = AppSettings.resolve(tmp_path / "data")
        controller = EngineController(settings, service_factory=lambda _settings: service)
        window = MainWindow(controller, UiState(ui_state or tmp_path / "ui-state.ini"))
        windows.opened.append(window)  # closed the app's way at teardown
        window.resize(1180, 760)
        window.show()
        controller.start()
        qtbot.waitUntil(lambda: window.filter_bar.histogram.total == len(service.photos), timeout=20_000)
        return window
    return open_


def shown(qtbot, window: MainWindow) -> list[Path]:
    qtbot.waitUntil(lambda: not window._searching and window._stack.currentWidget() is window.results_view,
                    timeout=20_000)
    model = window.results_model
    return [model.hit(row).path for row in range(model.rowCount())]


def photo(service: FilterService, path: Path):
    return next(p for p in service.photos if p.path == path)


# --- the pieces, on their own -----------------------------------------------------------------------------------------


def test_filter_choice_in_words_and_as_the_engines_filter():
    choice = FilterChoice().with_months("2019-12", "2019-01")  # either order
    assert choice.search_filter() == SearchFilter(taken_after="2019-01-01", taken_before="2020-01-01")
    assert choice.label() == "2019"
    choice = FilterChoice(folder=Path("/p/Holidays"), camera="Pixel 7").with_months("2019-11", "2020-02")
    assert choice.label() == "Nov 2019 – Feb 2020 · Holidays · Pixel 7"
    assert choice.where() == "from Nov 2019 – Feb 2020 in “Holidays” taken with Pixel 7"
    assert choice.search_filter() == SearchFilter(taken_after="2019-11-01", taken_before="2020-03-01",
                                                  folders=(Path("/p/Holidays"),), camera="Pixel 7")
    assert FilterChoice().search_filter() is None and FilterChoice().is_empty
    assert range_label("2019-06", "2019-06") == "June 2019"
    assert range_label("2017-01", "2019-12") == "2017–2019"
    assert range_label("2019-06", "2019-08") == "Jun – Aug 2019"


def _ink_columns(widget: MonthHistogram, top: int, bottom: int) -> int:
    """How many pixel columns of ``widget`` have bar ink (not the window colour) between rows top..bottom."""
    image = widget.grab().toImage()
    background = widget.palette().color(QPalette.ColorRole.Window)
    ratio = image.devicePixelRatio()
    columns = 0
    for x in range(image.width()):
        if any(image.pixelColor(x, round(y * ratio)) != background for y in range(top, bottom)):
            columns += 1
    return columns


def test_histogram_renders_one_month_and_thirty_years_readably(qtbot):
    histogram = MonthHistogram()
    qtbot.addWidget(histogram)
    histogram.setAutoFillBackground(True)
    histogram.resize(400, histogram.sizeHint().height())
    histogram.show()

    histogram.set_months([("2019-06", 12)])
    assert [(b.label, b.count) for b in histogram.bins()] == [("June 2019", 12)]
    assert histogram.bar_rect(0).width() <= MAX_BAR_WIDTH  # one calm bar, not a slab across the widget
    assert 0 < _ink_columns(histogram, 2, 30) <= MAX_BAR_WIDTH + 2

    months = [(f"{y}-{m:02d}", 1 + (y * m) % 40) for y in range(1994, 2024) for m in range(1, 13)]
    histogram.set_months(months)
    bins = histogram.bins()
    assert sum(b.count for b in bins) == sum(n for _, n in months)  # every photo is in a bar
    assert histogram.bar_rect(0).width() >= MIN_BAR_WIDTH  # grouped into years so each bar stays visible
    assert bins[0].months > 1 and len(bins) * MIN_BAR_WIDTH <= 400
    assert _ink_columns(histogram, 2, 30) > 300  # the bars span the widget

    histogram.set_months([])
    assert histogram.bins() == [] and histogram.total == 0


def test_dragging_across_the_histogram_selects_whole_months(qtbot):
    histogram = MonthHistogram()
    qtbot.addWidget(histogram)
    histogram.resize(600, histogram.sizeHint().height())
    histogram.show()
    histogram.set_months([(f"2019-{m:02d}", m) for m in range(1, 13)])
    chosen: list[object] = []
    histogram.rangeSelected.connect(chosen.append)
    start, end = histogram.bar_rect(2).center().toPoint(), histogram.bar_rect(5).center().toPoint()
    qtbot.mousePress(histogram, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(histogram, end)
    qtbot.mouseRelease(histogram, Qt.MouseButton.LeftButton, pos=end)
    assert chosen == [("2019-03", "2019-06")]
    qtbot.keyClick(histogram, Qt.Key.Key_Escape)
    assert chosen[-1] is None and histogram.selection() is None


# --- in the window ----------------------------------------------------------------------------------------------------


def test_a_date_range_filters_the_grid_and_the_pill_clears_it(qtbot, open_window, library):
    window = open_window(library)
    window.query_bar.model.replace_all([QueryTerm("text", "hills")])
    assert len(shown(qtbot, window)) == 24
    window._filter_button.click()
    assert window.filter_bar.isVisible()

    window.filter_bar.choose_month_range("2019-01", "2019-12")
    qtbot.waitUntil(lambda: window.results_model.total == 6, timeout=20_000)
    paths = shown(qtbot, window)
    assert {photo(library, p).taken[:4] for p in paths} == {"2019"}
    assert library.calls[-1][2] == SearchFilter(taken_after="2019-01-01", taken_before="2020-01-01")
    assert window.filter_pill.isVisible() and window.filter_pill.text() == "Filtered: 2019"
    assert window.filter_bar.histogram.selection() == ("2019-01", "2019-12")

    window.filter_pill.click()  # one click clears every filter
    qtbot.waitUntil(lambda: window.results_model.total == 24, timeout=20_000)
    assert not window.filter_pill.isVisible() and window.filters.is_empty
    assert window.filter_bar.histogram.selection() is None


def test_a_camera_and_a_folder_filter_the_grid(qtbot, open_window, library):
    window = open_window(library)
    combo = window.filter_bar.camera_combo
    assert [combo.itemData(i) for i in range(combo.count())] == ["", "Google Pixel 7", "Canon EOS 80D"]
    window.query_bar.model.replace_all([QueryTerm("text", "hills")])
    shown(qtbot, window)
    combo.setCurrentIndex(1)
    combo.activated.emit(1)
    qtbot.waitUntil(lambda: window.results_model.total == 8, timeout=20_000)
    assert {photo(library, p).camera for p in shown(qtbot, window)} == {"Google Pixel 7"}

    holidays = library.root / "Holidays"
    folders = window.filter_bar.folder_combo
    index = folders.findData(str(holidays))
    assert index > 0 and folders.findData(str(library.root / "Phone")) > 0  # the watched folders are offered
    folders.setCurrentIndex(index)
    folders.activated.emit(index)
    # Every third photo is in Holidays/2019, and every third is a Pixel 7: i % 3 == 0 for both.
    qtbot.waitUntil(lambda: window._filters.folder == holidays and not window._searching, timeout=20_000)
    paths = shown(qtbot, window)
    assert paths and all(p.is_relative_to(holidays) and photo(library, p).camera == "Google Pixel 7" for p in paths)
    assert window.filter_pill.text() == "Filtered: Holidays · Google Pixel 7"
    # The histogram now counts the months inside the folder and camera, so a drag sees what it will get.
    qtbot.waitUntil(lambda: window.filter_bar.histogram.total == len(paths), timeout=20_000)


def test_a_subfolder_can_be_chosen_but_not_a_folder_outside_the_library(qtbot, open_window, library, monkeypatch):
    window = open_window(library)
    notices: list[str] = []
    window.filter_bar.notice.connect(notices.append)
    chosen = iter([str(library.root / "Holidays" / "2019"), str(library.root.parent)])
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: next(chosen))
    folders = window.filter_bar.folder_combo
    pick = folders.findData("choose-subfolder")
    folders.activated.emit(pick)
    assert window.filters.folder == library.root / "Holidays" / "2019"
    assert folders.currentText() == "2019"  # the subfolder is shown while it is chosen
    qtbot.waitUntil(lambda: not window._searching and window.results_model.total == 8, timeout=20_000)
    folders.activated.emit(folders.findData("choose-subfolder"))  # outside every watched folder: refused, said why
    assert window.filters.folder == library.root / "Holidays" / "2019"
    assert notices and "not in a watched folder" in notices[0]


def test_months_and_cameras_are_read_off_the_gui_thread_and_follow_indexing(qtbot, open_window, library):
    window = open_window(library)
    assert library.facet_threads == {"vsearch-query"}
    new = library.root / "Phone" / "IMG_2000.jpg"
    new.write_bytes(library.photos[0].path.read_bytes())
    library.photos.append(Photo(new, "2024-02-02T08:00:00", "Fujifilm X100V", 99))  # "indexed" on the next status
    qtbot.waitUntil(lambda: window.filter_bar.histogram.total == 25, timeout=20_000)
    assert window.filter_bar.histogram.bins()[-1].last // 12 == 2024
    combo = window.filter_bar.camera_combo
    assert "Fujifilm X100V" in [combo.itemData(i) for i in range(combo.count())]


def test_sort_by_date_orders_the_grid_newest_first(qtbot, open_window, library):
    window = open_window(library)
    window.query_bar.model.replace_all([QueryTerm("text", "sunset")])
    by_score = shown(qtbot, window)
    scores = [window.results_model.hit(r).score for r in range(window.results_model.rowCount())]
    assert scores == sorted(scores, reverse=True)
    window.filter_bar.choose_sort(SortOrder.DATE)
    qtbot.waitUntil(lambda: library.calls[-1][3] == SortOrder.DATE and not window._searching, timeout=20_000)
    by_date = shown(qtbot, window)
    taken = [photo(library, p).taken for p in by_date]
    assert taken == sorted(taken, reverse=True) and sorted(by_date) == sorted(by_score)
    assert window._summary.text().endswith("newest first")
    window.filter_bar.choose_sort(SortOrder.NAME)
    qtbot.waitUntil(lambda: library.calls[-1][3] == SortOrder.NAME and not window._searching, timeout=20_000)
    names = [p.name for p in shown(qtbot, window)]
    assert names == sorted(names)


def test_a_filter_without_a_query_browses_its_photos_by_date(qtbot, open_window, library):
    window = open_window(library)
    qtbot.waitUntil(lambda: window.empty_state.state == "ready", timeout=20_000)  # no query, no filter: nothing
    window.filter_bar.choose_camera("Canon EOS 80D")
    qtbot.waitUntil(lambda: window.results_model.total == 8, timeout=20_000)
    paths = shown(qtbot, window)
    assert library.calls[-1][1] == ()  # no terms: the engine browses the filter
    taken = [photo(library, p).taken for p in paths]
    assert taken == sorted(taken, reverse=True)
    assert window._summary.text() == "8 photos, newest first"
    window.filter_bar.choose_month_range("2030-01", "2030-12")
    qtbot.waitUntil(lambda: window.empty_state.state == "filtered_out", timeout=20_000)
    assert window.empty_state.headline == "No photos from 2030 taken with Canon EOS 80D"
    window.filter_bar.clear()
    qtbot.waitUntil(lambda: window.empty_state.state == "ready", timeout=20_000)
    assert window.results_model.rowCount() == 0


def test_the_empty_state_says_when_a_filter_hides_everything(qtbot, open_window, library):
    window = open_window(library)
    window.query_bar.model.replace_all([QueryTerm("text", "beach")])
    shown(qtbot, window)
    window.filter_bar.choose_month_range("2017-01", "2017-12")  # no photo is from 2017
    qtbot.waitUntil(lambda: window.empty_state.state == "filtered_out", timeout=20_000)
    assert window.empty_state.headline == "No photos from 2017 match"
    assert "Clear the filter" in window.empty_state.detail
    window.empty_state.button.click()
    qtbot.waitUntil(lambda: window.results_model.total == 24, timeout=20_000)
    assert window.filters.is_empty


def test_good_matches_are_counted_and_marked(qtbot, open_window, library):
    window = open_window(library)
    target = library.photos[5].path
    window.query_bar.model.replace_all([QueryTerm("text", f"best:{target.name}")])
    paths = shown(qtbot, window)
    assert paths[0] == target
    model = window.results_model
    assert model.data(model.index(0, 0), GOOD_MATCH_ROLE) is True  # a bool, never None (see gui.qtfix)
    assert model.data(model.index(1, 0), GOOD_MATCH_ROLE) is False
    assert window._summary.text() == "1 good match · 24 photos, best matches first"


def _paint_tile(good: bool) -> QImage:
    item = QStandardItem()
    item.setData("IMG_1.jpg", NAME_ROLE)
    item.setData(0.5, SCORE_ROLE)
    pixmap = QPixmap(100, 100)
    pixmap.fill(QColor("#808080"))
    item.setData(pixmap, THUMBNAIL_ROLE)
    item.setData("", THUMBNAIL_FAILURE_ROLE)
    item.setData(good, GOOD_MATCH_ROLE)
    model = QStandardItemModel()
    model.appendRow(item)
    delegate = ResultDelegate(thumbnail_size=100)
    option = QStyleOptionViewItem()
    option.rect = QRect(0, 0, 112, 140)
    option.palette = QPalette(QColor("#efeff1"))
    option.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Active
    image = QImage(112, 140, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    option.fontMetrics = painter.fontMetrics()
    delegate.paint(painter, option, model.index(0, 0, QModelIndex()))
    painter.end()
    return image


def test_the_grid_marks_good_matches_with_a_ring_and_a_check(qapp):
    plain, good = _paint_tile(False), _paint_tile(True)
    edge = QPoint(PADDING + 1, PADDING + 50)  # on the photo's left edge, where the ring runs
    highlight = QPalette(QColor("#efeff1")).color(QPalette.ColorGroup.Active, QPalette.ColorRole.Highlight)
    assert plain.pixelColor(edge) == QColor("#808080")
    assert good.pixelColor(edge) == highlight
    corner = QPoint(PADDING + 12, PADDING + 100 - 12)  # the check badge, bottom left
    assert good.pixelColor(corner) != plain.pixelColor(corner)


def test_the_bars_visibility_and_the_sort_are_kept(qtbot, open_window, library, tmp_path):
    state = tmp_path / "kept.ini"
    window = open_window(library, state)
    assert not window.filter_bar.isVisible()
    window._filter_button.click()
    window.filter_bar.choose_sort(SortOrder.DATE)
    window.save_ui_state()
    kept = UiState(state)
    assert kept.filters_visible() is True and kept.sort() == SortOrder.DATE

    again = open_window(FilterService(library.root, library.photos), state)
    assert again.filter_bar.isVisible() and again.filter_bar.sort() == SortOrder.DATE
