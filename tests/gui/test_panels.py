"""The standalone panels: folders panel, status bar, empty states (pytest-qt, offscreen), and number formatting."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QContextMenuEvent, QPalette
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu, QMessageBox

from vsearch_app.core.types import FolderInfo, IndexProgress
from vsearch_app.gui import formatting
from vsearch_app.gui.views.empty_states import STATES, EmptyState
from vsearch_app.gui.views.folders_panel import COUNT_ROLE, OFFLINE_REASON, ONLINE_ROLE, PATH_ROLE, FoldersPanel
from vsearch_app.gui.views.status_bar import StatusBar, describe_progress

# --- formatting ------------------------------------------------------------------------------------------------------


def test_formatting_reads_like_a_person_wrote_it():
    assert formatting.count(12345) == "12,345"
    assert formatting.plural(1, "photo") == "1 photo" and formatting.plural(2, "photo") == "2 photos"
    assert [formatting.size(n) for n in (0, 999, 1500, 813_000_000, 1_500_000_000)] == [
        "0 B", "999 B", "1.5 KB", "813 MB", "1.5 GB"]
    assert formatting.rate(14.2) == "14 photos/s" and formatting.rate(0.8) == "0.8 photos/s"
    assert formatting.time_left(None) is None and formatting.time_left(float("inf")) is None
    assert formatting.time_left(30) == "less than a minute left"
    assert formatting.time_left(300) == "about 5 min left"
    assert formatting.time_left(2 * 3600 + 600) == "about 2 h 10 min left"


# --- folders panel ---------------------------------------------------------------------------------------------------


@pytest.fixture
def panel(qtbot, tmp_path):
    holidays = tmp_path / "Holidays"
    family = tmp_path / "Family"
    holidays.mkdir()
    family.mkdir()
    panel = FoldersPanel()
    qtbot.addWidget(panel)
    panel.resize(280, 400)
    panel.set_folders([FolderInfo(holidays, True), FolderInfo(family, True),
                       FolderInfo(Path("/media/usb/Camera"), False)])
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def _rows(panel: FoldersPanel) -> list[dict]:
    model = panel.list_view.model()
    return [model.itemData(model.index(row, 0)) for row in range(model.rowCount())]  # itemData: no None (GUI.md)


def test_folders_are_listed_by_name_with_their_full_path_on_hover(panel, tmp_path):
    rows = _rows(panel)
    assert [row[Qt.ItemDataRole.DisplayRole] for row in rows] == ["Camera", "Family", "Holidays"]
    assert rows[2][PATH_ROLE] == tmp_path / "Holidays"
    assert str(tmp_path / "Holidays") in rows[2][Qt.ItemDataRole.ToolTipRole]
    assert panel.folders()[1] == FolderInfo(tmp_path / "Family", True)


def test_offline_folders_are_greyed_with_the_reason(panel):
    camera = _rows(panel)[0]
    assert camera[ONLINE_ROLE] is False
    assert OFFLINE_REASON in camera[Qt.ItemDataRole.ToolTipRole]
    # Painted with the Disabled colours: the row's name pixels match the palette's disabled text, not the normal one.
    image = panel.list_view.viewport().grab().toImage()
    rect = panel.list_view.visualRect(panel.list_view.model().index(0, 0))
    colours = {image.pixelColor(x, y).name() for x in range(rect.left(), rect.right())
               for y in range(rect.top(), rect.bottom())}
    palette = panel.list_view.palette()
    assert palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text).name() in colours
    assert palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Text).name() not in colours


def test_per_folder_counts_show_and_update(panel, tmp_path):
    assert all(COUNT_ROLE not in row or row[COUNT_ROLE] is None for row in _rows(panel))
    panel.set_counts({tmp_path / "Holidays": 1234, str(tmp_path / "Family"): 1})
    rows = {row[Qt.ItemDataRole.DisplayRole]: row for row in _rows(panel)}
    assert rows["Holidays"][COUNT_ROLE] == 1234 and "1,234 photos" in rows["Holidays"][Qt.ItemDataRole.ToolTipRole]
    assert "1 photo" in rows["Family"][Qt.ItemDataRole.ToolTipRole]
    # Counts survive a refresh of the folder list (the engine sends folders and counts separately).
    panel.set_folders(panel.folders())
    assert {row[Qt.ItemDataRole.DisplayRole]: row[COUNT_ROLE] for row in _rows(panel)}["Holidays"] == 1234


def test_add_asks_for_a_folder_and_emits_it(panel, qtbot, monkeypatch, tmp_path):
    asked = []

    def fake_dialog(parent, caption, start):
        asked.append(caption)
        return str(tmp_path / "New")

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(fake_dialog))
    with qtbot.waitSignal(panel.addRequested) as added:
        qtbot.mouseClick(panel._add_button, Qt.MouseButton.LeftButton)
    assert added.args == [tmp_path / "New"] and asked


def test_add_cancelled_emits_nothing(panel, qtbot, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *args: ""))
    with qtbot.assertNotEmitted(panel.addRequested):
        panel.choose_folder_to_add()


@pytest.mark.parametrize("confirmed", [True, False])
def test_remove_asks_first_and_says_the_photos_are_not_touched(panel, qtbot, monkeypatch, tmp_path, confirmed):
    shown = []

    def fake_exec(box):
        shown.append((box.text(), box.informativeText()))
        return QMessageBox.StandardButton.Ok if confirmed else QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    assert not panel._remove_button.isEnabled()  # nothing selected yet
    panel.select(tmp_path / "Holidays")
    assert panel._remove_button.isEnabled()
    emitted = []
    panel.removeRequested.connect(emitted.append)
    qtbot.mouseClick(panel._remove_button, Qt.MouseButton.LeftButton)
    assert shown and "Holidays" in shown[0][0] and "your photos are not touched" in shown[0][1].lower()
    assert emitted == ([tmp_path / "Holidays"] if confirmed else [])


def test_delete_key_removes_the_selected_folder_after_confirming(panel, qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(QMessageBox, "exec", lambda box: QMessageBox.StandardButton.Ok)
    panel.select(tmp_path / "Family")
    panel.list_view.setFocus()
    with qtbot.waitSignal(panel.removeRequested) as removed:
        qtbot.keyClick(panel.list_view, Qt.Key.Key_Delete)
    assert removed.args == [tmp_path / "Family"]


def test_reveal_by_button_and_by_double_click(panel, qtbot, tmp_path):
    panel.select(tmp_path / "Family")
    with qtbot.waitSignal(panel.revealRequested) as revealed:
        qtbot.mouseClick(panel._reveal_button, Qt.MouseButton.LeftButton)
    assert revealed.args == [tmp_path / "Family"]
    view = panel.list_view
    centre = view.visualRect(view.model().index(2, 0)).center()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre)  # a double click starts with a press
    with qtbot.waitSignal(panel.revealRequested) as revealed:
        qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert revealed.args == [tmp_path / "Holidays"]


def test_context_menu_offers_reveal_captions_remove_and_add(panel, qtbot, tmp_path):
    view = panel.list_view
    index = view.model().index(1, 0)
    centre = view.visualRect(index).center()
    QApplication.sendEvent(view.viewport(), QContextMenuEvent(QContextMenuEvent.Reason.Mouse, centre,
                                                              view.viewport().mapToGlobal(centre)))
    qtbot.waitUntil(lambda: panel.findChild(QMenu) is not None and panel.findChild(QMenu).isVisible())
    menu = panel.findChild(QMenu)
    texts = [action.text() for action in menu.actions() if not action.isSeparator()]
    assert texts == ["Show in File Manager", "Generate Captions", "Stop Watching…", "Add Folder…"]
    assert panel.current_folder() == tmp_path / "Family"  # right-click selects the row it acts on
    with qtbot.waitSignal(panel.revealRequested) as revealed:
        menu.actions()[0].trigger()
    assert revealed.args == [tmp_path / "Family"]
    with qtbot.waitSignal(panel.captionRequested) as captioned:
        menu.actions()[1].trigger()
    assert captioned.args == [tmp_path / "Family"]
    menu.close()


def test_selection_survives_a_refresh_and_an_empty_list_shows_a_hint(panel, tmp_path):
    panel.select(tmp_path / "Holidays")
    panel.set_folders(panel.folders())
    assert panel.current_folder() == tmp_path / "Holidays"
    panel.set_folders([])
    assert panel.current_folder() is None and not panel._remove_button.isEnabled()
    image = panel.list_view.viewport().grab().toImage()
    base = panel.list_view.palette().color(QPalette.ColorRole.Base).name()
    assert any(image.pixelColor(x, y).name() != base for x in range(image.width()) for y in range(60))  # the hint


# --- status bar ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhasedProgress(IndexProgress):
    """IndexProgress as the session agent extends it (phase, current), for the phase words."""

    phase: str = "embedding"
    current: Path | None = None


@pytest.fixture
def bar(qtbot):
    bar = StatusBar()
    qtbot.addWidget(bar)
    bar.resize(900, 28)
    bar.show()
    qtbot.waitExposed(bar)
    return bar


def test_progress_is_rendered_throttled_with_the_latest_values(bar, qtbot):
    bar.set_idle(0)
    for done in range(0, 1201, 100):
        bar.set_progress(IndexProgress(done=done, total=5000, failed=0, rate=14.2, eta_s=300))
    assert bar.text() == "No photos indexed yet"  # stored, not painted: a timer paints the latest
    qtbot.waitUntil(lambda: bar.text().startswith("Indexing"))
    assert bar.text() == "Indexing 1,200 / 5,000 · 14 photos/s · about 5 min left"
    assert bar.progress_bar.isVisible() and bar.progress_bar.value() == 1200 and bar.progress_bar.maximum() == 5000
    assert bar.pause_button.isVisible() and bar.pause_button.text() == "Pause"


def test_no_rate_yet_shows_only_the_counts(bar, qtbot):
    bar.set_progress(IndexProgress(done=0, total=40, failed=0, rate=0.0, eta_s=None))
    qtbot.waitUntil(lambda: bar.text() == "Indexing 0 / 40")


@pytest.mark.parametrize(("phase", "words", "busy"), [
    ("scanning", "Looking for new photos… · 5,000 photos found", True),
    ("embedding", "Indexing 10 / 5,000", False),
    ("rebuilding", "Preparing the search index…", True),
    ("saving", "Saving the search index…", True),
])
def test_the_phase_is_shown_when_the_engine_reports_it(phase, words, busy):
    view = describe_progress(PhasedProgress(done=10, total=5000, failed=0, rate=0.0, eta_s=None, phase=phase))
    assert view.text == words
    assert (view.bar[1] == 0) is busy  # a 0 maximum is Qt's busy indicator


def test_an_idle_phase_shows_the_indexed_count(bar, qtbot):
    bar.set_idle(12345)
    bar.set_progress(PhasedProgress(done=3, total=3, failed=0, rate=1.0, eta_s=0, phase="embedding"))
    qtbot.waitUntil(lambda: bar.text().startswith("Indexing"))
    bar.set_progress(PhasedProgress(done=3, total=3, failed=0, rate=1.0, eta_s=0, phase="idle"))
    qtbot.waitUntil(lambda: bar.text() == "12,345 photos indexed")
    assert not bar.progress_bar.isVisible() and not bar.pause_button.isVisible()


def test_pause_and_resume_toggle_and_emit(bar, qtbot):
    bar.set_progress(IndexProgress(done=5, total=50, failed=0, rate=2.0, eta_s=20))
    qtbot.waitUntil(lambda: bar.pause_button.isVisible())
    with qtbot.waitSignal(bar.pauseRequested), qtbot.assertNotEmitted(bar.resumeRequested):
        qtbot.mouseClick(bar.pause_button, Qt.MouseButton.LeftButton)
    assert bar.paused and bar.pause_button.text() == "Resume"
    assert bar.text() == "Indexing paused · 5 / 50"
    with qtbot.waitSignal(bar.resumeRequested), qtbot.assertNotEmitted(bar.pauseRequested):
        qtbot.mouseClick(bar.pause_button, Qt.MouseButton.LeftButton)
    assert not bar.paused and bar.pause_button.text() == "Pause"
    assert bar.text().startswith("Indexing 5 / 50")


def test_set_paused_mirrors_the_engine_without_emitting(bar, qtbot):
    with qtbot.assertNotEmitted(bar.pauseRequested):
        bar.set_paused(True)
    assert bar.pause_button.isVisible() and bar.pause_button.text() == "Resume"  # resumable even when idle


def test_failed_count_button_appears_and_opens_the_list(bar, qtbot):
    bar.set_failed_count(0)
    assert not bar.failed_button.isVisible()
    bar.set_failed_count(3)
    assert bar.failed_button.isVisible() and bar.failed_button.text() == "3 failed"
    with qtbot.waitSignal(bar.failedRequested):
        qtbot.mouseClick(bar.failed_button, Qt.MouseButton.LeftButton)


def test_idle_message(bar):
    bar.set_idle(12345)
    assert bar.text() == "12,345 photos indexed"
    bar.set_idle(1)
    assert bar.text() == "1 photo indexed"


# --- empty states ----------------------------------------------------------------------------------------------------


@pytest.fixture
def empty(qtbot):
    page = EmptyState()
    qtbot.addWidget(page)
    page.resize(700, 500)
    page.show()
    qtbot.waitExposed(page)
    return page


def test_no_folders_has_one_big_button_that_asks_to_add_a_folder(empty, qtbot):
    empty.show_no_folders(shortcut="Ctrl+O")
    assert empty.state == "no_folders" and "Add a photo folder" in empty.headline
    assert empty.button.isVisible() and "Add a Photo Folder" in empty.button.text()
    with qtbot.waitSignal(empty.addFolderRequested), qtbot.assertNotEmitted(empty.modelRequested):
        qtbot.mouseClick(empty.button, Qt.MouseButton.LeftButton)


def test_model_missing_button_asks_for_the_model(empty, qtbot):
    empty.show_model_missing("google/siglip2-base-patch16-224", 1_500_000_000)
    assert empty.state == "model_missing" and "1.5 GB" in empty.detail
    with qtbot.waitSignal(empty.modelRequested), qtbot.assertNotEmitted(empty.addFolderRequested):
        qtbot.mouseClick(empty.button, Qt.MouseButton.LeftButton)


def test_the_other_states_say_what_is_happening(empty):
    empty.show_loading_model()
    assert (empty.state, empty.headline) == ("loading_model", "Loading the search model…")
    assert not empty.button.isVisible() and empty.progress_bar.isVisible() and empty.progress_bar.maximum() == 0
    empty.show_indexing(1200, 5000)
    assert empty.headline == "Indexing 1,200 / 5,000" and "search already works" in empty.detail.lower()
    assert empty.progress_bar.value() == 1200
    empty.show_no_matches(0.12)
    assert empty.headline == "No matches above the threshold" and "0.12" in empty.detail
    assert not empty.progress_bar.isVisible() and not empty.button.isVisible()
    empty.show_ready(12345)
    assert empty.headline == "Search 12,345 photos"
    assert set(STATES) == {"no_folders", "loading_model", "indexing", "ready", "no_matches", "model_missing"}


def test_the_picture_is_rendered_again_after_a_palette_change(empty, qapp, qtbot):
    from vsearch_app.gui.theme import dark_palette

    empty.show_no_matches()
    before = empty._picture.pixmap().toImage()
    qapp.setPalette(dark_palette())
    try:  # the themed icon follows the new colours once the palette change event arrives
        qtbot.waitUntil(lambda: empty._picture.pixmap().toImage() != before)
    finally:
        qapp.setPalette(QPalette())


def test_a_click_outside_the_button_does_nothing(empty, qtbot):
    with qtbot.assertNotEmitted(empty.addFolderRequested):
        qtbot.mouseClick(empty, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))


def test_locations_inside_the_home_folder_read_as_tilde():
    from vsearch_app.gui.views.folders_panel import location_label

    home = Path("/home/anna")
    assert location_label(Path("/home/anna/Pictures"), home) == str(Path("~", "Pictures"))
    assert location_label(home, home) == "~"
    assert location_label(Path("/mnt/nas"), home) == "/mnt/nas"


def test_the_panels_and_dialogs_load_without_the_engine():
    """They are built before the window shows, so importing them must not pull in torch (via core.service)."""

    modules = ["desktop", "settings_model", "views.folders_panel", "views.status_bar", "views.empty_states",
               "dialogs.failed_files", "dialogs.settings", "dialogs.first_run"]
    code = ("import sys\n" + "".join(f"import vsearch_app.gui.{m}\n" for m in modules)
            + "print(sorted(m for m in ('torch', 'vsearch_app.core.service') if m in sys.modules))")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(root), "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
