"""The main window against a real library session with the tiny random SigLIP (where ranking does not matter, or
where a photo's own vector makes it first): add a folder, index, search as you type, drop a photo, Find similar,
chips, remove a folder, a copied photo appearing, pause/resume, keys, paste, UI state and closing mid-index."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage
from PySide6.QtWidgets import QMenu, QMessageBox

from tests.gui.photos import landscape, write_photos
from tests.gui.window_helpers import (
    drop_files,
    result_paths,
    type_query,
    wait_first_result,
    wait_indexed,
    wait_results,
    window_settings,
)
from vsearch_app.core.types import QueryTerm
from vsearch_app.gui import desktop
from vsearch_app.gui.engine import library_lane as states
from vsearch_app.gui.views.preview import PhotoPreview


@pytest.fixture
def settings(tmp_path, tiny_siglip_dir):
    return window_settings(tmp_path, tiny_siglip_dir)


@pytest.fixture
def library(tmp_path):
    """12 generated photos in a folder that is not watched yet."""
    return write_photos(tmp_path / "Holidays", 12)


def open_indexed(qtbot, windows, settings, photos):
    window = windows.open(settings)
    window.controller.add_folder(photos[0].parent)
    wait_indexed(qtbot, window, len(photos))
    return window


def test_first_run_says_add_a_folder_then_indexes_and_searches_as_you_type(qtbot, windows, settings, library):
    window = windows.open(settings)
    qtbot.waitUntil(lambda: window.empty_state.state == "no_folders", timeout=30_000)
    assert window.empty_state.headline == "Add a photo folder to start"
    window.add_folder(library[0].parent)
    wait_indexed(qtbot, window, len(library))
    qtbot.waitUntil(lambda: window.empty_state.state == "ready", timeout=10_000)
    assert [f.path for f in window.folders_panel.folders()] == [library[0].parent]
    qtbot.waitUntil(lambda: "12 photos indexed" in window.status_panel.text(), timeout=10_000)
    qtbot.waitUntil(lambda: window.controller.folder_counts == {library[0].parent: 12}, timeout=10_000)
    from vsearch_app.gui.views.folders_panel import COUNT_ROLE
    assert window.folders_panel.list_view.model().index(0, 0).data(COUNT_ROLE) == 12  # the count beside the name

    type_query(qtbot, window, "hills at sunset")  # no Enter: results come as you type
    found = wait_results(qtbot, window)
    assert sorted(found) == sorted(library)
    assert window.terms == [QueryTerm("text", "hills at sunset")]
    assert window._stack.currentWidget() is window.results_view
    qtbot.waitUntil(lambda: window.thumbnail_loader.pixmap(found[0]) is not None, timeout=30_000)


def test_dropping_a_photo_makes_an_image_chip_and_puts_that_photo_first(qtbot, windows, settings, library):
    window = open_indexed(qtbot, windows, settings, library)
    # Qt hands a drop to the first widget under the cursor that accepts drops: none of these may, so the window
    # gets drops over the grid and the search field too (a photo dragged from the grid included).
    for child in (window.results_view, window.results_view.viewport(), window.query_bar,
                  window.query_bar.line_edit):
        assert not child.acceptDrops()
    event = drop_files(window, [library[7]])
    assert event.isAccepted() and event.dropAction() == Qt.DropAction.CopyAction  # never a move
    assert window.query_bar.model.terms == [QueryTerm("image", str(library[7]))]
    wait_first_result(qtbot, window, library[7])
    chip = window.query_bar.chips[0]
    qtbot.waitUntil(lambda: chip.has_thumbnail, timeout=30_000)  # the chip shows the photo


def test_find_similar_from_the_context_menu(qtbot, windows, settings, library):
    window = open_indexed(qtbot, windows, settings, library)
    type_query(qtbot, window, "mountains")
    wait_results(qtbot, window)
    window.results_view.contextMenuRequested.emit([library[3]], QPoint(200, 200))
    qtbot.waitUntil(lambda: window.findChild(QMenu) is not None)
    menu = window.findChild(QMenu)
    actions = {a.text(): a for a in menu.actions() if a.text()}
    assert list(actions) == ["Find Similar", "Add to Query", "Exclude from Query", "Open", "Show in File Manager",
                             "Copy Path", "Generate Caption"]
    hit = window.results_model.hit(window.results_model.row_of(library[3]))
    actions["Find Similar"].trigger()
    menu.close()
    assert hit.file_id >= 0
    assert window.query_bar.model.terms == [QueryTerm.of_photo(hit.file_id)]  # the stored vector, no model run
    chip = window.query_bar.chips[0]
    assert chip._label.text() == "Similar photos"
    qtbot.waitUntil(lambda: chip.has_thumbnail, timeout=30_000)  # the chip shows which photo
    wait_first_result(qtbot, window, library[3])


def test_add_and_exclude_from_the_menu_and_chip_edits_change_the_ranking(qtbot, windows, settings, library):
    window = open_indexed(qtbot, windows, settings, library)
    a, b = library[2], library[9]
    window.add_image_terms([a])
    wait_first_result(qtbot, window, a)
    window.find_similar([a])  # the same photo, now by its stored vector
    photo_a = window.query_bar.model.terms[0]
    assert photo_a.kind == "photo"
    wait_first_result(qtbot, window, a)
    menu = window.show_context_menu([b], QPoint(10, 10))
    next(x for x in menu.actions() if x.text() == "Add to Query").trigger()
    menu.close()
    assert window.query_bar.model.terms == [photo_a, QueryTerm("image", str(b))]

    chip_b = window.query_bar.chips[1]
    chip_b.edit_weight()  # the user clicks the weight and types 9
    chip_b._weight_editor.selectAll()
    qtbot.keyClicks(chip_b._weight_editor, "9")
    qtbot.keyClick(chip_b._weight_editor, Qt.Key.Key_Return)
    assert window.query_bar.model.terms[1].weight == 9.0
    wait_first_result(qtbot, window, b)  # b now outweighs a

    qtbot.mouseClick(chip_b._sign, Qt.MouseButton.LeftButton)  # exclude b
    assert window.query_bar.model.terms[1].weight == -9.0
    qtbot.waitUntil(lambda: not window._searching and result_paths(window)[-1:] == [b], timeout=60_000)
    assert result_paths(window)[0] != b

    menu = window.show_context_menu([a], QPoint(10, 10))
    next(x for x in menu.actions() if x.text() == "Exclude from Query").trigger()
    menu.close()
    assert window.query_bar.model.terms == [QueryTerm("image", str(b), -9.0), QueryTerm("image", str(a), -1.0)]


def test_removing_a_folder_takes_its_photos_out_of_the_results(qtbot, windows, settings, library, tmp_path):
    others = write_photos(tmp_path / "Work", 4)
    window = open_indexed(qtbot, windows, settings, library)
    window.controller.add_folder(others[0].parent)
    wait_indexed(qtbot, window, len(library) + len(others))
    type_query(qtbot, window, "a photo")
    qtbot.waitUntil(lambda: len(result_paths(window)) == 16, timeout=60_000)
    window.folders_panel.removeRequested.emit(library[0].parent)  # what the panel sends after the user confirms
    qtbot.waitUntil(lambda: sorted(result_paths(window)) == sorted(others), timeout=60_000)
    # The panel follows the engine's folder list, which may arrive a moment after the results.
    qtbot.waitUntil(lambda: [f.path for f in window.folders_panel.folders()] == [others[0].parent], timeout=60_000)


def test_a_photo_copied_into_a_watched_folder_appears_without_reshuffling(qtbot, windows, settings, library,
                                                                          tmp_path):
    outside = tmp_path / "Downloads" / "new.jpg"  # a scene none of the library's photos shows
    outside.parent.mkdir()
    landscape(99).save(outside, "JPEG")
    window = open_indexed(qtbot, windows, settings, library)
    window.add_image_terms([outside])
    shown = wait_results(qtbot, window)
    assert len(shown) == 12
    copy = library[0].parent / "copied-in.jpg"
    shutil.copy(outside, copy)
    qtbot.waitUntil(lambda: window.new_photos == 1, timeout=60_000)  # offered, not pushed into the grid
    assert result_paths(window) == shown
    assert "1 new photo" in window._refresh.text()
    qtbot.mouseClick(window._refresh, Qt.MouseButton.LeftButton)
    wait_first_result(qtbot, window, copy)  # the same pixels as the query photo
    assert window.new_photos == 0


def test_pause_and_resume_indexing(qtbot, windows, settings, tmp_path):
    photos = write_photos(tmp_path / "Many", 150)
    window = windows.open(settings)
    qtbot.waitUntil(lambda: window.controller.state == states.WATCHING, timeout=60_000)
    window.status_panel.pauseRequested.emit()  # what the pause button sends
    assert window.controller.state == states.PAUSED and window.controller.paused and window.status_panel.paused
    assert window.status_panel.pause_button.isVisible() and window.status_panel.pause_button.text() == "Resume"
    window.controller.add_folder(photos[0].parent)

    def counts():
        status = window.controller.status
        return (status.counts.get("indexed", 0), status.counts.get("pending", 0)) if status else (0, 0)

    qtbot.waitUntil(lambda: counts() == (0, 150), timeout=60_000)  # the watcher still records the new photos
    qtbot.wait(1500)
    window.controller.refresh_status()
    qtbot.wait(300)
    assert counts() == (0, 150)  # nothing is embedded while paused
    assert window.controller.state == states.PAUSED  # the session still watches: no stop, no restart
    window.status_panel.pause_button.click()  # "Resume"
    assert window.controller.state == states.WATCHING and not window.status_panel.paused
    wait_indexed(qtbot, window, 150)


def test_dropping_a_folder_asks_to_watch_it(qtbot, windows, settings, library, monkeypatch):
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *args, **kw: asked.append(args[2]) or QMessageBox.StandardButton.Ok)
    window = windows.open(settings)
    drop_files(window, [library[0].parent])
    assert "Holidays" in asked[0]
    wait_indexed(qtbot, window, len(library))


def test_keys_search_clear_open_preview(qtbot, windows, settings, library, monkeypatch):
    opened = []
    monkeypatch.setattr(desktop, "open_path", opened.append)
    window = open_indexed(qtbot, windows, settings, library)
    window.activateWindow()
    window.results_view.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.query_bar.line_edit.hasFocus())
    qtbot.keyClicks(window.query_bar.line_edit, "sky")
    wait_results(qtbot, window)
    qtbot.keyClick(window.query_bar.line_edit, Qt.Key.Key_Down)  # into the grid, first photo current
    assert window.results_view.hasFocus()
    first = result_paths(window)[0]
    qtbot.keyClick(window.results_view, Qt.Key.Key_Return)
    assert opened == [first]
    qtbot.keyClick(window.results_view, Qt.Key.Key_Space)
    preview = window.findChild(PhotoPreview)
    assert preview is not None and preview.loaded and preview.path == first
    preview.close()
    qtbot.keyClick(window.results_view, Qt.Key.Key_Escape)  # Esc clears the query
    assert window.terms == [] and window.query_bar.model.terms == []
    assert window.results_model.rowCount() == 0


def test_paste_a_photo_path_or_a_copied_image(qtbot, windows, settings, library):
    window = open_indexed(qtbot, windows, settings, library)
    clipboard = QGuiApplication.clipboard()
    clipboard.setText(str(library[5]))
    window.query_bar.focus_text()
    qtbot.keyClick(window.query_bar.line_edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert window.query_bar.model.terms == [QueryTerm("image", str(library[5]))]
    assert window.query_bar.line_edit.text() == ""
    wait_first_result(qtbot, window, library[5])

    image = QImage(40, 30, QImage.Format.Format_RGB32)
    image.fill(QColor("orange"))
    clipboard.setImage(image)
    assert window.paste()
    pasted = window.query_bar.model.terms[-1]
    assert pasted.kind == "image" and pasted.value.startswith(str(settings.cache_dir / "pasted"))

    clipboard.setText("plain words")  # not a photo: the search field pastes the text as usual
    qtbot.keyClick(window.query_bar.line_edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert window.query_bar.line_edit.text() == "plain words"


def test_the_last_query_and_layout_come_back(qtbot, windows, settings, library, tmp_path):
    window = open_indexed(qtbot, windows, settings, library)
    window.add_image_terms([library[1]])
    window.query_bar.model.extend([QueryTerm("text", "sunset", -0.5)])
    window.zoom(+1)
    size = window.results_view.thumbnail_size
    windows.close(window)
    again = windows.open(settings)
    assert again.query_bar.model.terms == [QueryTerm("image", str(library[1])), QueryTerm("text", "sunset", -0.5)]
    assert again.results_view.thumbnail_size == size
    wait_first_result(qtbot, again, library[1])  # the restored query runs once the library is open


def test_closing_while_indexing_then_reopening_keeps_counts_and_embeds_nothing_twice(qtbot, windows, settings,
                                                                                   tmp_path):
    photos = write_photos(tmp_path / "Big", 400)
    first = windows.open(settings)
    first.controller.add_folder(photos[0].parent)
    with qtbot.waitSignal(first.controller.progress, check_params_cb=lambda p: 0 < p.done < p.total,
                          timeout=120_000):
        pass  # the first committed batches
    windows.close(first)  # mid-index: "Finishing…", lanes stop, the library closes

    from vsearch_app.core.service import LibraryService

    with LibraryService.open(settings) as service:
        committed = service.status().counts["indexed"]
    assert 0 < committed < 400, "closed after indexing had finished: the test needs more photos"

    second = windows.open(settings)
    qtbot.waitUntil(lambda: second.controller.status is not None, timeout=60_000)
    assert second.controller.status.counts["indexed"] >= committed
    wait_indexed(qtbot, second, 400)
    assert second.controller.status.embedded_this_session == 400 - committed


def test_another_indexer_is_shown_in_the_status_line_and_retried(qtbot, windows, settings, library, monkeypatch):
    from vsearch_app.core.store.writer_lock import WriterLock

    monkeypatch.setattr(states, "BUSY_RETRY_S", 0.5)
    settings.data_dir.mkdir(parents=True)
    other = WriterLock(settings.data_dir, "indexing").acquire()  # as if `vsearch index` ran in another window
    try:
        window = windows.open(settings)
        window.controller.add_folder(library[0].parent)
        qtbot.waitUntil(lambda: window.controller.state == states.BUSY, timeout=60_000)
        qtbot.waitUntil(lambda: "indexing" in window.status_panel.text().lower(), timeout=5_000)
        assert window.status_panel.text() == window.controller.state_message[:1].upper() + \
            window.controller.state_message[1:]
    finally:
        other.release()
    wait_indexed(qtbot, window, len(library))  # retried once the other indexer is done


def test_a_missing_model_is_explained_and_folders_still_work(qtbot, windows, tmp_path, library):
    settings = window_settings(tmp_path, tmp_path / "no-such-model")
    window = windows.open(settings)
    window.controller.add_folder(library[0].parent)
    qtbot.waitUntil(lambda: window.empty_state.state == "model_missing"
                    and window.controller.state == states.MODEL_MISSING, timeout=60_000)
    assert "no-such-model" in window.empty_state.detail
    assert "no-such-model" in window.status_panel.text()
    qtbot.waitUntil(lambda: [f.path for f in window.folders_panel.folders()] == [library[0].parent],
                    timeout=10_000)  # managing folders needs no model
    assert window.empty_state.button.isVisible()  # "Get the Search Model…": see test_first_run.py


def test_closing_shows_finishing_and_stops_every_lane(qtbot, windows, settings):
    window = windows.open(settings)
    qtbot.waitUntil(lambda: window.controller.ready, timeout=30_000)
    with qtbot.waitSignal(window.controller.finishing):
        window.close()
    assert window.isVisible() and window._overlay.title == "Finishing…"  # kept on screen until the lanes are done
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
    assert window.controller.is_stopped and window.controller.wait_for_threads(5_000)
