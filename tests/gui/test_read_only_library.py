"""The desktop app on a read-only data folder (issue 15): the library opens, search works, and the status bar says
why nothing is indexed (as root the folder is a tmpfs remounted read-only; as another user, a folder without write
permission)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.gui.photos import write_photos
from tests.gui.window_helpers import type_query, wait_indexed, wait_results, window_settings
from vsearch_app.gui.engine import library_lane as states

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="read-only mounts and modes as on Linux")


def _make_read_only(data) -> None:
    if os.geteuid() == 0:
        subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True)
    else:
        for folder in [data, *[p for p in data.rglob("*") if p.is_dir()]]:
            folder.chmod(0o555)


def test_a_read_only_library_searches_and_says_why_it_does_not_index(qtbot, windows, tmp_path, tiny_siglip_dir):
    data = tmp_path / "data"
    data.mkdir()
    mounted = False
    if os.geteuid() == 0:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(data)], capture_output=True,
                              text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted = True
    try:
        photos = write_photos(tmp_path / "Holidays", 6)
        settings = window_settings(tmp_path, tiny_siglip_dir, data)
        first = windows.open(settings)
        first.add_folder(photos[0].parent)
        wait_indexed(qtbot, first, len(photos))
        windows.close(first)
        _make_read_only(data)

        window = windows.open(settings)
        qtbot.waitUntil(lambda: window.controller.state == states.PROBLEM, timeout=60_000)
        assert window.controller.state_message.startswith("cannot index: the data folder ")
        assert "is read-only" in window.controller.state_message
        qtbot.waitUntil(lambda: "read-only" in window.status_panel.text(), timeout=10_000)
        type_query(qtbot, window, "hills at sunset")
        assert sorted(wait_results(qtbot, window)) == sorted(photos)
        window.grab().save(str(tmp_path / "read-only-window.png"))
    finally:
        windows.close_all()
        windows.opened.clear()
        if mounted:
            subprocess.run(["umount", "-l", str(data)], check=False)
        else:
            for folder in [data, *[p for p in data.rglob("*") if p.is_dir()]]:
                folder.chmod(0o755)
