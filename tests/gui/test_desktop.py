"""gui.desktop: what each platform would launch to open, reveal and copy a photo (launchers injected)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QGuiApplication

from vsearch_app.gui import desktop
from vsearch_app.gui.desktop import DesktopError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def photo(tmp_path):
    folder = tmp_path / "Summer 2024"
    folder.mkdir()
    path = folder / "beach day.jpg"
    path.write_bytes(b"jpeg")
    return path


class Recorder:
    def __init__(self, result=True):
        self.calls = []
        self.result = result

    def __call__(self, *args):
        self.calls.append(args)
        return self.result


def test_open_path_hands_the_file_url_to_the_default_app(photo):
    opener = Recorder()
    desktop.open_path(photo, open_url=opener)
    (url,), = opener.calls
    assert isinstance(url, QUrl) and url.isLocalFile() and Path(url.toLocalFile()) == photo


def test_open_path_says_when_no_app_opens_it(photo):
    with pytest.raises(DesktopError, match="No app .* open beach day.jpg"):
        desktop.open_path(photo, open_url=Recorder(result=False))


def test_a_missing_file_is_one_clear_message_and_nothing_is_launched(tmp_path):
    opener, spawn = Recorder(), Recorder()
    gone = tmp_path / "gone.jpg"
    with pytest.raises(DesktopError, match="gone.jpg is not there any more"):
        desktop.open_path(gone, open_url=opener)
    with pytest.raises(DesktopError, match="gone.jpg is not there any more"):
        desktop.reveal_in_file_manager(gone, platform="win32", spawn=spawn)
    assert opener.calls == [] and spawn.calls == []


def test_reveal_on_windows_selects_the_file_in_explorer(photo):
    spawn = Recorder()
    desktop.reveal_in_file_manager(photo, platform="win32", spawn=spawn)
    # One string: Explorer parses its own command line, and the path (with spaces) is quoted after "/select,".
    assert spawn.calls == [(f'explorer /select,"{photo}"',)]


def test_reveal_on_macos_uses_open_r(photo):
    spawn = Recorder()
    desktop.reveal_in_file_manager(photo, platform="darwin", spawn=spawn)
    assert spawn.calls == [(["open", "-R", str(photo)],)]


def test_reveal_on_linux_asks_the_file_manager_service_to_show_the_item(photo):
    show, opener = Recorder(result=True), Recorder()
    desktop.reveal_in_file_manager(photo, platform="linux", show_items=show, open_url=opener)
    ((uri, on_failure),) = show.calls
    assert QUrl(uri).toLocalFile() == str(photo) and uri.startswith("file:///")
    assert opener.calls == []  # the service shows it; nothing else opens
    on_failure()  # the service answered with an error later: the folder opens instead
    assert [Path(url.toLocalFile()) for (url,) in opener.calls] == [photo.parent]


def test_reveal_on_linux_without_the_service_opens_the_folder(photo):
    opener = Recorder()
    desktop.reveal_in_file_manager(photo, platform="linux", show_items=Recorder(result=False), open_url=opener)
    assert [Path(url.toLocalFile()) for (url,) in opener.calls] == [photo.parent]


def test_a_spawn_failure_is_a_desktop_error(photo, monkeypatch):
    def no_such_program(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(subprocess, "Popen", no_such_program)
    with pytest.raises(DesktopError, match="Could not start the file manager: No such file or directory"):
        desktop.reveal_in_file_manager(photo, platform="darwin")


def test_open_url_opens_a_web_page():
    opener = Recorder()
    desktop.open_url("https://huggingface.co/google/paligemma-3b-mix-224", open_url=opener)
    assert opener.calls[0][0].toString() == "https://huggingface.co/google/paligemma-3b-mix-224"
    with pytest.raises(DesktopError, match="Could not open https://example.org"):
        desktop.open_url("https://example.org", open_url=Recorder(result=False))


def test_copy_paths_puts_text_and_file_urls_on_the_clipboard(qapp, photo, tmp_path):
    other = tmp_path / "other.png"
    other.write_bytes(b"png")
    clipboard = QGuiApplication.clipboard()
    desktop.copy_paths([photo, other], clipboard=clipboard)
    mime = clipboard.mimeData()
    assert mime.text() == f"{photo}\n{other}"
    assert [Path(url.toLocalFile()) for url in mime.urls()] == [photo, other]
    gnome = bytes(mime.data("x-special/gnome-copied-files")).decode().splitlines()
    assert gnome[0] == "copy" and [Path(QUrl(u).toLocalFile()) for u in gnome[1:]] == [photo, other]


def test_copy_nothing_leaves_the_clipboard_alone(qapp):
    clipboard = QGuiApplication.clipboard()
    clipboard.setText("keep me")
    desktop.copy_paths([], clipboard=clipboard)
    assert clipboard.text() == "keep me"


_FAKE_FILE_MANAGER = """
import sys
from PySide6.QtCore import ClassInfo, QCoreApplication, QObject, Slot
from PySide6.QtDBus import QDBusConnection

@ClassInfo({"D-Bus Interface": "org.freedesktop.FileManager1"})
class FileManager(QObject):
    @Slot("QStringList", str)
    def ShowItems(self, uris, startup_id):
        print("SHOW", *uris, flush=True)
        QCoreApplication.quit()

app = QCoreApplication(sys.argv)
bus = QDBusConnection.sessionBus()
manager = FileManager()
bus.registerObject("/org/freedesktop/FileManager1", manager, QDBusConnection.RegisterOption.ExportAllSlots)
bus.registerService("org.freedesktop.FileManager1")
print("READY", flush=True)
app.exec()
"""

_REVEAL = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
import vsearch_app.gui
from vsearch_app.gui import desktop

app = QGuiApplication(sys.argv)
opened = []
desktop.reveal_in_file_manager(sys.argv[1], platform="linux", open_url=lambda url: opened.append(url) or True)
QTimer.singleShot(3000, app.quit)  # the reply arrives well before; afterwards nothing else may have been opened
app.exec()
print("OPENED", len(opened), flush=True)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("dbus-run-session") is None,
                    reason="needs a freedesktop D-Bus session bus")
@pytest.mark.parametrize("with_file_manager", [True, False])
def test_reveal_on_linux_over_a_real_session_bus(photo, tmp_path, with_file_manager):
    """The real D-Bus path on a private session bus: a fake file manager gets ShowItems with the file's URI; with
    no file manager service the folder is opened instead."""
    (tmp_path / "fm.py").write_text(_FAKE_FILE_MANAGER)
    (tmp_path / "reveal.py").write_text(_REVEAL)
    start_file_manager = f"""
        "{sys.executable}" "{tmp_path / 'fm.py'}" > "{tmp_path / 'fm.out'}" &
        for i in $(seq 100); do grep -q READY "{tmp_path / 'fm.out'}" 2>/dev/null && break; sleep 0.1; done
    """ if with_file_manager else f'touch "{tmp_path / "fm.out"}"'
    script = textwrap.dedent(f"""
        {start_file_manager}
        "{sys.executable}" "{tmp_path / 'reveal.py'}" "{photo}"
        wait
        cat "{tmp_path / 'fm.out'}"
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(["dbus-run-session", "--", "bash", "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    if with_file_manager:
        assert "OPENED 0" in done.stdout  # the file manager showed it; no fallback folder was opened
        assert f"SHOW {QUrl.fromLocalFile(str(photo)).toString()}" in done.stdout
    else:
        assert "OPENED 1" in done.stdout
