"""Creating VSearch's data folder, with a message the user can act on when that is impossible.

``prepare_data_dir(path)`` creates the folder (and its parents) if needed and checks that VSearch may write in it.
A path naming a file, a path below a file, a place the file system refuses (``/proc/x``), a read-only disk or a
folder the user may not write raise DataDirError, whose message names the path and says why; the CLI prints it as
one line. (settings.AppSettings.ensure_data_dir stays a plain mkdir: settings is a leaf and may not import errors.)
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from vsearch_app.errors import DataDirError

PARAM = "data_dir"

_HINT = "choose another data folder"  # the front end says how (param "data_dir": the CLI adds its flag)


def prepare_data_dir(path: str | os.PathLike[str], *, read_only_ok: bool = False) -> Path:
    """Create ``path`` if needed and check that it is a folder VSearch can write in; returns it. ``read_only_ok``:
    an existing folder VSearch may only read is accepted too (searching works there; see ``is_read_only``)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise DataDirError(f"the data folder {folder} is a file, not a folder; {_HINT}", param=PARAM)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"cannot create the data folder {folder}: {_why_not_created(folder, exc)}; {_HINT}",
                           param=PARAM) from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        if read_only_ok and os.access(folder, os.R_OK | os.X_OK):
            return folder
        raise DataDirError(f"the data folder {folder} is not writable: permission denied; {_HINT}", param=PARAM)
    return folder


def is_read_only(folder: str | os.PathLike[str]) -> bool:
    """True when VSearch may not write in the existing ``folder`` (permissions, or a read-only disk or mount:
    ``access`` reports EROFS even to root)."""
    return not os.access(folder, os.W_OK | os.X_OK)


def _why_not_created(folder: Path, exc: OSError) -> str:
    """The reason in words; mkdir's own errors are vague about *which* part of the path is wrong."""
    blocker = _first_non_folder(folder)
    if blocker is not None:
        return f"{blocker} is a file, not a folder"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno == errno.ENOENT:
        # mkdir(parents=True) only fails so when the file system itself refuses new folders (e.g. /proc).
        return f"the file system at {_deepest_existing(folder)} does not allow new folders"
    return (exc.strerror or str(exc)).lower()


def _first_non_folder(folder: Path) -> Path | None:
    """The first existing ancestor of ``folder`` (or itself) that is not a folder, if any."""
    for candidate in [*reversed(folder.parents), folder]:
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return None


def _deepest_existing(folder: Path) -> Path:
    for candidate in [folder, *folder.parents]:
        if candidate.exists():
            return candidate
    return folder  # not reached: the file system root exists
