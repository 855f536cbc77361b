"""Handing files to the desktop: open with the default app, reveal in the file manager, copy paths.

Each function takes its launcher as an optional argument (the URL opener, the process spawner, the D-Bus call), so
tests check what would be launched without launching anything.

Reveal, per platform:
- Windows: ``explorer /select,"C:\\path"``, which opens the folder with the item selected. The command is passed as
  one string because Explorer parses its own command line and does not understand the quoting ``subprocess``
  applies to a list.
- macOS: ``open -R path``.
- Linux and other freedesktop systems: the ``org.freedesktop.FileManager1.ShowItems`` D-Bus call (Nautilus, Dolphin,
  Nemo, Thunar and others implement it), sent asynchronously so a file manager that takes seconds to start never
  freezes the window. Without that service, or when the call fails, the item's folder opens instead.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QClipboard, QDesktopServices, QGuiApplication

from vsearch_app.errors import VSearchError

log = logging.getLogger(__name__)

UrlOpener = Callable[[QUrl], bool]  # QDesktopServices.openUrl
Spawner = Callable[[list[str] | str], object]  # starts a process and does not wait for it
# (file URI, called if the call fails later) -> whether the request was sent
ShowItems = Callable[[str, Callable[[], None]], bool]

_FILE_MANAGER = "org.freedesktop.FileManager1"
_FILE_MANAGER_PATH = "/org/freedesktop/FileManager1"
_DBUS_TIMEOUT_MS = 10_000
# GNOME Files pastes files (rather than their paths as text) only from this MIME type; "copy" keeps the originals.
_GNOME_COPIED_FILES = "x-special/gnome-copied-files"


class DesktopError(VSearchError):
    """The desktop could not do what was asked (the file is gone, no app opens it); the message says why."""


def open_path(path: str | Path, *, open_url: UrlOpener | None = None) -> None:
    """Open a photo with the user's default app, or a folder in the file manager. Raises DesktopError."""
    target = _existing(path)
    opener = open_url or QDesktopServices.openUrl
    if not opener(QUrl.fromLocalFile(str(target))):
        raise DesktopError(f"No app on this computer is set up to open {_display_name(target)}")


def open_url(url: str, *, open_url: UrlOpener | None = None) -> None:
    """Open a web page (a model's licence page) in the browser. Raises DesktopError."""
    opener = open_url or QDesktopServices.openUrl
    if not opener(QUrl(url)):
        raise DesktopError(f"Could not open {url} in a web browser")


def reveal_in_file_manager(path: str | Path, *, platform: str = sys.platform, spawn: Spawner | None = None,
                           show_items: ShowItems | None = None, open_url: UrlOpener | None = None) -> None:
    """Show ``path`` selected in the system's file manager (see the module docstring). Raises DesktopError when the
    item does not exist."""
    target = _existing(path)
    run = spawn or _spawn
    if platform == "win32":
        run(f'explorer /select,"{target}"')
        return
    if platform == "darwin":
        run(["open", "-R", str(target)])
        return
    opener = open_url or QDesktopServices.openUrl

    def open_containing_folder() -> None:
        folder = target.parent if target.parent != target else target
        if not opener(QUrl.fromLocalFile(str(folder))):
            log.warning("could not open %s in a file manager", folder)

    show = show_items or _freedesktop_show_items
    if not show(QUrl.fromLocalFile(str(target)).toString(), open_containing_folder):
        open_containing_folder()


def copy_paths(paths: Iterable[str | Path], *, clipboard: QClipboard | None = None) -> None:
    """Put the paths on the clipboard: as text (one per line) for editors and terminals, and as file URLs so a file
    manager pastes copies of the files themselves."""
    paths = [Path(p) for p in paths]
    if not paths:
        return
    urls = [QUrl.fromLocalFile(str(p)) for p in paths]
    mime = QMimeData()
    mime.setText("\n".join(str(p) for p in paths))
    mime.setUrls(urls)
    mime.setData(_GNOME_COPIED_FILES, "\n".join(["copy", *(u.toString() for u in urls)]).encode("utf-8"))
    (clipboard or QGuiApplication.clipboard()).setMimeData(mime)


def _existing(path: str | Path) -> Path:
    target = Path(path)
    if not target.exists():
        raise DesktopError(f"{_display_name(target)} is not there any more (moved, deleted, or on a drive that is "
                           "not connected?)")
    return target


def _display_name(path: Path) -> str:
    return path.name or str(path)


def _spawn(command: list[str] | str) -> object:
    try:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, close_fds=True)
    except OSError as exc:
        raise DesktopError(f"Could not start the file manager: {exc.strerror or exc}") from exc


# Pending D-Bus calls, kept alive until their reply arrives (a watcher with no reference left would be collected).
_pending_calls: set[object] = set()


def _freedesktop_show_items(uri: str, on_failure: Callable[[], None]) -> bool:
    """Ask the session's file manager to show ``uri`` selected; False when there is no bus or no file manager
    service. The reply is awaited asynchronously; an error reply calls ``on_failure``."""
    from PySide6.QtDBus import QDBusConnection, QDBusMessage, QDBusPendingCallWatcher  # Linux only; loaded lazily

    bus = QDBusConnection.sessionBus()
    if not bus.isConnected() or not _service_available(bus):
        return False
    message = QDBusMessage.createMethodCall(_FILE_MANAGER, _FILE_MANAGER_PATH, _FILE_MANAGER, "ShowItems")
    message.setArguments([[uri], ""])  # (as uris, s startup_id); a list of str is sent as a string array
    watcher = QDBusPendingCallWatcher(bus.asyncCall(message, _DBUS_TIMEOUT_MS))
    _pending_calls.add(watcher)

    def finished(done: QDBusPendingCallWatcher) -> None:
        _pending_calls.discard(done)
        if done.isError():
            log.info("the file manager refused ShowItems (%s); opening the folder instead", done.error().message())
            on_failure()
        done.deleteLater()

    watcher.finished.connect(finished)  # emitted in this (the GUI) thread
    return True


def _service_available(bus) -> bool:
    from PySide6.QtDBus import QDBusMessage

    if bus.interface().isServiceRegistered(_FILE_MANAGER).value():
        return True
    ask = QDBusMessage.createMethodCall("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                        "ListActivatableNames")
    reply = bus.call(ask, timeout=2_000)  # the bus daemon itself answers this at once
    if reply.type() != QDBusMessage.MessageType.ReplyMessage or not reply.arguments():
        return False
    return _FILE_MANAGER in reply.arguments()[0]
