"""A bad `--data-dir` gives one line `vsearch: ...` and exit 2 for every library command, never a traceback (issue 10,
defect 5). Real CLI in a subprocess. Each command meets one bad path, and each kind of bad path one command, to keep
the number of interpreter starts small."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.core.library_fakes import Cli


@pytest.fixture
def cli(tmp_path, tiny_siglip_dir):
    return Cli(tmp_path, tiny_siglip_dir)


def _fails_in_one_line(cli: Cli, *args: str) -> str:
    proc = cli.run(*args, expect=2)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vsearch: "), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    return lines[0]


def _library_commands(photos: Path) -> list[tuple[str, ...]]:
    return [("folders", "add", str(photos)), ("folders", "list"), ("folders", "remove", str(photos)), ("index",),
            ("search", "a red circle"), ("status",)]


def test_every_library_command_rejects_a_data_dir_that_is_a_file(tmp_path, cli):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a folder")
    photos = tmp_path / "photos"
    photos.mkdir()
    for command in _library_commands(photos):
        line = _fails_in_one_line(cli, *command, "--data-dir", str(bad))
        assert line.startswith(f"vsearch: the data folder {bad} is a file, not a folder"), (command, line)
    assert bad.read_text() == "not a folder"


def test_a_path_below_a_file(tmp_path, cli):
    (tmp_path / "notes.txt").write_text("x")
    line = _fails_in_one_line(cli, "index", "--data-dir", str(tmp_path / "notes.txt" / "vsearch"))
    assert f"{tmp_path / 'notes.txt'} is a file, not a folder" in line


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_path_the_file_system_refuses(cli):
    line = _fails_in_one_line(cli, "status", "--data-dir", "/proc/x")
    assert line.startswith("vsearch: cannot create the data folder /proc/x:")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_folder_where_sqlite_cannot_open_the_catalog(tmp_path, cli):
    _fails_in_one_line(cli, "search", "a cat", "--data-dir", "/proc")  # exists, but no file can be created there
    data = tmp_path / "data"
    (data / "catalog.sqlite3").mkdir(parents=True)  # a folder where the database file should be
    line = _fails_in_one_line(cli, "folders", "list", "--data-dir", str(data))
    assert f"the catalog {data / 'catalog.sqlite3'} cannot be read" in line


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root may create folders anywhere")
def test_a_folder_the_user_may_not_create(tmp_path, cli):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        line = _fails_in_one_line(cli, "status", "--data-dir", str(locked / "data"))
        assert "permission denied" in line
    finally:
        locked.chmod(0o700)
