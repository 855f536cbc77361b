"""Checking that files VSearch writes for the user get the mode the user's umask gives every new file."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

posix_modes = pytest.mark.skipif(sys.platform == "win32", reason="Windows has no POSIX file modes")


@contextmanager
def umask(value: int) -> Iterator[int]:
    """Run with ``value`` as the process umask; yields the mode a new file gets (0o666 & ~value)."""
    previous = os.umask(value)
    try:
        yield 0o666 & ~value
    finally:
        os.umask(previous)


def modes_of(folder: Path) -> dict[str, int]:
    """Permission bits of every file under ``folder``, by path relative to it."""
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in sorted(folder.rglob("*"))
            if p.is_file()}
