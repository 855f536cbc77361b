"""`vsearch` with no command, `python -m vsearch_app` and `vsearch-gui` open the desktop app with the options given
before no command; a fake vsearch_app.gui.app stands in for the real window."""

from __future__ import annotations

import importlib
import runpy
import sys
import tomllib
import types
from pathlib import Path

import pytest

from vsearch_app.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_app(monkeypatch):
    """Replaces the desktop app with a module whose run() records how it was called."""
    module = types.ModuleType("vsearch_app.gui.app")
    module.calls = []

    def run(**options):
        module.calls.append(options)
        return 7

    module.run = run
    monkeypatch.setitem(sys.modules, "vsearch_app.gui.app", module)
    return module


def test_no_command_opens_the_app_with_the_overrides(fake_app, tmp_path):
    code = main(["--data-dir", str(tmp_path / "lib"), "--model", "org/search", "--caption-model", "org/caption",
                 "--device", "cpu", "--dtype", "float32"])
    assert code == 7
    assert fake_app.calls == [{"data_dir": str(tmp_path / "lib"), "model": "org/search",
                               "caption_model": "org/caption", "device": "cpu", "dtype": "float32"}]


def test_no_options_leave_the_saved_settings_alone(fake_app):
    assert main([]) == 7
    assert fake_app.calls == [dict.fromkeys(("data_dir", "model", "caption_model", "device", "dtype"))]


def test_python_dash_m_opens_the_app(fake_app, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["python -m vsearch_app", "--device", "cpu"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("vsearch_app", run_name="__main__")
    assert exit_info.value.code == 7 and fake_app.calls[0]["device"] == "cpu"


def test_a_bad_device_is_refused_before_the_app_opens(fake_app, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--device", "tpu"])
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert fake_app.calls == []


def test_app_options_before_a_command_are_refused_clearly(fake_app, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", "org/search", "status"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--model before a command applies only to the desktop app" in err
    assert fake_app.calls == []


def test_commands_keep_their_own_model_options(tmp_path, monkeypatch, capsys):
    # `--model` after the command is the command's, not the app's (a missing local folder is reported as such).
    code = main(["--data-dir", str(tmp_path / "lib"), "embed", "--model", str(tmp_path / "nope"), "--text", "a cat"])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_a_build_without_the_app_says_so(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "vsearch_app.gui.app", None)  # makes the import fail as if the file were absent
    assert main([]) == 2
    assert "desktop app is not part of this build" in capsys.readouterr().err


def test_a_missing_pyside_is_named(monkeypatch, capsys):
    real_import = importlib.import_module

    def import_without_pyside(name, *args, **kwargs):
        if name == "vsearch_app.gui.app":
            raise ModuleNotFoundError("No module named 'PySide6'", name="PySide6")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", import_without_pyside)
    assert main([]) == 2
    assert "needs PySide6" in capsys.readouterr().err


def test_the_gui_script_entry_point_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["gui-scripts"] == {"vsearch-gui": "vsearch_app.gui.app:main"}
    assert project["scripts"]["vsearch"] == "vsearch_app.cli.main:main"
