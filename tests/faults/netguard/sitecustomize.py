"""Loaded by Python at start-up when this folder is first on PYTHONPATH (tests/faults/test_network_guard.py): no
socket of this process, or of the processes it spawns, can reach another machine.

Every attempt (a connect to an internet address, a name lookup of a host other than this machine) is appended to the
file named by VSEARCH_NETGUARD_LOG, with the command line and a short stack, and fails with "Network is unreachable"
as it would on a machine without a connection. Local sockets (AF_UNIX, loopback addresses) are left alone: the
multiprocessing pipes, Qt and the OS use them, and they leave nothing."""

from __future__ import annotations

import errno
import os
import socket
import sys
import traceback

_LOG = os.environ.get("VSEARCH_NETGUARD_LOG")
_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "", None}


def _record(what: str) -> None:
    if _LOG:
        stack = "".join(traceback.format_stack(limit=12)[:-2])
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"--- {what} in {' '.join(sys.argv)!r} (pid {os.getpid()})\n{stack}")
    raise OSError(errno.ENETUNREACH, f"Network is unreachable (blocked by the test's network guard: {what})")


def _is_local(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    if isinstance(address, tuple) and address:
        host = address[0]
        return host in _LOCAL_NAMES or str(host).startswith("127.")
    return True


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _connect(self, address):
    if self.family != socket.AF_UNIX and not _is_local(address):
        _record(f"connect to {address!r}")
    return _real_connect(self, address)


def _connect_ex(self, address):
    if self.family != socket.AF_UNIX and not _is_local(address):
        _record(f"connect_ex to {address!r}")
    return _real_connect_ex(self, address)


def _getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name not in _LOCAL_NAMES and not str(name).startswith("127."):
        _record(f"name lookup of {name!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _connect
socket.socket.connect_ex = _connect_ex
socket.getaddrinfo = _getaddrinfo
