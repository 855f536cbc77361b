"""`vsearch self-test`: prove on this machine, with no network and no downloaded model, that the desktop app works.

It opens the REAL main window (offscreen when there is no display) on a throwaway library: a tiny random search
model built on the spot and a folder of generated pictures, all in a temporary folder. Then it does what a user
does, through the same events a user causes: adds the folder, waits for indexing, types a query, drops a photo
onto the window, and right-clicks a result for Find Similar. Each step prints one line ("ok" or "FAILED" with why);
the exit code is 0 only when every step gave the expected result. The installers run it inside the bundle.

Nothing of the user's is touched: the data folder, the thumbnail cache, the hub cache, the window state and Qt's
user-scope settings all point into the temporary folder, which is deleted at the end (unless ``keep``).

The random model ranks nothing sensibly, so the checks are the ones it can pass honestly: a text query returns
results; a photo used as the query (dropped, or Find Similar) comes first, since its own vector matches exactly.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vsearch_app.settings import AppSettings

STEP_TIMEOUT_S = 120.0  # the longest a step waits for its result (model load + indexing on a slow, busy CPU)
PHOTO_COUNT = 36
TEXT_QUERY = "a red circle"
POLL_MS = 25

EXIT_OK = 0
EXIT_FAILED = 1

ModelBuilder = Callable[[Path], Path]  # folder -> checkpoint folder (training.api.make_tiny_model)


class StepFailed(Exception):
    """A step did not give its expected result; the message says what was expected and what was seen."""


@dataclass
class StepResult:
    name: str
    ok: bool
    detail: str


def choose_qt_platform(env: dict[str, str] | os._Environ = os.environ, platform: str = sys.platform) -> str | None:
    """On Linux with no display server, Qt's default (xcb) cannot start: use the offscreen platform. An explicit
    QT_QPA_PLATFORM is kept. Returns the platform set, or None when nothing was changed."""
    if env.get("QT_QPA_PLATFORM") or not platform.startswith("linux"):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    env["QT_QPA_PLATFORM"] = "offscreen"
    return "offscreen"


def write_sample_photos(folder: Path, count: int = PHOTO_COUNT) -> list[Path]:
    """``count`` distinct pictures (JPEG, 320x240): each a background colour of its own with one or two shapes in
    contrasting colours, so every picture gets its own vector. Needs a QGuiApplication (QPainter)."""
    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter, QPolygonF

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        hue = (i * 0.618034) % 1.0  # golden-ratio steps: neighbours differ clearly in colour
        image = QImage(320, 240, QImage.Format.Format_RGB32)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        gradient = QLinearGradient(0, 0, 0, 240)
        gradient.setColorAt(0, QColor.fromHsvF(hue, 0.55, 0.95))
        gradient.setColorAt(1, QColor.fromHsvF(hue, 0.8, 0.55))
        painter.fillRect(image.rect(), gradient)
        painter.setPen(Qt.PenStyle.NoPen)
        for shape in range(1 + i % 2):
            side = 70 + (i * 13 + shape * 29) % 60
            x = 30 + (i * 47 + shape * 110) % (320 - side - 40)
            y = 30 + (i * 31 + shape * 70) % (240 - side - 40)
            painter.setBrush(QColor.fromHsvF((hue + 0.5 + 0.15 * shape) % 1.0, 0.85, 0.95 - 0.3 * shape))
            box = QRectF(x, y, side, side)
            kind = (i + shape) % 3
            if kind == 0:
                painter.drawEllipse(box)
            elif kind == 1:
                painter.drawRoundedRect(box, 6, 6)
            else:
                painter.drawPolygon(QPolygonF([QPointF(box.center().x(), box.top()), box.bottomRight(),
                                               box.bottomLeft()]))
        painter.end()
        path = folder / f"IMG_{1001 + i:04d}.jpg"
        if not image.save(str(path), "JPEG", 90):
            raise OSError(f"cannot write {path}")
        paths.append(path)
    return paths


def isolated_settings(work: Path, model_dir: Path) -> AppSettings:
    """Settings whose every folder lies inside ``work``: the self-test never reads or writes the user's library."""
    return AppSettings(data_dir=work / "data", cache_dir=work / "cache", hub_cache_dir=work / "hub",
                       model=str(model_dir), device="cpu", dtype="float32")


