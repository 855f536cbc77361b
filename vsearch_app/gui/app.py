"""The desktop app's entry point: ``run(...)`` for `vsearch` with no command, `vsearch-gui` and
`python -m vsearch_app`; ``main()`` parses the same options for a script of its own.

Start-up order (GUI.md "Startup"): std streams fixed, logging, faulthandler, QApplication, theme, excepthook; the
window is built and shown (it imports only PySide6, core.types and settings: no torch); once it has painted, a
zero-delay timer starts the engine lanes, which open the library and load the model off the GUI thread.

Closing the window (or Ctrl+C / SIGTERM) stops the lanes in order and quits when they are done; after
SHUTDOWN_TIMEOUT_S the process exits without them rather than hang (every committed batch is already on disk).
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import multiprocessing
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from types import TracebackType

from vsearch_app import __version__
from vsearch_app.errors import VSearchError
from vsearch_app.log import setup_logging

log = logging.getLogger(__name__)

APP_NAME = "VSearch"
SIGNAL_POLL_MS = 500  # lets Python's signal handlers run while Qt's C++ loop waits
# Set to a file path, the window writes the wall-clock time (time.time()) of its first paint there; how
# benchmarks/bench_gui.py measures start-up as a user sees it. Unset (the normal case), nothing is written.
FIRST_PAINT_FILE_ENV = "VSEARCH_FIRST_PAINT_FILE"


def run(data_dir: str | os.PathLike[str] | None = None, model: str | None = None, caption_model: str | None = None,
        device: str | None = None, dtype: str | None = None) -> int:
    """Open the main window on the library in ``data_dir`` (default: VSEARCH_DATA_DIR, then the platform's); the
    other options override the saved settings for this run. Returns the process exit code."""
    ensure_std_streams()
    setup_logging(False)
    _enable_faulthandler()

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from vsearch_app.gui import icons
    from vsearch_app.gui.engine.controller import EngineController
    from vsearch_app.gui.settings_model import PreferencesStore
    from vsearch_app.gui.theme import ThemeController
    from vsearch_app.gui.ui_state import UiState, ui_state_path
    from vsearch_app.gui.views.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    # The Settings dialog's saved choices; the command line (and VSEARCH_MODEL) win for this run.
    preferences = PreferencesStore()
    prefs = preferences.load()
    settings = prefs.app_settings(data_dir, model=model, caption_model=caption_model, device=device, dtype=dtype)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("vsearch")
    app.setWindowIcon(icons.app_icon())
    app.setQuitOnLastWindowClosed(False)  # closing the window starts the shutdown; quit comes when it is done
    theme = ThemeController(app, prefs.color_scheme)
    install_excepthook()

    controller = EngineController(settings, result_limit=prefs.result_limit or None)
    window = MainWindow(controller, UiState(ui_state_path(settings)), preferences)
    window.preferencesChanged.connect(lambda new: theme.set_preference(new.color_scheme))
    controller.stopped.connect(app.quit)
    window.firstPainted.connect(lambda: QTimer.singleShot(0, controller.start))
    if os.environ.get(FIRST_PAINT_FILE_ENV):
        window.firstPainted.connect(lambda: write_first_paint_marker(os.environ[FIRST_PAINT_FILE_ENV]))
    window.show()
    QTimer.singleShot(2000, controller.start)  # in case no paint is reported (start is idempotent)

    _route_signals_to(window)
    code = app.exec()
    if not controller.wait_for_threads(1000):
        # The shutdown limit passed with a lane still busy (a hung network drive?). Destroying a running QThread
        # aborts the process; leaving now loses nothing committed.
        logging.shutdown()
        os._exit(code)
    return code


def main(argv: list[str] | None = None) -> int:
    """`vsearch-gui [--data-dir DIR] [--model M] [--caption-model M] [--device D] [--dtype T] [-v]`."""
    multiprocessing.freeze_support()  # a frozen build's decoder workers start as this executable (see cli/main.py)
    parser = argparse.ArgumentParser(prog="vsearch-gui", description="Find your photos by meaning (desktop app).")
    parser.add_argument("--data-dir", help="where VSearch keeps its catalog and index")
    parser.add_argument("--model", help="search model for this run: a Hugging Face id or a local folder")
    parser.add_argument("--caption-model", help="caption model for this run")
    parser.add_argument("--device", help="auto, cpu, cuda or mps")
    parser.add_argument("--dtype", help="auto, float32, bfloat16 or float16")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    parser.add_argument("--version", action="version", version=f"vsearch {__version__}")
    args = parser.parse_args(argv)
    if args.verbose:
        setup_logging(True)
    return run(args.data_dir, args.model, args.caption_model, args.device, args.dtype)


def write_first_paint_marker(path: str | os.PathLike[str]) -> None:
    """The time of the first paint, written whole (a reader polling the file never sees half of it)."""
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    try:
        partial.write_text(f"{time.time():.6f}\n", encoding="utf-8")
        os.replace(partial, target)
    except OSError as exc:
        log.warning("cannot write the first-paint marker %s: %s", target, exc)


# --- process set-up -------------------------------------------------------------------------------------------------


def ensure_std_streams() -> None:
    """A windowed frozen build has no console: sys.stdout/stderr are None, and the first write (a library's progress
    bar, a warning) would raise. Give them a sink."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - lives as long as the process


def _enable_faulthandler() -> None:
    try:
        faulthandler.enable(file=sys.stderr)
    except (AttributeError, ValueError, OSError):  # stderr is a sink without a file descriptor
        log.debug("faulthandler not enabled: stderr has no file descriptor")


def install_excepthook(show=None) -> None:
    """An exception escaping a slot is logged and shown in a dialog, and the app keeps running (Qt would otherwise
    print it and carry on silently, or abort). ``show(title, text, details)`` is the dialog (injectable for tests).
    Exceptions in other threads are logged only (no widget may be touched there)."""
    show = show or _show_error_dialog
    showing = []

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        details = "".join(traceback.format_exception(kind, exc, tb))
        if isinstance(exc, VSearchError):
            log.warning("%s", exc)
            title, text = "VSearch", str(exc)
        else:
            log.error("unexpected error:\n%s", details)
            title, text = "Something went wrong", (f"VSearch hit an unexpected error and carried on: {exc}\n\n"
                                                   "If something looks wrong, restart the app. The details below "
                                                   "help fix it.")
        if not showing:  # one dialog at a time: an error inside the dialog must not stack dialogs up
            showing.append(True)
            try:
                show(title, text, details)
            finally:
                showing.clear()

    sys.excepthook = hook

    def thread_hook(args) -> None:
        log.error("unexpected error in thread %s", getattr(args.thread, "name", "?"),
                  exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    import threading

    threading.excepthook = thread_hook


def _show_error_dialog(title: str, text: str, details: str) -> None:
    from PySide6.QtWidgets import QApplication, QMessageBox

    if QApplication.instance() is None:
        return
    box = QMessageBox(QMessageBox.Icon.Critical, title, text)
    box.setDetailedText(details)
    box.exec()


def _route_signals_to(window) -> None:
    """Ctrl+C and SIGTERM close the window the normal way (stop the lanes, save), rather than kill mid-write."""
    from PySide6.QtCore import QTimer

    def close_window(signum, frame) -> None:
        log.info("signal %s: closing", signum)
        window.close()

    for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if sig is not None:
            try:
                signal.signal(sig, close_window)
            except (ValueError, OSError):  # not the main thread, or the platform refuses
                pass
    poll = QTimer(window)
    poll.timeout.connect(lambda: None)
    poll.start(SIGNAL_POLL_MS)


if __name__ == "__main__":
    sys.exit(main())
