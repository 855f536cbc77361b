"""The Duplicates window in the real main window: groups listed with the keeper first and marked, thumbnails, Copy
List of the Others on the clipboard, Reveal, progress and Cancel, closing the app mid-run; and nothing is ever
deleted or changed. Against FilterService (tests/gui/filter_service.py); test_filters_end_to_end.py runs the real
LibraryService."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication, QPalette

from tests.gui.filter_service import FilterService, duplicate_group, make_library
from vsearch_app.gui import desktop
from vsearch_app.gui.engine.controller import EngineController
from vsearch_app.gui.ui_state import UiState
from vsearch_app.gui.views.duplicates_view import BADGE_TEXT, GROUPS_PER_PAGE, DuplicatesView
from vsearch_app.gui.views.main_window import MainWindow
from vsearch_app.settings import AppSettings


@pytest.fixture
def service(tmp_path):
    photos = make_library(tmp_path / "Pictures")
    service = FilterService(tmp_path / "Pictures", photos)
    paths = [p.path for p in photos]
    service.duplicate_groups = [duplicate_group("exact", [paths[0], paths[3]], [0.9, 0.9]),
                                duplicate_group("near", [paths[7], paths[2], paths[11]], [0.82, 0.61, 0.4])]
    return service


@pytest.fixture
def window(qtbot, windows, tmp_path, service):
    controller = EngineController(AppSettings.resolve(tmp_path / "data"), service_factory=lambda _s: service)
    window = MainWindow(controller, UiState(tmp_path / "ui-state.ini"))
    windows.opened.append(window)
    window.show()
    controller.start()
    qtbot.waitUntil(lambda: controller.ready, timeout=20_000)
    return window


def fingerprints(folder: Path) -> dict[Path, tuple[str, int]]:
    """Every file under ``folder``: its content hash and modification time."""
    return {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def open_done(qtbot, window: MainWindow) -> DuplicatesView:
    view = window.show_duplicates()
    qtbot.waitUntil(lambda: view.state == "done", timeout=20_000)
    return view


def test_groups_are_listed_with_the_keeper_first_and_marked(qtbot, window, service):
    before = fingerprints(service.root)
    view = open_done(qtbot, window)
    assert view.isVisible() and view.windowTitle() == "Duplicates — VSearch"
    assert [card.group for card in view.cards] == service.duplicate_groups
    near = view.cards[1]
    assert [tile.member.path for tile in near.tiles] == [m.path for m in service.duplicate_groups[1].members]
    assert [tile.keeper for tile in near.tiles] == [True, False, False]  # members[0] is the suggested keeper
    assert near.tiles[1].quality_label.text() == "Quality 0.61 · 97% alike"
    assert view.summary.text().startswith("2 groups · 3 photos besides the best shots")
    # Thumbnails arrive from the engine's cache, and the keeper's wears the "Best shot" badge in the accent colour.
    qtbot.waitUntil(lambda: all(t.picture.has_pixmap for c in view.cards for t in c.tiles), timeout=20_000)
    image = near.tiles[0].picture.grab().toImage()
    highlight = near.palette().color(QPalette.ColorRole.Highlight)
    assert image.pixelColor(10, 12) == highlight
    assert BADGE_TEXT == "Best shot"
    assert fingerprints(service.root) == before


def test_copy_list_puts_the_others_paths_on_the_clipboard_and_deletes_nothing(qtbot, window, service):
    before = fingerprints(service.root)
    view = open_done(qtbot, window)
    QGuiApplication.clipboard().clear()
    view.cards[1].copy_button.click()
    others = [m.path for m in service.duplicate_groups[1].members[1:]]
    assert QGuiApplication.clipboard().text() == "\n".join(str(p) for p in others)
    assert "Copied 2 paths" in view.note.text()
    view.cards[0].copy_button.click()  # identical copies: the second copy's path only
    assert QGuiApplication.clipboard().text() == str(service.duplicate_groups[0].members[1].path)
    assert fingerprints(service.root) == before  # every file still there, unchanged


def test_duplicates_can_be_looked_for_in_one_folder(qtbot, window, service):
    view = open_done(qtbot, window)
    assert service.calls[-1] == ("duplicates", None, None)  # the whole library first
    combo = view.folder_combo
    holidays = service.root / "Holidays"
    assert [combo.itemData(i) for i in range(combo.count())] == ["", str(holidays), str(service.root / "Phone")]
    combo.setCurrentIndex(1)
    combo.activated.emit(1)  # choosing a folder looks again, there only
    qtbot.waitUntil(lambda: view.state == "done" and service.calls[-1] == ("duplicates", holidays, None),
                    timeout=10_000)


def test_reveal_shows_the_best_shot_in_the_file_manager(qtbot, window, service, monkeypatch):
    revealed: list[Path] = []
    monkeypatch.setattr(desktop, "reveal_in_file_manager", lambda path: revealed.append(Path(path)))
    view = open_done(qtbot, window)
    view.cards[1].reveal_button.click()
    assert revealed == [service.duplicate_groups[1].members[0].path]


def test_progress_and_cancel(qtbot, window, service):
    service.duplicates_gate = threading.Event()  # the engine "works" until cancelled
    view = window.show_duplicates()
    assert view.state == "running" and view.cancel_button.isVisible()
    assert service.duplicates_started.wait(10)
    qtbot.waitUntil(lambda: "5 / 10" in view.summary.text(), timeout=10_000)
    assert view.progress.maximum() == 10 and view.progress.value() == 5
    view.cancel_button.click()
    qtbot.waitUntil(lambda: view.state == "cancelled", timeout=10_000)
    assert view.cards == [] and not view.cancel_button.isVisible()
    assert "Nothing was changed" in view.summary.text()

    service.duplicates_gate.set()
    view.find_button.click()  # find again: this time it finishes
    qtbot.waitUntil(lambda: view.state == "done", timeout=10_000)
    assert len(view.cards) == 2


def test_no_duplicates_says_so(qtbot, window, service):
    service.duplicate_groups = []
    view = open_done(qtbot, window)
    assert view.cards == [] and view.summary.text() == "No duplicates: every photo is one of a kind."


def test_closing_the_app_mid_run_cancels_it_and_closes_the_library(qtbot, windows, window, service):
    service.duplicates_gate = threading.Event()
    view = window.show_duplicates()
    assert service.duplicates_started.wait(10)
    windows.close(window)  # the duplicates lane is cancelled and joined before the library closes
    assert service.closed and not view.isVisible()
    assert not window.controller.timed_out


def test_many_groups_are_shown_a_page_at_a_time(qtbot, window, service):
    paths = [p.path for p in service.photos]
    service.duplicate_groups = [duplicate_group("near", [paths[i % 24], paths[(i + 1) % 24]], [0.8, 0.5])
                                for i in range(GROUPS_PER_PAGE * 2 + 10)]
    view = open_done(qtbot, window)
    assert len(view.cards) == GROUPS_PER_PAGE  # not hundreds of widgets at once
    assert view.more_button.isVisible() and view.more_button.text() == f"Show {GROUPS_PER_PAGE} More of " \
        f"{GROUPS_PER_PAGE + 10}"
    view.more_button.click()
    view.more_button.click()
    assert [c.group for c in view.cards] == service.duplicate_groups
    assert not view.more_button.isVisible()
