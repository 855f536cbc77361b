"""One writer per data folder: the inter-process lock file ``<data dir>/writer.lock``.

Why: two processes indexing one library at once (two `vsearch index` runs, one beside `index --watch`, the app and
the CLI) each embed every pending photo, and their index saves race. So a process that indexes or watches holds
this lock for the whole run, and a second one is refused at once with LibraryBusyError, which says who holds it.
Readers (search, status, folder listing) never take it: SQLite's WAL and the index's atomic saves let them run
beside the writer.

How: an OS lock on an open file, taken without waiting (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows).
The OS drops it when the process ends for any reason, so a crash or kill -9 never leaves a stale lock and there is
nothing to clean up. The file itself is never deleted: unlinking a lock file would let a third process create a new
file and lock it while a second one still holds the old file's lock, and both would think they are the writer.

Who: after taking the lock, the holder writes a small JSON record into the file (pid, host, command line, purpose,
start time). On Windows a locked byte range cannot be read by other processes, so the lock covers one byte far
past the record rather than the record itself.

Usage::

    with WriterLock(data_dir, "indexing"):   # LibraryBusyError if another process holds it
        ...
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vsearch_app.errors import DataDirError, LibraryBusyError

log = logging.getLogger(__name__)

LOCK_FILENAME = "writer.lock"
_WINDOWS_LOCK_OFFSET = 1 << 30  # the locked byte on Windows: past any record, which stays readable
_RECORD_MAX_BYTES = 8192
_COMMAND_MAX_CHARS = 100
_BUSY_ERRNOS = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)  # "someone else holds it" (EACCES on Windows)


@dataclass(frozen=True)
class LockHolder:
    """Who holds a writer lock, as its holder recorded it."""

    pid: int
    host: str
    command: str  # a short command line, e.g. "vsearch index --watch"
    purpose: str  # what it does: "indexing", "watching"
    started: float  # time.time() when the lock was taken


class WriterLock:
    """The data folder's writer lock (see the module docstring). Not re-entrant: a second WriterLock on the same
    folder is refused even within one process. ``release`` may be called any number of times."""

    def __init__(self, data_dir: str | os.PathLike[str], purpose: str = "indexing") -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_FILENAME
        self.purpose = purpose
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> WriterLock:
        """Take the lock without waiting; LibraryBusyError (naming the holder) if another process has it."""
        if self._fd is not None:
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            reason = "it is a folder" if self.path.is_dir() else (exc.strerror or str(exc)).lower()
            raise DataDirError(f"cannot open the lock file {self.path}: {reason}") from exc
        try:
            locked = _try_lock(fd)
        except OSError as exc:
            # e.g. ENOLCK on a network share without lock support: indexing still works, only unguarded.
            log.warning("cannot lock %s (%s); make sure no other VSearch indexes this library at the same time",
                        self.path, exc.strerror or exc)
            locked = True
        except BaseException:
            os.close(fd)
            raise
        if not locked:
            os.close(fd)
            raise LibraryBusyError(busy_message(self.data_dir, read_holder(self.data_dir)))
        self._fd = fd
        try:
            _write_record(fd, LockHolder(os.getpid(), socket.gethostname(), _command_line(), self.purpose,
                                         time.time()))
        except OSError as exc:  # the lock is what matters; the record only makes the refusal friendlier
            log.debug("could not record the writer lock's holder in %s: %s", self.path, exc)
        return self

    def release(self) -> None:
        """Give the lock up (idempotent). The record is cleared first, so a reader never sees a stale one."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        try:
            _unlock(fd)
        except OSError:
            pass  # closing the file releases it anyway
        os.close(fd)

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_holder(data_dir: str | os.PathLike[str]) -> LockHolder | None:
    """The holder recorded in the data folder's lock file, or None (no record, or one being written right now).
    Says nothing about whether the lock is held: a record may outlive a killed holder until the next writer."""
    path = Path(data_dir) / LOCK_FILENAME
    for attempt in range(3):
        try:
            with open(path, "rb") as handle:
                data = handle.read(_RECORD_MAX_BYTES)
            raw = json.loads(data.decode("utf-8"))
            return LockHolder(int(raw["pid"]), str(raw["host"]), str(raw["command"]), str(raw["purpose"]),
                              float(raw["started"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            if attempt < 2:
                time.sleep(0.05)  # the holder may be between truncating and writing its record
    return None


def busy_message(data_dir: str | os.PathLike[str], holder: LockHolder | None) -> str:
    who = "another VSearch process"
    if holder is not None:
        details = [f"pid {holder.pid}" + ("" if holder.host == socket.gethostname() else f" on {holder.host}")]
        details.append(f"`{holder.command}`" if holder.command else holder.purpose)
        details.append(f"since {_clock(holder.started)}")
        who += f" ({', '.join(details)})"
    return (f"{who} is indexing this library ({data_dir}); wait for it to finish or stop it. "
            "Searching and `vsearch status` still work.")


def _clock(started: float) -> str:
    then = time.localtime(started)
    same_day = time.strftime("%Y-%m-%d", then) == time.strftime("%Y-%m-%d", time.localtime())
    return time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", then)


def _command_line() -> str:
    """This process's command line, short: `python -m vsearch_app index` reads as `vsearch index`."""
    argv = list(sys.argv) or [""]
    first = Path(argv[0])
    if first.name == "__main__.py" and first.parent.name == "vsearch_app":
        program = "vsearch"
    elif argv[0] in ("", "-c"):
        program = Path(sys.executable).name
    else:
        program = first.stem
    text = shlex.join([program, *argv[1:]])
    return text if len(text) <= _COMMAND_MAX_CHARS else text[: _COMMAND_MAX_CHARS - 3] + "..."


def _write_record(fd: int, holder: LockHolder) -> None:
    data = json.dumps(holder.__dict__).encode("utf-8")
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            if exc.errno in _BUSY_ERRNOS or exc.errno == errno.EDEADLK:
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in _BUSY_ERRNOS:
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
