"""The window's first run and settings against a real session: the search model missing -> the model dialog
(a fake download into the hub cache with progress, or a chosen model folder) -> indexing starts; the Settings
dialog (Ctrl+,) applies the thumbnail size and result limit at once; the failed-files list; paging past 1,000
results through the engine's SearchResults."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from tests.gui.photos import write_photos
from tests.gui.window_helpers import wait_indexed, wait_results, window_settings
from vsearch_app.core.types import DownloadProgress
from vsearch_app.gui.dialogs.failed_files import FailedFilesDialog
from vsearch_app.gui.dialogs.first_run import ModelDialog
from vsearch_app.gui.engine import library_lane as states
from vsearch_app.gui.settings_model import Preferences, PreferencesStore
from vsearch_app.settings import AppSettings

REPO_ID = "example/tiny-siglip"


def missing_model_settings(tmp_path: Path) -> AppSettings:
    settings = AppSettings.resolve(tmp_path / "data", model=REPO_ID, device="cpu", dtype="float32")
    return dataclasses.replace(settings, cache_dir=tmp_path / "cache", hub_cache_dir=tmp_path / "hub")


def fake_download(model_dir: Path, hub: Path, calls: list):
    """Lays the tiny model out in the hub cache as huggingface_hub does, reporting progress like the real one."""

    def download(token=None, progress=None, cancel: threading.Event | None = None) -> Path:
        calls.append(token)
        files = sorted(p for p in model_dir.iterdir() if p.is_file())
        total = sum(p.stat().st_size for p in files)
        repo = hub / f"models--{REPO_ID.replace('/', '--')}"
        snapshot = repo / "snapshots" / "0123abcd"
        snapshot.mkdir(parents=True)
        done = 0
        for path in files:
            progress(DownloadProgress(done, total, path.name))
            shutil.copy(path, snapshot / path.name)
            done += path.stat().st_size
        progress(DownloadProgress(done, total, None))
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("0123abcd")
        return snapshot

    return download


def small_photos(folder: Path, count: int) -> list[Path]:
    """Many distinct tiny JPEGs (quick to write and to index)."""
    from PIL import Image

    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        path = folder / f"p{i:05d}.jpg"
        Image.new("RGB", (24, 16), ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256)).save(path, "JPEG")
        paths.append(path)
    return paths


def test_model_missing_downloads_through_the_dialog_then_indexes(qtbot, windows, tmp_path, tiny_siglip_dir,
                                                                  monkeypatch):
    photos = write_photos(tmp_path / "Holidays", 6)
    settings = missing_model_settings(tmp_path)
    window = windows.open(settings)
    window.controller.add_folder(photos[0].parent)
    qtbot.waitUntil(lambda: window.empty_state.state == "model_missing", timeout=60_000)
    assert window.controller.state == states.MODEL_MISSING
    assert REPO_ID in window.empty_state.detail
    calls: list = []
    monkeypatch.setattr(window.controller, "model_download",
                        lambda repo_id: fake_download(tiny_siglip_dir, settings.hub_cache_dir, calls))
    qtbot.mouseClick(window.empty_state.button, Qt.MouseButton.LeftButton)  # "Get the Search Model…"
    dialog = window.model_dialog
    assert isinstance(dialog, ModelDialog) and dialog.isVisible() and dialog.model_id == REPO_ID
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.model_dialog is None, timeout=30_000)  # closed as accepted
    assert calls == [None]
    wait_indexed(qtbot, window, len(photos))  # prepared and watching with the downloaded model
    assert window.controller.state == states.WATCHING


def test_model_missing_choose_a_model_folder_makes_it_the_librarys_model(qtbot, windows, tmp_path, tiny_siglip_dir,
                                                                         monkeypatch):
    photos = write_photos(tmp_path / "Holidays", 5)
    settings = window_settings(tmp_path, tmp_path / "no-such-model")  # a --model that is not there
    window = windows.open(settings)
    window.controller.add_folder(photos[0].parent)
    qtbot.waitUntil(lambda: window.empty_state.state == "model_missing", timeout=60_000)
    window.empty_state.button.click()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kw: str(tiny_siglip_dir))
    window.model_dialog.choose_folder()
    wait_indexed(qtbot, window, len(photos))
    assert window.controller.status.model == str(tiny_siglip_dir.resolve())


def test_a_failed_download_says_offline_and_the_window_keeps_working(qtbot, windows, tmp_path, monkeypatch):
    from vsearch_app.errors import DownloadError

    photos = write_photos(tmp_path / "Holidays", 3)
    window = windows.open(missing_model_settings(tmp_path))
    window.controller.add_folder(photos[0].parent)
    qtbot.waitUntil(lambda: window.empty_state.state == "model_missing", timeout=60_000)

    def offline(**_kwargs):
        raise DownloadError("cannot reach huggingface.co: the network is unreachable")

    monkeypatch.setattr(window.controller, "model_download", lambda repo_id: offline)
    dialog = window.show_model_dialog()
    dialog.start_download()
    qtbot.waitUntil(lambda: dialog.page == "failed", timeout=10_000)
    assert "offline" in dialog.failure_text
    dialog.reject()
    qtbot.waitUntil(lambda: [f.path for f in window.folders_panel.folders()] == [photos[0].parent],
                    timeout=10_000)  # folders still work
    assert window.empty_state.state == "model_missing"


def test_settings_apply_thumbnail_size_and_result_limit_at_once(qtbot, windows, tmp_path, tiny_siglip_dir):
    photos = write_photos(tmp_path / "Holidays", 12)
    store = PreferencesStore(tmp_path / "prefs.ini")
    settings = window_settings(tmp_path, tiny_siglip_dir)
    window = windows.open(settings)
    window._preferences = store
    window.controller.add_folder(photos[0].parent)
    wait_indexed(qtbot, window, len(photos))
    window.add_image_terms([photos[0]])
    assert len(wait_results(qtbot, window)) == 12
    changed = []
    window.preferencesChanged.connect(changed.append)
    qtbot.keyClick(window, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)  # Ctrl+,
    dialog = window.settings_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.data_folder.text() == str(settings.data_dir) and dialog.data_folder.isReadOnly()
    dialog.thumbnail_size.setValue(224)
    dialog.result_limit.setValue(5)
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.accept()
    assert window.results_view.thumbnail_size == 224
    qtbot.waitUntil(lambda: window.results_model.rowCount() == 5 and not window._searching, timeout=30_000)
    assert window._summary.text() == "The best 5 matches"
    assert "next starts" in window.status_panel.currentMessage()  # the device applies after a restart
    saved = store.load()
    assert (saved.thumbnail_size, saved.result_limit, saved.device) == (224, 5, "cpu")
    assert changed == [saved]
    assert isinstance(changed[0], Preferences)


def test_failed_files_open_in_their_dialog(qtbot, windows, tmp_path, tiny_siglip_dir):
    photos = write_photos(tmp_path / "Holidays", 3)
    (photos[0].parent / "broken.jpg").write_bytes(b"not a jpeg at all")
    window = windows.open(window_settings(tmp_path, tiny_siglip_dir))
    window.controller.add_folder(photos[0].parent)
    qtbot.waitUntil(lambda: window.status_panel.failed_button.isVisible(), timeout=60_000)
    assert window.status_panel.failed_button.text() == "1 failed"
    window.status_panel.failed_button.click()
    dialog = window.findChild(FailedFilesDialog)
    assert dialog is not None and dialog.isVisible()
    assert dialog.paths() == [photos[0].parent / "broken.jpg"]
    dialog.close()


def test_results_page_past_a_thousand(qtbot, windows, tmp_path, tiny_siglip_dir):
    photos = small_photos(tmp_path / "Many", 2_500)
    window = windows.open(window_settings(tmp_path, tiny_siglip_dir))
    window.controller.add_folder(photos[0].parent)
    wait_indexed(qtbot, window, len(photos), timeout=600_000)
    window.add_image_terms([photos[0]])
    wait_results(qtbot, window)
    model = window.results_model
    assert model.total == 2_500 and model.rowCount() == 1_000  # one page loaded, no cap
    view = window.results_view
    while model.canFetchMore(view.rootIndex()):
        model.fetchMore(view.rootIndex())  # what scrolling to the end asks for
    assert model.rowCount() == 2_500
    assert len({model.hit(row).path for row in range(2_500)}) == 2_500
    assert model.hit(0).path == photos[0]
    tip = model.data(model.index(1_500, 0), Qt.ItemDataRole.ToolTipRole)
    hit = model.hit(1_500)
    assert str(hit.path) in tip and f"{hit.score:.3f}" in tip
    assert "Modified " in tip  # no EXIF date: the file's time, said as such
    assert f"{hit.width} × {hit.height} pixels" in tip and " B" in tip
