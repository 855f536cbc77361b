"""Named points in the storage code where tests make VSearch fail on purpose (kill -9, a full disk).

The store is written so that a crash or a full disk at any moment loses nothing; tests/faults/ proves it by failing
exactly at the moments that matter, rather than by luck. Each point is one call in the code it guards::

    fault_points.reached("catalog.mid_commit")

That call does nothing unless a test armed the point: in a child process through the environment variable
``VSEARCH_FAULTS`` (read once, at import), or in the test's own process with ``arm()``. The spec is a comma-separated
list of ``point=action`` or ``point=action@n`` (act on the n-th time the point is reached, default the first):

- ``kill``: SIGKILL this process at once (no cleanup, no flush: what a power cut or the OOM killer leaves);
- ``enospc``: raise what a full disk raises at that point: ``OSError(ENOSPC)``, or the exception the call site
  passes as ``disk_full`` (SQLite reports a full disk as its own error, not as an OSError).

Zero cost when nothing is armed (the normal case, and always in a release): one global lookup and a ``None`` test.

The points (POINTS lists them; tests check every one is reached):

- ``catalog.mid_commit``: a catalog write transaction has done its work and is about to COMMIT;
- ``index.mid_save``: hnswlib has written a new graph to a temp file, not yet fsynced or checked;
- ``index.before_replace``: the new graph file is checked, not yet renamed to its final name;
- ``index.before_manifest``: the new graph file is in place, the manifest naming it not yet replaced;
- ``schema.mid_migration``: a migration step has run inside its transaction, not yet committed;
- ``backup.before_replace``: a catalog backup copy is written, not yet renamed over the previous backup.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from collections.abc import Callable

ENV_VAR = "VSEARCH_FAULTS"
POINTS = (
    "catalog.mid_commit",
    "index.mid_save",
    "index.before_replace",
    "index.before_manifest",
    "schema.mid_migration",
    "backup.before_replace",
)
ACTIONS = ("kill", "enospc")


class _Armed:
    def __init__(self, action: str, on_hit: int) -> None:
        self.action, self.on_hit, self.hits = action, on_hit, 0


_armed: dict[str, _Armed] | None = None
_lock = threading.Lock()


def parse(spec: str) -> dict[str, _Armed]:
    """``"point=action[@n],..."`` -> the armed points; ValueError names what is wrong (a typo must not pass as
    "nothing failed")."""
    armed: dict[str, _Armed] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        point, _, rest = item.partition("=")
        action, _, nth = rest.partition("@")
        if point not in POINTS:
            raise ValueError(f"unknown fault point {point!r}; known: {', '.join(POINTS)}")
        if action not in ACTIONS:
            raise ValueError(f"unknown fault action {action!r} for {point}; known: {', '.join(ACTIONS)}")
        on_hit = int(nth) if nth else 1
        if on_hit < 1:
            raise ValueError(f"fault {item!r}: the hit number counts from 1")
        armed[point] = _Armed(action, on_hit)
    return armed


def arm(spec: str) -> None:
    """Arm points in this process (tests); replaces what was armed. ``disarm()`` undoes it."""
    global _armed
    with _lock:
        _armed = parse(spec) or None


def disarm() -> None:
    global _armed
    with _lock:
        _armed = None


def hits(point: str) -> int:
    """How often an armed ``point`` has been reached so far (0 when it is not armed)."""
    armed = _armed
    entry = armed.get(point) if armed else None
    return entry.hits if entry else 0


def reached(point: str, disk_full: Callable[[], BaseException] | None = None) -> None:
    """The code passes ``point``: fail here if a test armed it (see the module docstring); else nothing."""
    if _armed is None:
        return
    _trigger(point, disk_full)


def _trigger(point: str, disk_full: Callable[[], BaseException] | None) -> None:
    with _lock:
        entry = _armed.get(point) if _armed else None
        if entry is None:
            return
        entry.hits += 1
        if entry.hits != entry.on_hit:
            return
    if entry.action == "kill":
        # SIGKILL on POSIX; Windows has none, and its os.kill(SIGTERM) is TerminateProcess, equally abrupt.
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
        while True:  # pragma: no cover - the signal is delivered before this loop matters
            time.sleep(1)
    if disk_full is not None:
        raise disk_full()
    raise OSError(errno.ENOSPC, f"No space left on device (injected at {point})")


if os.environ.get(ENV_VAR):
    arm(os.environ[ENV_VAR])
