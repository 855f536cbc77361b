"""`vsearch self-test`: run as the installers run it (a subprocess, no display), it passes and writes a screenshot of
each state; a broken window feature makes it fail with the reason; it never touches the user's data or settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from vsearch_app.cli.main import build_parser
from vsearch_app.gui.selftest import choose_qt_platform, isolated_settings, write_sample_photos

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = ["1-start.png", "2-indexed.png", "3-text-query.png", "4-image-drop.png", "5-find-similar.png"]
RUN_LIMIT_S = 600

# Runs the CLI with Find Similar broken in the window: the self-test must notice and say so.
BROKEN_FIND_SIMILAR = (
    "import sys\n"
    "from vsearch_app.gui.views.main_window import MainWindow\n"
    "MainWindow.find_similar = lambda self, paths: None\n"
    "from vsearch_app.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _user_env(tmp_path: Path) -> dict[str, str]:
    """An environment like a user's desktop session without a display server: the user's own data, config and cache
    folders point into tmp_path so the test can check they stay untouched."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(PYTHONPATH=str(REPO), VSEARCH_DATA_DIR=str(tmp_path / "user-data"),
               XDG_CONFIG_HOME=str(tmp_path / "user-config"), XDG_CACHE_HOME=str(tmp_path / "user-cache"),
               XDG_DATA_HOME=str(tmp_path / "user-share"), HF_HUB_CACHE=str(tmp_path / "user-hub"),
               TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=RUN_LIMIT_S)


@pytest.mark.slow
def test_self_test_passes_offscreen_and_writes_a_screenshot_of_each_state(tmp_path):
    env = _user_env(tmp_path)
    shots = tmp_path / "shots"
    done = _run(["-m", "vsearch_app", "self-test", "--screenshot", str(shots)], env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["ok"] * 8, done.stdout
    assert lines[-1] == "self-test passed: all 8 steps"
    assert sorted(p.name for p in shots.iterdir()) == SCREENSHOTS
    for name in SCREENSHOTS:
        image = QImage(str(shots / name))
        assert not image.isNull() and image.width() >= 800 and image.height() >= 500, name
    # Nothing of the user's was created, and the temporary library was removed.
    for user_dir in ("user-data", "user-config", "user-cache", "user-share", "user-hub"):
        assert not (tmp_path / user_dir).exists(), user_dir
    assert not list((tmp_path / "tmp").glob("vsearch-selftest-*"))


@pytest.mark.slow
def test_a_broken_step_fails_the_self_test_with_the_reason(tmp_path):
    env = _user_env(tmp_path)
    done = _run(["-c", BROKEN_FIND_SIMILAR, "self-test", "--timeout", "15", "--keep"], env, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    failed = [line for line in lines if line.startswith("FAILED")]
    assert len(failed) == 1, done.stdout
    assert failed[0].startswith("FAILED   Find Similar from the context menu: no ")
    assert "first after Find Similar within 15 s" in failed[0]
    assert "first results:" in failed[0]  # says what the window showed instead
    assert any(line.startswith("ok       drop a photo") for line in lines)
    assert any(line.startswith("ok       close the window") for line in lines)  # closed the app's way regardless
    assert lines[-1] == "self-test FAILED: 1 of 8 steps (Find Similar from the context menu)"
    kept = next(line for line in lines if line.startswith("kept the test library in "))
    library = Path(kept.removeprefix("kept the test library in "))
    assert library.parent == tmp_path / "tmp" and (library / "data").is_dir() and (library / "Photos").is_dir()


def test_a_bad_timeout_is_a_user_error(tmp_path, capsys):
    from vsearch_app.cli.main import main

    assert main(["self-test", "--timeout", "0"]) == 2
    assert capsys.readouterr().err.strip() == "vsearch: --timeout must be a positive number of seconds"


def test_self_test_is_listed_in_the_help():
    assert "self-test" in build_parser().format_help()


@pytest.mark.parametrize(("platform", "env", "chosen"), [
    ("linux", {}, "offscreen"),
    ("linux", {"DISPLAY": ":0"}, None),
    ("linux", {"WAYLAND_DISPLAY": "wayland-0"}, None),
    ("linux", {"QT_QPA_PLATFORM": "xcb"}, None),
    ("darwin", {}, None),
    ("win32", {}, None),
])
def test_offscreen_only_on_linux_without_a_display(platform, env, chosen):
    before = dict(env)
    assert choose_qt_platform(env, platform) == chosen
    assert env.get("QT_QPA_PLATFORM") == (chosen or before.get("QT_QPA_PLATFORM"))


def test_sample_photos_are_distinct_pictures(qapp, tmp_path):
    paths = write_sample_photos(tmp_path / "Photos", 12)
    assert [p.name for p in paths] == [f"IMG_{1001 + i}.jpg" for i in range(12)]
    images = [QImage(str(p)) for p in paths]
    assert all(i.width() == 320 and i.height() == 240 for i in images)
    centres = {images[n].pixelColor(160, 20).name() for n in range(12)}  # each has its own background colour
    assert len(centres) == 12


def test_the_settings_point_only_into_the_temporary_folder(tmp_path):
    settings = isolated_settings(tmp_path, tmp_path / "model")
    for folder in (settings.data_dir, settings.cache_dir, settings.hub_cache_dir):
        assert folder.is_relative_to(tmp_path)
    assert settings.model == str(tmp_path / "model") and settings.device == "cpu"
