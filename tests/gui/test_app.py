"""gui.app: the real start-up path in a fresh process (the window paints before torch is imported; closing quits),
the excepthook, std streams for windowed builds, and the vsearch-gui options."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vsearch_app.errors import LibraryBusyError
from vsearch_app.gui import app

ROOT = Path(__file__).resolve().parents[2]

# Runs app.run() for real; the hooks only watch: what is imported at the first paint, then close once it is open.
_STARTUP_PROBE = textwrap.dedent("""
    import sys
    from PySide6.QtCore import QTimer
    from vsearch_app.gui import app
    from vsearch_app.gui.views import main_window

    original_init = main_window.MainWindow.__init__

    def init(self, controller, *args, **kwargs):
        original_init(self, controller, *args, **kwargs)

        def painted():
            print("torch at first paint:", "torch" in sys.modules, flush=True)
            print("engine started at first paint:", controller.ready, flush=True)

        def state(name, _message):
            if name == "watching":  # prepare() has loaded the model (off the GUI thread)
                print("torch once the model is loaded:", "torch" in sys.modules, flush=True)
                QTimer.singleShot(0, self.close)

        self.firstPainted.connect(painted)
        controller.stateChanged.connect(state)

    main_window.MainWindow.__init__ = init
    sys.exit(app.run(data_dir=sys.argv[1], model=sys.argv[2], device="cpu", dtype="float32"))
""")


def test_the_window_paints_before_torch_is_imported_and_closing_quits(tmp_path, tiny_siglip_dir):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "-c", _STARTUP_PROBE, str(tmp_path / "data"), str(tiny_siglip_dir)],
                          env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]
    assert "torch at first paint: False" in out
    assert "engine started at first paint: False" in out
    assert "torch once the model is loaded: True" in out
    assert (tmp_path / "data" / "ui-state.ini").is_file()  # the window saved its state on the way out


def test_excepthook_shows_user_errors_plainly_and_bugs_with_details(monkeypatch):
    shown: list[tuple[str, str, str]] = []
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    monkeypatch.setattr("threading.excepthook", __import__("threading").excepthook)
    app.install_excepthook(show=lambda *args: shown.append(args))
    try:
        raise LibraryBusyError("another VSearch is indexing this library")
    except LibraryBusyError:
        sys.excepthook(*sys.exc_info())
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    assert shown[0][:2] == ("VSearch", "another VSearch is indexing this library")
    title, text, details = shown[1]
    assert title == "Something went wrong" and "boom" in text
    assert "Traceback" in details and "RuntimeError: boom" in details


def test_an_error_inside_the_error_dialog_does_not_stack_dialogs(monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr("threading.excepthook", __import__("threading").excepthook)
    calls = []

    def show(*args):
        calls.append(args)
        try:
            raise ValueError("while showing")
        except ValueError:
            sys.excepthook(*sys.exc_info())

    app.install_excepthook(show=show)
    try:
        raise RuntimeError("first")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    assert len(calls) == 1


def test_missing_std_streams_get_a_sink(monkeypatch):
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    app.ensure_std_streams()
    print("written nowhere")
    sys.stderr.write("nor this\n")
    sys.stdout.close()
    sys.stderr.close()


@pytest.mark.parametrize(("argv", "expected"), [
    ([], (None, None, None, None, None)),
    (["--data-dir", "/d", "--model", "m", "--caption-model", "c", "--device", "cpu", "--dtype", "float32"],
     ("/d", "m", "c", "cpu", "float32")),
])
def test_main_passes_the_options_to_run(monkeypatch, argv, expected):
    seen = []
    monkeypatch.setattr(app, "run", lambda *args: seen.append(args) or 0)
    assert app.main(argv) == 0
    assert seen == [expected]
