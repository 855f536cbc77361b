"""Opening the real main window on a real library in tests, and driving it like a user (type, drop, click)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from vsearch_app.gui.engine.controller import EngineController
from vsearch_app.gui.ui_state import UiState
from vsearch_app.gui.views.main_window import MainWindow
from vsearch_app.settings import AppSettings

# The watcher's timings, shortened so a photo copied into a folder shows up within a second or two.
FAST_WATCH = {"debounce": 0.2, "max_delay": 1.0, "root_check_every": 0.3, "save_every": 5.0}
INDEX_TIMEOUT_MS = 120_000


def window_settings(tmp_path: Path, model_dir: Path, data_dir: Path | None = None) -> AppSettings:
    settings = AppSettings.resolve(data_dir or tmp_path / "data", model=str(model_dir), device="cpu",
                                   dtype="float32")
    return dataclasses.replace(settings, cache_dir=tmp_path / "cache")  # never the user's thumbnail cache


class Windows:
    """Opens windows (shown, engine started) and closes every one of them the app's way at teardown."""

    def __init__(self, qtbot, tmp_path: Path) -> None:
        self.qtbot = qtbot
        self.tmp_path = tmp_path
        self.opened: list[MainWindow] = []

    def open(self, settings: AppSettings, *, ui_state: Path | None = None, start: bool = True,
             watch_options: dict | None = None) -> MainWindow:
        controller = EngineController(settings, watch_options=FAST_WATCH if watch_options is None else watch_options)
        window = MainWindow(controller, UiState(ui_state or self.tmp_path / "ui-state.ini"))
        self.opened.append(window)
        window.show()
        if start:
            controller.start()
        return window

    def close(self, window: MainWindow, timeout_ms: int = 60_000) -> None:
        if not window.controller.is_stopped:
            with self.qtbot.waitSignal(window.controller.stopped, timeout=timeout_ms):
                window.close()
        self.qtbot.waitUntil(lambda: not window.isVisible(), timeout=5_000)
        assert window.controller.wait_for_threads(10_000)
        assert not window.controller.timed_out

    def close_all(self) -> None:
        for window in self.opened:
            if window.isVisible() or not window.controller.is_stopped:
                self.close(window)
            window.deleteLater()


def indexed(window: MainWindow) -> int:
    status = window.controller.status
    return status.counts.get("indexed", 0) if status is not None else 0


def wait_indexed(qtbot, window: MainWindow, count: int, timeout: int = INDEX_TIMEOUT_MS) -> None:
    def done() -> bool:
        status = window.controller.status
        return status is not None and status.counts.get("indexed", 0) >= count and not status.counts.get("pending")

    qtbot.waitUntil(done, timeout=timeout)


def result_paths(window: MainWindow) -> list[Path]:
    model = window.results_model
    return [model.hit(row).path for row in range(model.rowCount())]


def wait_results(qtbot, window: MainWindow, timeout: int = 60_000) -> list[Path]:
    qtbot.waitUntil(lambda: window.results_model.rowCount() > 0 and not window._searching, timeout=timeout)
    return result_paths(window)


def wait_first_result(qtbot, window: MainWindow, path: Path, timeout: int = 60_000) -> None:
    def first_is() -> bool:
        return (not window._searching and window.results_model.rowCount() > 0
                and window.results_model.hit(0).path == path)

    qtbot.waitUntil(first_is, timeout=timeout)


def type_query(qtbot, window: MainWindow, text: str) -> None:
    window.query_bar.focus_text()
    qtbot.keyClicks(window.query_bar.line_edit, text)


def drop_files(window: MainWindow, paths: list[Path], target=None) -> QDropEvent:
    """A real drag-enter and drop of file URLs (as a file manager sends them) onto ``target`` (the window)."""
    target = target or window
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    centre = QPointF(target.width() / 2, target.height() / 2)
    enter = QDragEnterEvent(centre, Qt.DropAction.CopyAction | Qt.DropAction.MoveAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted()
    drop = QDropEvent(centre, Qt.DropAction.CopyAction | Qt.DropAction.MoveAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, drop)
    return drop
