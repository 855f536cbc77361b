"""Open, reveal and copy photos for the window's menus and keys.

gui/desktop.py (the platform-specific file manager calls, built beside the window) does the work when it is
present; until then these fall back to Qt: the default app for Open, the containing folder for Reveal, and the
clipboard with the paths as text and as file URLs for Copy.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QDesktopServices, QGuiApplication

from vsearch_app.gui.models.results import file_url


def _desktop():
    try:
        return importlib.import_module("vsearch_app.gui.desktop")
    except ModuleNotFoundError:
        return None


def open_path(path: Path) -> bool:
    desktop = _desktop()
    if desktop is not None and hasattr(desktop, "open_path"):
        return bool(desktop.open_path(path) is not False)
    return QDesktopServices.openUrl(file_url(Path(path)))


def reveal(path: Path) -> bool:
    """Show ``path`` in the file manager (its folder, when the platform cannot select the file)."""
    desktop = _desktop()
    if desktop is not None and hasattr(desktop, "reveal_in_file_manager"):
        return bool(desktop.reveal_in_file_manager(path) is not False)
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    return QDesktopServices.openUrl(file_url(folder))


def copy_paths(paths: Sequence[Path]) -> None:
    desktop = _desktop()
    if desktop is not None and hasattr(desktop, "copy_paths"):
        desktop.copy_paths(list(paths))
        return
    mime = QMimeData()
    mime.setText("\n".join(str(p) for p in paths))
    mime.setUrls([file_url(Path(p)) for p in paths])
    QGuiApplication.clipboard().setMimeData(mime)
