"""The dialogs: failed files, settings (persisted in QSettings), and the model-missing / download dialog."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QDialog, QFileDialog

from vsearch_app.core.types import FailedFile
from vsearch_app.errors import DownloadError, InvalidArgumentError
from vsearch_app.gui.desktop import DesktopError
from vsearch_app.gui.dialogs.failed_files import FailedFilesDialog
from vsearch_app.gui.dialogs.first_run import ModelDialog, check_model_folder
from vsearch_app.gui.dialogs.settings import SettingsDialog, edit_preferences
from vsearch_app.gui.settings_model import Preferences, PreferencesStore
from vsearch_app.settings import DEFAULT_MODEL

# --- failed files ----------------------------------------------------------------------------------------------------

FAILED = [
    FailedFile(Path("/photos/b/zebra.jpg"), "cannot decode: truncated file"),
    FailedFile(Path("/photos/a/apple.heic"), "HEIC support is not installed"),
    FailedFile(Path("/photos/c/mango.png"), "image is too large (decompression bomb guard)"),
]


@pytest.fixture
def failed_dialog(qtbot):
    revealed, copied = [], []
    dialog = FailedFilesDialog(FAILED, reveal=revealed.append, copy=copied.append)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog, revealed, copied


def _cell(dialog: FailedFilesDialog, row: int, column: int) -> str:
    model = dialog.table.model()
    return model.itemData(model.index(row, column))[Qt.ItemDataRole.DisplayRole]


def test_failed_files_table_shows_name_reason_and_folder_sorted_by_name(failed_dialog):
    dialog, _, _ = failed_dialog
    assert dialog.paths() == [Path("/photos/a/apple.heic"), Path("/photos/c/mango.png"), Path("/photos/b/zebra.jpg")]
    assert (_cell(dialog, 0, 0), _cell(dialog, 0, 1), _cell(dialog, 0, 2)) == (
        "apple.heic", "HEIC support is not installed", "/photos/a")


def test_failed_files_table_sorts_by_any_column(failed_dialog, qtbot):
    dialog, _, _ = failed_dialog
    header = dialog.table.horizontalHeader()
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=header.rect().topLeft() + QPoint(header.sectionPosition(2) + 10, 5))
    assert [p.name for p in dialog.paths()] == ["apple.heic", "zebra.jpg", "mango.png"]  # by folder a, b, c
    dialog.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)  # by reason, z..a, ignoring case
    assert [p.name for p in dialog.paths()] == ["mango.png", "apple.heic", "zebra.jpg"]


def test_reveal_and_copy_act_on_the_selection(failed_dialog, qtbot):
    dialog, revealed, copied = failed_dialog
    assert dialog.selected_paths() == [Path("/photos/a/apple.heic")]  # the first row starts selected
    qtbot.mouseClick(dialog._reveal_button, Qt.MouseButton.LeftButton)
    assert revealed == [Path("/photos/a/apple.heic")]
    dialog.table.selectAll()
    qtbot.mouseClick(dialog._copy_button, Qt.MouseButton.LeftButton)
    assert copied == [dialog.paths()] and dialog.note == "3 paths copied"
    dialog.select_rows([2])
    dialog.table.setFocus()
    qtbot.keyClick(dialog.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert copied[-1] == [Path("/photos/b/zebra.jpg")] and dialog.note == "Path copied"


def test_reveal_of_a_vanished_file_says_so_in_the_dialog(qtbot):
    def reveal(path):
        raise DesktopError(f"{path.name} is not there any more")

    dialog = FailedFilesDialog(FAILED, reveal=reveal, copy=lambda paths: None)
    qtbot.addWidget(dialog)
    dialog.reveal_selected()
    assert dialog.note == "apple.heic is not there any more"


def test_refreshing_keeps_the_selection_and_an_empty_list_says_all_is_well(failed_dialog):
    dialog, _, _ = failed_dialog
    dialog.select_rows([1])
    dialog.set_failed([*FAILED, FailedFile(Path("/photos/d/kiwi.jpg"), "cannot decode")])
    assert dialog.selected_paths() == [Path("/photos/c/mango.png")] and len(dialog.paths()) == 4
    dialog.set_failed([])
    assert dialog.paths() == [] and not dialog._reveal_button.isEnabled()


# --- settings --------------------------------------------------------------------------------------------------------


def test_preferences_round_trip_through_an_ini_file(tmp_path):
    store = PreferencesStore(tmp_path / "settings.ini")
    assert store.load() == Preferences()
    chosen = Preferences(search_model="/models/siglip", caption_model="google/paligemma-3b-mix-448", device="cpu",
                         dtype="float32", thumbnail_size=224, result_limit=500, color_scheme="dark")
    store.save(chosen)
    assert PreferencesStore(tmp_path / "settings.ini").load() == chosen
    store.save(Preferences())  # back to "the library's model": the saved search model is removed
    assert store.load().search_model is None


def test_a_bad_saved_value_falls_back_to_its_default(tmp_path, caplog):
    path = tmp_path / "settings.ini"
    path.write_text("[preferences]\ndevice=quantum\nthumbnail_size=big\nresult_limit=50\n")
    prefs = PreferencesStore(path).load()
    assert (prefs.device, prefs.thumbnail_size, prefs.result_limit) == ("auto", 160, 50)
    assert "device" in caplog.text and "thumbnail_size" in caplog.text


def test_preferences_reject_values_outside_their_range():
    with pytest.raises(InvalidArgumentError, match="device 'tpu'"):
        Preferences(device="tpu")
    with pytest.raises(InvalidArgumentError, match="thumbnail size 20"):
        Preferences(thumbnail_size=20)
    assert Preferences(search_model="  ").search_model is None


def test_command_line_values_win_over_saved_preferences(tmp_path):
    prefs = Preferences(search_model="/saved/model", caption_model="saved/caption", device="cpu", dtype="float32")
    saved = prefs.app_settings(tmp_path, env={})
    assert (saved.model, saved.caption_model, saved.device, saved.dtype) == ("/saved/model", "saved/caption", "cpu",
                                                                             "float32")
    flags = prefs.app_settings(tmp_path, model="flag/model", caption_model="flag/caption", device="cuda",
                               dtype="bfloat16", env={})
    assert (flags.model, flags.caption_model, flags.device, flags.dtype) == ("flag/model", "flag/caption", "cuda",
                                                                             "bfloat16")
    assert prefs.app_settings(tmp_path, env={"VSEARCH_MODEL": "env/model"}).model == "env/model"
    assert Preferences().app_settings(tmp_path, env={}).model is None  # the library's model, else the default
    assert flags.data_dir == tmp_path.resolve()


@pytest.fixture
def settings_dialog(qtbot, tmp_path):
    revealed = []
    dialog = SettingsDialog(Preferences(device="cpu", color_scheme="dark", thumbnail_size=192), data_dir=tmp_path,
                            search_models=[DEFAULT_MODEL, "google/siglip-base-patch16-224"], reveal=revealed.append)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog, revealed


def test_settings_dialog_shows_and_returns_every_choice(settings_dialog):
    dialog, _ = settings_dialog
    assert dialog.preferences() == Preferences(device="cpu", color_scheme="dark", thumbnail_size=192)
    assert dialog.search_model.lineEdit().placeholderText() == "Automatic: the library's own model"
    dialog.search_model.setCurrentIndex(1)
    dialog.caption_model.setCurrentText("google/paligemma-3b-mix-448")
    dialog.device.setCurrentIndex(dialog.device.findData("cuda"))
    dialog.dtype.setCurrentIndex(dialog.dtype.findData("bfloat16"))
    dialog.thumbnail_size.setValue(250)  # snaps to the slider's 16 px steps
    dialog.result_limit.setValue(1000)
    dialog.color_scheme.setCurrentIndex(dialog.color_scheme.findData("light"))
    assert dialog.preferences() == Preferences(
        search_model="google/siglip-base-patch16-224", caption_model="google/paligemma-3b-mix-448", device="cuda",
        dtype="bfloat16", thumbnail_size=256, result_limit=1000, color_scheme="light")
    assert dialog._thumbnail_label.text() == "256 px"
    assert dialog.result_limit.textFromValue(0) and dialog.result_limit.specialValueText() == "All matches"


def test_settings_restore_defaults(settings_dialog):
    dialog, _ = settings_dialog
    dialog.restore_defaults()
    assert dialog.preferences() == Preferences()


def test_the_data_folder_is_read_only_with_reveal(settings_dialog, qtbot, tmp_path):
    dialog, revealed = settings_dialog
    assert dialog.data_folder.isReadOnly() and dialog.data_folder.text() == str(tmp_path)
    qtbot.mouseClick(dialog.reveal_button, Qt.MouseButton.LeftButton)
    assert revealed == [tmp_path]


def test_choose_folder_fills_in_a_local_model(settings_dialog, qtbot, monkeypatch, tmp_path):
    dialog, _ = settings_dialog
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a: str(tmp_path / "my-siglip")))
    qtbot.mouseClick(dialog.search_folder_button, Qt.MouseButton.LeftButton)
    assert dialog.preferences().search_model == str(tmp_path / "my-siglip")


def test_an_empty_caption_model_keeps_the_dialog_open_with_the_reason(settings_dialog):
    dialog, _ = settings_dialog
    dialog.caption_model.setCurrentText("")
    dialog.accept()
    assert dialog.isVisible() and dialog.result() != QDialog.DialogCode.Accepted
    assert "caption model cannot be empty" in dialog._model_error.text()


@pytest.mark.parametrize("accept", [True, False])
def test_edit_preferences_saves_only_on_ok(tmp_path, monkeypatch, qapp, accept):
    store = PreferencesStore(tmp_path / "settings.ini")

    def fake_exec(dialog):
        dialog.color_scheme.setCurrentIndex(dialog.color_scheme.findData("dark"))
        return QDialog.DialogCode.Accepted if accept else QDialog.DialogCode.Rejected

    monkeypatch.setattr(SettingsDialog, "exec", fake_exec)
    result = edit_preferences(None, store, data_dir=tmp_path)
    if accept:
        assert result == Preferences(color_scheme="dark") == store.load()
    else:
        assert result is None and store.load() == Preferences()


# --- model missing / download ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DownloadProgress:  # the shape core.types gains with the download work (duck-typed by the dialog)
    done_bytes: int
    total_bytes: int
    current_file: str | None


class FakeDownload:
    """download(token=, progress=, cancel=): reports progress, then waits for the test to say how it ends."""

    def __init__(self, outcome="succeed", folder=Path("/models/siglip")):
        self.outcome = outcome
        self.folder = folder
        self.reported = threading.Event()
        self.release = threading.Event()
        self.calls = []
        self.thread_names = []

    def __call__(self, *, token=None, progress=None, cancel=None):
        self.calls.append(token)
        self.thread_names.append(threading.current_thread().name)
        for done in (0, 250_000_000, 500_000_000):
            progress(DownloadProgress(done, 1_000_000_000, "model.safetensors"))
        self.reported.set()
        while not self.release.wait(0.02):
            if cancel.is_set():
                raise DownloadError("download cancelled")
        if self.outcome == "offline":
            raise DownloadError("cannot reach huggingface.co: no network connection")
        if self.outcome == "bug":
            raise RuntimeError("boom")
        return self.folder


@pytest.fixture
def make_model_dialog(qtbot):
    made = []

    def make(download, **kwargs) -> ModelDialog:
        dialog = ModelDialog(DEFAULT_MODEL, download, size_bytes=1_500_000_000, **kwargs)
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        made.append((dialog, download))
        return dialog

    yield make
    for dialog, download in made:
        if isinstance(download, FakeDownload):
            download.release.set()
        assert dialog.wait_for_worker(10_000)


def test_the_explanation_says_what_the_model_is_and_its_size(make_model_dialog):
    dialog = make_model_dialog(FakeDownload())
    text = dialog._intro_text.text()
    assert "understand both photos and words" in text and "1.5 GB" in text and DEFAULT_MODEL in text
    assert dialog.page == "intro" and dialog.download_button.isEnabled()


def test_download_shows_progress_then_succeeds(make_model_dialog, qtbot):
    download = FakeDownload()
    dialog = make_model_dialog(download)
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    assert dialog.page == "downloading" and dialog.downloading
    qtbot.waitUntil(lambda: dialog.progress_text == "500 MB of 1 GB · model.safetensors")
    assert dialog.progress_bar.maximum() == 1_000_000 and dialog.progress_bar.value() == 500_000
    assert download.thread_names[0] != threading.current_thread().name  # ran on the worker thread
    with qtbot.waitSignal(dialog.modelReady) as ready:
        download.release.set()
    assert ready.args == [Path("/models/siglip")] and dialog.model_path == Path("/models/siglip")
    assert dialog.result() == QDialog.DialogCode.Accepted and not dialog.downloading
    assert download.calls == [None]  # no token for the search model


def test_cancel_stops_the_download_and_returns_to_the_explanation(make_model_dialog, qtbot):
    download = FakeDownload()
    dialog = make_model_dialog(download)
    dialog.start_download()
    assert download.reported.wait(10)
    with qtbot.assertNotEmitted(dialog.modelReady):
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
        assert dialog.cancel_button.text() == "Cancelling…"
        qtbot.waitUntil(lambda: dialog.page == "intro")
    assert dialog.status_text == "Download cancelled." and not dialog.downloading
    assert dialog.isVisible()


def test_closing_during_a_download_cancels_it_then_closes(make_model_dialog, qtbot):
    download = FakeDownload()
    dialog = make_model_dialog(download)
    dialog.start_download()
    assert download.reported.wait(10)
    dialog.close()
    assert dialog.isVisible()  # waits for the worker to stop first
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert dialog.result() == QDialog.DialogCode.Rejected and not dialog.downloading


def test_offline_download_explains_and_offers_try_again(make_model_dialog, qtbot):
    download = FakeDownload(outcome="offline")
    dialog = make_model_dialog(download)
    dialog.start_download()
    download.release.set()
    qtbot.waitUntil(lambda: dialog.page == "failed")
    assert "could not reach Hugging Face" in dialog.failure_text and "offline" in dialog.failure_text
    assert "no network connection" in dialog.failure_text
    assert "Everything else keeps working" in dialog.failure_text
    download.outcome = "succeed"
    with qtbot.waitSignal(dialog.modelReady):
        qtbot.mouseClick(dialog.retry_button, Qt.MouseButton.LeftButton)
    assert len(download.calls) == 2


def test_an_unexpected_error_is_shown_not_raised(make_model_dialog, qtbot):
    download = FakeDownload(outcome="bug")
    dialog = make_model_dialog(download)
    dialog.start_download()
    download.release.set()
    qtbot.waitUntil(lambda: dialog.page == "failed")
    assert "Something went wrong" in dialog.failure_text and "RuntimeError: boom" in dialog.failure_text


def test_choosing_a_model_folder_checks_it(make_model_dialog, qtbot, monkeypatch, tmp_path):
    dialog = make_model_dialog(FakeDownload())
    folder = tmp_path / "my-siglip"
    folder.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a: str(folder)))
    with qtbot.assertNotEmitted(dialog.modelReady):
        qtbot.mouseClick(dialog.choose_button, Qt.MouseButton.LeftButton)
    assert "no config.json" in dialog.status_text and dialog.isVisible()
    (folder / "config.json").write_text("{}")
    assert "no .safetensors" in check_model_folder(folder)
    (folder / "model.safetensors").write_bytes(b"")
    with qtbot.waitSignal(dialog.modelReady) as ready:
        qtbot.mouseClick(dialog.choose_button, Qt.MouseButton.LeftButton)
    assert ready.args == [folder] and dialog.result() == QDialog.DialogCode.Accepted


def test_not_now_closes_without_a_model(make_model_dialog, qtbot):
    dialog = make_model_dialog(FakeDownload())
    qtbot.mouseClick(dialog.not_now_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Rejected and dialog.model_path is None


def test_gated_model_explains_the_licence_and_needs_a_token(make_model_dialog, qtbot):
    opened = []
    download = FakeDownload(folder=Path("/models/paligemma"))
    dialog = make_model_dialog(download, gated=True, purpose="caption", open_url=opened.append,
                               licence_url="https://huggingface.co/google/paligemma-3b-mix-224")
    assert "accept their licence" in dialog._intro_text.text()
    assert not dialog.download_button.isEnabled()  # a token first
    dialog._on_link("https://huggingface.co/google/paligemma-3b-mix-224")
    assert opened == ["https://huggingface.co/google/paligemma-3b-mix-224"]
    qtbot.keyClicks(dialog.token, "hf_secret")
    assert dialog.download_button.isEnabled()
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    assert download.reported.wait(10)
    with qtbot.waitSignal(dialog.modelReady):
        download.release.set()
    assert download.calls == ["hf_secret"]


def test_gated_failure_points_at_the_licence_and_token(make_model_dialog, qtbot):
    download = FakeDownload(outcome="offline")
    dialog = make_model_dialog(download, gated=True, purpose="caption", open_url=lambda url: None)
    dialog.token.setText("hf_wrong")
    dialog.start_download()
    download.release.set()
    qtbot.waitUntil(lambda: dialog.page == "failed")
    assert "accepted the licence" in dialog.failure_text


def test_worker_results_reach_the_gui_thread(make_model_dialog, qtbot):
    """GUI.md pitfall: the worker's signals must run their slots in the GUI thread, not the worker's."""
    threads = []
    download = FakeDownload()
    dialog = make_model_dialog(download)
    dialog.modelReady.connect(lambda path: threads.append(threading.current_thread().name),
                              Qt.ConnectionType.DirectConnection)  # runs wherever modelReady is emitted
    dialog.start_download()
    download.release.set()
    qtbot.waitUntil(lambda: not dialog.downloading)
    assert threads == [threading.current_thread().name]
