"""A workaround for a PySide6 6.12.0 defect that aborts the desktop app on CPython 3.11. Applied on import.

The defect (measured on this project's stack, PySide6 6.12.0 + CPython 3.11.7; PySide6 6.11.2 does not have it):
every call of a Qt method that returns None (``painter.save()``, ``timer.setInterval(5)``, ``obj.parent()`` with
no parent, ...) drops one reference to None, and every ``signal.emit(...)`` drops one reference to True. A results
grid paints thousands of such calls a second, and CPython 3.11 counts references to None and True: within seconds it
aborts with "Fatal Python error: none_dealloc: deallocating None" (or "bool_dealloc"). GUI.md's "data() returning
None aborts" row is this same defect seen from a test. CPython 3.12 made these singletons immortal (PEP 683), so
there the dropped references are harmless.

The workaround does what 3.12 does: when a probe shows references being dropped, it gives None, True and False a
reference count so large (2**60) that no run can use it up. These objects are never freed in any case, so nothing
else changes. Without the defect (another PySide6, or CPython >= 3.12) it does nothing. The real fix is a PySide6
without the defect (pin below 6.12 on CPython 3.11, or a fixed release); this module then stays inert.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

_PROBE_CALLS = 64
_HEADROOM = 1 << 60  # references given to each singleton; at a million dropped per second, 36,000 years

_applied = False


class _Probe(QObject):
    ping = Signal()


def drops_references() -> bool:
    """Whether this PySide6 drops references to None (void calls) or True (emit): a probe of _PROBE_CALLS each."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False  # immortal singletons (or no reference counts to speak of): nothing to protect
    probe = _Probe()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(_PROBE_CALLS):
        probe.setObjectName("probe")  # returns None
        probe.ping.emit()  # returns True
    lost = (none_before - sys.getrefcount(None)) + (true_before - sys.getrefcount(True))
    # Other threads move these counts a little; the defect moves them by one per call.
    return lost >= _PROBE_CALLS


def apply() -> bool:
    """Protect None, True and False if this PySide6 needs it (idempotent). Returns whether the protection is on."""
    global _applied
    if not _applied and drops_references():
        for singleton in (None, True, False):
            # CPython's object header starts with the reference count (a Py_ssize_t). The GIL is held here, and
            # no thread may touch reference counts without it, so this write cannot race an incref or decref.
            ctypes.c_ssize_t.from_address(id(singleton)).value += _HEADROOM
        _applied = True
        log.info("PySide6 drops references to None/True on this Python; gave them headroom (see gui.qtfix)")
    return _applied


apply()