def run_self_test(build_model: ModelBuilder, *, screenshot_dir: Path | None = None, keep: bool = False,
                  timeout_s: float = STEP_TIMEOUT_S, out: Callable[[str], None] = print) -> int:
    """Run every step, printing one line each; returns EXIT_OK when all passed, else EXIT_FAILED."""
    choose_qt_platform()
    work = Path(tempfile.mkdtemp(prefix="vsearch-selftest-"))
    try:
        results = SelfTest(build_model, work, screenshot_dir, timeout_s, out).run()
    finally:
        if keep:
            out(f"kept the test library in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    failed = [r for r in results if not r.ok]
    if failed:
        out(f"self-test FAILED: {len(failed)} of {len(results)} steps ({', '.join(r.name for r in failed)})")
        return EXIT_FAILED
    out(f"self-test passed: all {len(results)} steps")
    return EXIT_OK


class SelfTest:
    """The steps, in order, against one window. A failed step skips the ones that depend on it; the window is
    always closed the app's way (lanes stopped, library saved) before returning."""

    def __init__(self, build_model: ModelBuilder, work: Path, screenshot_dir: Path | None, timeout_s: float,
                 out: Callable[[str], None]) -> None:
        self.build_model = build_model
        self.work = work
        self.screenshot_dir = screenshot_dir
        self.timeout_s = timeout_s
        self.out = out
        self.results: list[StepResult] = []
        self.errors: list[str] = []  # exceptions that escaped a slot, and errors the engine reported
        self.model_dir: Path | None = None
        self.photos: list[Path] = []
        self.window = None
        self.painted = False

    # --- running ------------------------------------------------------------------------------------------------

    def run(self) -> list[StepResult]:
        self._start_qt()
        steps = [
            ("build a tiny search model", self.step_model),
            (f"generate {PHOTO_COUNT} photos", self.step_photos),
            ("open the window", self.step_open),
            ("add the folder and index it", self.step_index),
            (f"text query “{TEXT_QUERY}”", self.step_text_query),
            ("drop a photo onto the window", self.step_drop),
            ("Find Similar from the context menu", self.step_find_similar),
        ]
        try:
            for name, step in steps:
                if not self._run_step(name, step):
                    for skipped, _ in steps[steps.index((name, step)) + 1:]:
                        self.out(f"skipped  {skipped}")
                    break
        finally:
            if self.window is not None:
                self._run_step("close the window (indexing stopped, library saved)", self.step_close)
        return self.results

    def _run_step(self, name: str, step: Callable[[], str]) -> bool:
        started = time.monotonic()
        try:
            detail = step()
            if self.errors:
                raise StepFailed("; ".join(self.errors))
        except StepFailed as exc:
            result = StepResult(name, False, str(exc))
        except Exception as exc:  # a bug in the app surfaces here as a failed step, with its type
            result = StepResult(name, False, f"{type(exc).__name__}: {exc}")
        else:
            result = StepResult(name, True, detail)
        self.errors.clear()
        self.results.append(result)
        took = f"{time.monotonic() - started:.1f} s"
        if result.ok:
            self.out(f"ok       {name} ({result.detail}; {took})" if result.detail else f"ok       {name} ({took})")
        else:
            self.out(f"FAILED   {name}: {result.detail} ({took})")
        return result.ok

    def _start_qt(self) -> None:
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        from vsearch_app.gui import app as gui_app
        from vsearch_app.gui import icons
        from vsearch_app.gui.theme import ThemeController

        # Qt's user-scope settings (anything a widget keeps with QSettings()) go to the temporary folder too.
        for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
            QSettings.setPath(fmt, QSettings.Scope.UserScope, str(self.work / "qsettings"))
        app = QApplication.instance()
        if app is None:
            app = QApplication([sys.argv[0] if sys.argv else "vsearch"])
            app.setApplicationName(gui_app.APP_NAME)
            app.setApplicationDisplayName(gui_app.APP_NAME)
            app.setWindowIcon(icons.app_icon())
            self._theme = ThemeController(app)
        app.setQuitOnLastWindowClosed(False)
        # An exception escaping a slot fails the running step (the app would show a dialog and carry on).
        gui_app.install_excepthook(show=lambda title, text, details: self.errors.append(f"{title}: {text}"))

    # --- the steps ----------------------------------------------------------------------------------------------

    def step_model(self) -> str:
        self.model_dir = self.build_model(self.work / "model")
        return f"random weights in {self.model_dir.name}/"

    def step_photos(self) -> str:
        self.photos = write_sample_photos(self.work / "Photos", PHOTO_COUNT)
        return f"{len(self.photos)} JPEGs"

    def step_open(self) -> str:
        from vsearch_app.gui.engine.controller import EngineController
        from vsearch_app.gui.ui_state import UiState
        from vsearch_app.gui.views.main_window import MainWindow

        settings = isolated_settings(self.work, self.model_dir)
        controller = EngineController(settings)
        controller.error.connect(lambda message: self.errors.append(f"the app reported: {message}"))
        window = MainWindow(controller, UiState(self.work / "ui-state.ini"))
        self.window = window

        def on_painted() -> None:
            self.painted = True
            controller.start()  # as the app does: the engine starts once the window is on screen

        window.firstPainted.connect(on_painted)
        window.show()
        self._wait(lambda: self.painted, "the window's first paint")
        self._wait(lambda: controller.ready and controller.status is not None, "the library to open")
        self._screenshot("1-start")
        return "library open, no folders yet"

    def step_index(self) -> str:
        window = self.window
        window.add_folder(self.photos[0].parent)
        self._wait(lambda: self._indexed() >= len(self.photos) and not self._pending(),
                   f"all {len(self.photos)} photos to be indexed",
                   lambda: f"{self._indexed()} indexed, {self._pending()} pending")
        failed = self._counts().get("failed", 0)
        if failed:
            raise StepFailed(f"{failed} photos failed to index")
        self._screenshot("2-indexed")
        return f"{self._indexed()} photos indexed"

    def step_text_query(self) -> str:
        from PySide6.QtTest import QTest

        window = self.window
        window.query_bar.focus_text()
        QTest.keyClicks(window.query_bar.line_edit, TEXT_QUERY)  # typed as a user types; results come as you type
        self._wait_results(lambda paths: bool(paths), "results for the typed query")
        self._wait_thumbnails()
        self._screenshot("3-text-query")
        return f"{self.window.results_model.total} results"

    def step_drop(self) -> str:
        from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
        from PySide6.QtGui import QDragEnterEvent, QDropEvent
        from PySide6.QtTest import QTest
        from PySide6.QtWidgets import QApplication

        window = self.window
        photo = self.photos[len(self.photos) // 3]
        # Clear the typed query first (Esc, as a user would), so the dropped photo is the whole query.
        QTest.keyClick(window.query_bar.line_edit, Qt.Key.Key_Escape)
        self._wait(lambda: not window.terms and not window.query_bar.line_edit.text(), "Esc to clear the query")
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(photo))])  # what a file manager puts on a drag
        centre = QPointF(window.width() / 2, window.height() / 2)
        actions = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction
        enter = QDragEnterEvent(centre, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(window, enter)
        if not enter.isAccepted():
            raise StepFailed("the window refused the drag of a photo")
        drop = QDropEvent(centre, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(window, drop)
        if not drop.isAccepted():
            raise StepFailed("the window did not take the dropped photo")
        if drop.dropAction() != Qt.DropAction.CopyAction:
            raise StepFailed(f"the drop was a {drop.dropAction().name}, not a copy")
        self._wait_results(lambda paths: paths[:1] == [photo], f"{photo.name} first in the results")
        self._wait_thumbnails()
        self._screenshot("4-image-drop")
        return f"{photo.name} first of {window.results_model.total}"

    def step_find_similar(self) -> str:
        from PySide6.QtGui import QContextMenuEvent
        from PySide6.QtWidgets import QApplication, QMenu

        window = self.window
        view, model = window.results_view, window.results_model
        row = min(2, model.rowCount() - 1)
        target = model.hit(row).path
        index = model.index(row, 0)
        view.scrollTo(index)
        where = view.visualRect(index).center()
        menus_before = set(window.findChildren(QMenu))
        # A right click on the photo in the grid, as the mouse sends it.
        QApplication.sendEvent(view.viewport(), QContextMenuEvent(QContextMenuEvent.Reason.Mouse, where,
                                                                  view.viewport().mapToGlobal(where)))

        def new_menu() -> QMenu | None:
            return next((m for m in window.findChildren(QMenu) if m not in menus_before and m.isVisible()), None)

        self._wait(lambda: new_menu() is not None, "the context menu")
        menu = new_menu()
        labels = {a.text().replace("&", "").rstrip("…. ").lower(): a for a in menu.actions() if a.text()}
        action = labels.get("find similar")
        if action is None:
            raise StepFailed(f"no Find Similar in the context menu (it has: {', '.join(labels) or 'nothing'})")
        action.trigger()
        menu.close()
        self._wait_results(lambda paths: paths[:1] == [target], f"{target.name} first after Find Similar")
        self._wait_thumbnails()
        self._screenshot("5-find-similar")
        return f"{target.name} first of {model.total}"

    def step_close(self) -> str:
        window, controller = self.window, self.window.controller
        window.close()  # starts the shutdown: the window stays up with "Finishing…" until the lanes have stopped
        self._wait(lambda: controller.is_stopped and not window.isVisible(), "the window to close",
                   timeout_s=max(self.timeout_s, 60.0))
        if controller.timed_out:
            raise StepFailed("background work did not stop within the shutdown limit")
        if not controller.wait_for_threads(10_000):
            raise StepFailed("a background thread was still running after the window closed")
        window.deleteLater()
        self.window = None
        return "stopped cleanly"

    # --- helpers ------------------------------------------------------------------------------------------------

    def _counts(self) -> dict[str, int]:
        status = self.window.controller.status
        return dict(status.counts) if status is not None else {}

    def _indexed(self) -> int:
        return self._counts().get("indexed", 0)

    def _pending(self) -> int:
        return self._counts().get("pending", 0)

    def _result_paths(self, limit: int = 5) -> list[Path]:
        model = self.window.results_model
        return [model.hit(row).path for row in range(min(limit, model.rowCount()))]

    def _wait_results(self, expected: Callable[[list[Path]], bool], what: str) -> None:
        """Wait until the current query's results are shown and satisfy ``expected`` (given the first paths)."""
        window = self.window

        def shown() -> bool:
            return (window.results_view.isVisible() and window.results_model.rowCount() > 0
                    and expected(self._result_paths()))

        self._wait(shown, what, self._describe_window)

    def _wait_thumbnails(self) -> None:
        """Every result in view has its thumbnail (so a screenshot shows photos, not placeholders)."""
        view, model, loader = self.window.results_view, self.window.results_model, self.window.thumbnail_loader
        area = view.viewport().rect()
        visible = [model.hit(row).path for row in range(min(model.rowCount(), 200))
                   if view.visualRect(model.index(row, 0)).intersects(area)]
        missing = lambda: [p for p in visible if loader.pixmap(p) is None]  # noqa: E731
        self._wait(lambda: not missing(), "the thumbnails of the results in view",
                   lambda: f"{len(missing())} of {len(visible)} still missing")

    def _describe_window(self) -> str:
        window = self.window
        shown = [p.name for p in self._result_paths()]
        terms = ", ".join(f"{t.kind}:{Path(t.value).name if t.kind == 'image' else t.value}"
                          for t in window.terms) or "none"
        page = "results grid" if window.results_view.isVisible() else (
            f"“{getattr(window.empty_state, 'title', '')}”" if window.empty_state.isVisible() else "nothing")
        return (f"the window shows {page}; query terms: {terms}; first results: {', '.join(shown) or 'none'}; "
                f"engine: {window.controller.state} {window.controller.state_message}".strip())

    def _wait(self, condition: Callable[[], bool], what: str, seen: Callable[[], str] | None = None,
              timeout_s: float | None = None) -> None:
        """Run the event loop until ``condition()`` holds; StepFailed after the timeout, saying what was seen."""
        from PySide6.QtCore import QEventLoop, QTimer

        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        if condition():
            return
        deadline = time.monotonic() + timeout_s
        loop = QEventLoop()
        timer = QTimer()
        timer.setInterval(POLL_MS)

        def check() -> None:
            if self.errors or time.monotonic() > deadline or condition():
                loop.quit()

        timer.timeout.connect(check)
        timer.start()
        loop.exec()
        timer.stop()
        if self.errors:
            raise StepFailed(f"while waiting for {what}: " + "; ".join(self.errors))
        if not condition():
            because = f" ({seen()})" if seen is not None else ""
            raise StepFailed(f"no {what} within {timeout_s:.0f} s{because}")

    def _screenshot(self, name: str) -> None:
        if self.screenshot_dir is None:
            return
        self.screenshot_dir.mkdir(parents=True, exist_ok=True)
        path = self.screenshot_dir / f"{name}.png"
        if not self.window.grab().save(str(path), "PNG"):
            raise StepFailed(f"cannot write the screenshot {path}")
