"""The body of one decoder worker process (see decode_pool): photo paths in, model pixels or a reason out.

Runs in a process of its own, started with ``spawn`` (never ``fork``: the parent holds torch's threads and locks),
so it imports only what decoding needs: Pillow and numpy, never torch. Before the first file it caps its own
address space (``RLIMIT_AS``, POSIX) at what it uses once its imports are loaded plus the memory budget, so a file
that would need more fails with MemoryError inside the worker instead of swapping the machine or waking the OOM
killer in the user's session. Where the limit cannot be set (Windows, and macOS, which does not enforce it), the
decompression-bomb limit and the draft decode are the only bounds.

Protocol over the pipe: the worker first sends ``("ready", None)`` once it can decode; then, one request at a time,
the parent sends a path (``str``) and receives ``("ok", array)``,
``("error", reason)`` or ``("memory", reason)`` (the budget ran out: the parent may try again in a fresh worker, as
a long-lived heap may be fragmented); ``None`` asks the worker to exit. If the parent goes away the pipe ends and
the worker exits.

Tests make a worker misbehave on purpose with ``VSEARCH_TEST_DECODER_FAULTS``: a JSON object mapping a file's
base name to "segfault", "abort", "hang" or "memory" (allocate without end). Nothing else reads it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

FAULTS_ENV = "VSEARCH_TEST_DECODER_FAULTS"

# One decode at a time per worker: more threads would only compete for the worker's single job.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def serve(conn: Any, transform: Any, memory_budget_bytes: int | None) -> None:
    """Decode paths received on ``conn`` until told to stop or the parent goes away."""
    for name in _THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    # Decoders log what they think of a damaged file ("More samples per pixel than can be decoded"); with no handler
    # Python would print that on the terminal, through the index progress bar. The reason comes back in the reply.
    logging.getLogger().addHandler(logging.NullHandler())
    from vsearch_app.errors import ImageDecodeError
    from vsearch_app.preprocessing.image import open_image, register_optional_plugins

    register_optional_plugins()
    faults = _test_faults()
    limited = _limit_address_space(memory_budget_bytes)
    try:
        conn.send(("ready", None))
    except (BrokenPipeError, EOFError, OSError):
        return
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the parent closed the pipe or died
        if request is None:
            return
        path: str = request
        try:
            if faults:
                _misbehave(faults.get(os.path.basename(path)))
            pixels = transform.to_array(open_image(path, target_size=transform.size))
            reply: tuple[str, Any] = ("ok", pixels)
        except ImageDecodeError as exc:
            # open_image words a MemoryError itself; here the cause is known: the worker's budget.
            if isinstance(exc.__cause__, MemoryError):
                reply = ("memory", _memory_reason(memory_budget_bytes if limited else None))
            else:
                reply = ("error", exc.reason)
        except MemoryError:
            reply = ("memory", _memory_reason(memory_budget_bytes if limited else None))
        except Exception as exc:  # noqa: BLE001 - a decoder bug is this file's failure, never the worker's end
            reply = ("error", f"could not decode: {type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("memory", _memory_reason(memory_budget_bytes if limited else None)))
        except (BrokenPipeError, EOFError, OSError):
            return


def _memory_reason(budget: int | None) -> str:
    if budget is None:
        return "not enough memory to decode this image"
    return f"needs more than {budget / 2**30:g} GiB of memory to decode"


def _limit_address_space(budget: int | None) -> bool:
    """Cap this process's address space at its present size plus ``budget``; True when the cap is in force."""
    if budget is None or sys.platform in ("win32", "darwin"):
        return False
    try:
        import resource

        with open("/proc/self/statm", encoding="ascii") as statm:
            in_use = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = in_use + budget
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        return True
    except (OSError, ValueError, ImportError):
        return False


def _test_faults() -> dict[str, str]:
    raw = os.environ.get(FAULTS_ENV)
    if not raw:
        return {}
    try:
        faults = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in faults.items()} if isinstance(faults, dict) else {}


def _misbehave(fault: str | None) -> None:
    if fault == "segfault":
        import ctypes

        ctypes.string_at(0)  # reads address 0: a real SIGSEGV, as a broken C decoder would
    elif fault == "abort":
        os.abort()
    elif fault == "hang":
        import time

        while True:
            time.sleep(60)
    elif fault == "memory":
        hoard = []
        while True:
            hoard.append(bytearray(64 * 2**20))
