"""core/store/data_dir.py: a data folder that cannot be used gives DataDirError naming the path and why (issue 10,
defect 5). The same cases through the real CLI are in tests/cli/test_data_dir_cli.py."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

from vsearch_app.core.store.data_dir import prepare_data_dir
from vsearch_app.errors import DataDirError, VSearchError


def test_creates_missing_parents_and_accepts_an_existing_folder(tmp_path):
    folder = tmp_path / "a" / "b" / "data"
    assert prepare_data_dir(folder) == folder and folder.is_dir()
    assert prepare_data_dir(folder) == folder  # already there: fine


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataDirError, match=rf"^the data folder {tmp_path}/notes.txt is a file, not a folder; choose"):
        prepare_data_dir(tmp_path / "notes.txt")


def test_a_path_below_a_file_names_the_file(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    target = tmp_path / "notes.txt" / "sub" / "data"
    with pytest.raises(DataDirError, match=rf"^cannot create the data folder {target}: {tmp_path}/notes.txt is a file"):
        prepare_data_dir(target)
    assert issubclass(DataDirError, VSearchError)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_file_system_that_refuses_folders():
    with pytest.raises(DataDirError, match=r"^cannot create the data folder /proc/x: the file system at /proc does"):
        prepare_data_dir("/proc/x")


@pytest.mark.parametrize(("code", "why"), [
    (errno.EACCES, "permission denied"),
    (errno.EPERM, "permission denied"),
    (errno.EROFS, "the file system is read-only"),
    (errno.ENOSPC, "the disk is full"),
    (errno.ENAMETOOLONG, "file name too long"),
])
def test_mkdir_errors_in_words(tmp_path, monkeypatch, code, why):
    def refuse(self, *args, **kwargs):
        raise OSError(code, os.strerror(code), str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(DataDirError, match=rf"^cannot create the data folder {tmp_path}/data: {why}; choose"):
        prepare_data_dir(tmp_path / "data")


def test_an_existing_folder_that_is_not_writable(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as if not root: root may write anywhere
    with pytest.raises(DataDirError, match=rf"^the data folder {tmp_path} is not writable: permission denied"):
        prepare_data_dir(tmp_path)


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root may write anywhere")
def test_a_folder_the_user_may_not_write(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(DataDirError, match="permission denied"):
            prepare_data_dir(locked / "data")
        with pytest.raises(DataDirError, match="is not writable"):
            prepare_data_dir(locked)
    finally:
        locked.chmod(0o700)
