"""Packing the caption model's weights while it is idle, so that a cold start does not wait for it.

oneDNN prepacking makes bf16 decoding on a CPU about 1.4x faster, but packing a 3B decoder takes seconds (6.7 s on
the shared 2-core machine, benchmarks/RESULTS.md), which a cold start used to wait for. The first caption now runs on
the plain weights, which give bitwise the same tokens, and ``IdlePacker`` packs afterwards, one step (a decoder
layer, or the output head) at a time on a thread of its own, whenever no caption is running or waiting:

- A step and a generation never overlap: each step holds the model's lane (the lock a generation holds), so a
  forward pass never sees a layer half swapped.
- A caption asking for the lane (``generation()``) is served before any further step; it waits at most for the one
  step in progress (a fraction of a second for a 3B layer).
- ``close`` stops after the step in progress and joins the thread. A step that fails leaves the model working (a
  layer is usable at every point of its packing) and ends packing; the error goes to the log.
- At interpreter exit, packers still running are closed first (an ``atexit`` hook): a oneDNN reorder still running
  while Python finalises aborts the process ("terminate called without an active exception"), seen when a script
  captioned once and ended without closing its Captioner.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence

log = logging.getLogger(__name__)


_running: weakref.WeakSet[IdlePacker] = weakref.WeakSet()  # packers whose thread may still be running


@atexit.register
def _close_running_packers() -> None:
    for packer in list(_running):
        packer.close()


class IdlePacker:
    """Runs ``steps`` on its own thread between generations; see the module docstring."""

    def __init__(self, steps: Sequence[Callable[[], None]], lane: threading.Lock, name: str = "model-packer") -> None:
        self._steps = list(steps)
        self._lane = lane
        self._name = name
        self._state = threading.Condition()  # guards _waiting, _stopping and _thread
        self._waiting = 0  # generations that asked for the lane and have not finished
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._finished = threading.Event()  # the thread ended (or never will run)
        if not self._steps:
            self._finished.set()

    @property
    def pending(self) -> int:
        """Steps not yet done."""
        return len(self._steps)

    @contextlib.contextmanager
    def generation(self) -> Iterator[None]:
        """Hold the model's lane for one generation, ahead of any packing step not yet begun."""
        with self._state:
            self._waiting += 1
        try:
            with self._lane:
                yield
        finally:
            with self._state:
                self._waiting -= 1
                self._state.notify_all()

    def start(self) -> None:
        """Start packing in the background (once; later calls do nothing)."""
        with self._state:
            if self._thread is not None or self._stopping or not self._steps:
                return
            # A daemon thread, so that a forgotten close() cannot keep the process alive; the atexit hook above
            # still stops it cleanly before the interpreter finalises.
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            _running.add(self)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every step is done (True), or packing ended without finishing (closed, or a step failed) or
        ``timeout`` seconds passed (False). Starts packing if needed."""
        self.start()
        return self._finished.wait(timeout) and not self._steps

    def close(self) -> None:
        """Stop after the step in progress and join the thread. Idempotent."""
        with self._state:
            self._stopping = True
            self._state.notify_all()
            thread = self._thread
        if thread is None:
            self._finished.set()  # never started: nobody may wait for it
        elif thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        try:
            while self._steps:
                with self._state:
                    while self._waiting and not self._stopping:
                        self._state.wait()
                    if self._stopping:
                        return
                with self._lane:
                    with self._state:
                        if self._stopping:
                            return
                        if self._waiting:  # a generation asked while this thread waited for the lane
                            continue
                    self._steps[0]()
                    self._steps.pop(0)
            log.debug("caption model packed")
        except Exception:  # noqa: BLE001 - the model still works unpacked; a packing failure must not end the app
            log.exception("packing the caption model failed; it keeps running on the weights packed so far")
        finally:
            self._finished.set()
