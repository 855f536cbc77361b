"""Decoding user photos in a few reusable worker processes, so one bad file costs that file, never the run.

Image decoders are C code fed with whatever is on the user's disk; a damaged file can crash one (a segfault takes
the whole process with it) or send it into a loop. ``IsolatedDecoder.decode(path)`` runs ``open_image`` and the
model's ``ImageTransform`` in a worker process (decode_worker) and returns the same float32 [3, H, W] array the
in-process path gives. A worker that dies while decoding a file makes that file fail with "decoder crashed"; one
that takes longer than the time limit is killed and the file fails with "took longer than N s"; a file that would
need more memory than the worker's budget fails with that reason. A new worker replaces a lost one on the next
request, and every other file is unaffected.

Workers are started with ``spawn`` (``fork`` would copy a process that holds torch's threads and locks), lazily,
at most ``workers`` of them, and reused for every file: starting one costs about half a second (a Python with
Pillow and numpy), decoding through one costs a pipe round trip of the pixels (0.6 MB at 224 px).
benchmarks/bench_robustness.py measures the cost against decoding in-process. Callers decode from several threads
at once (the Embedder's decode-ahead pool); each call holds one worker for its duration.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from vsearch_app.core.engine import decode_worker
from vsearch_app.errors import ImageDecodeError
from vsearch_app.preprocessing.image import ImageTransform

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 2
# Long enough for the largest image Pillow agrees to open (179 megapixels, a PNG or TIFF decoded in full) on a slow
# laptop, short enough that a hung decoder costs a minute, not the night.
DEFAULT_TIME_LIMIT_S = 60.0
# The largest image Pillow agrees to open, as 16-bit grey, passes through float64 on its way to RGB: about 2.5 GiB.
DEFAULT_MEMORY_BUDGET = 3 * 2**30

CRASHED = "decoder crashed"


def too_slow(limit_s: float) -> str:
    return f"took longer than {limit_s:g} s"


class _WorkerLost(Exception):
    """The worker process ended (crashed, was killed) while it had a request."""


class _Worker:
    def __init__(self, context: Any, transform: ImageTransform, memory_budget: int | None) -> None:
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=decode_worker.serve, args=(child_conn, transform, memory_budget),
                                       name="vsearch-decoder", daemon=True)
        self.process.start()
        child_conn.close()  # the child holds its own copy; ours must go so a dead child reads as end of file

    def call(self, path: str, time_limit_s: float) -> tuple[str, Any]:
        try:
            self.conn.send(path)
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError) as exc:
            raise _WorkerLost from exc
        # poll also returns when the pipe ends (the child died): recv then raises EOFError.
        if not self.conn.poll(time_limit_s):
            raise TimeoutError
        try:
            reply = self.conn.recv()
        except Exception as exc:  # EOF, or a reply cut short by the child's death: either way it is gone
            raise _WorkerLost from exc
        if not (isinstance(reply, tuple) and len(reply) == 2):
            raise _WorkerLost
        return reply

    def alive(self) -> bool:
        return self.process.is_alive()

    def stop(self, grace_s: float = 2.0) -> None:
        """Ask the worker to exit, and kill it if it does not within ``grace_s``."""
        try:
            self.conn.send(None)
        except (OSError, EOFError, ValueError):
            pass
        self.process.join(grace_s)
        self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5.0)
        self.conn.close()


class IsolatedDecoder:
    """``decode(path)`` in worker processes with a per-file time limit and memory budget (see the module docstring).
    Thread-safe; ``close()`` stops the workers (a later ``decode`` starts new ones)."""

    def __init__(
        self,
        transform: ImageTransform,
        *,
        workers: int = DEFAULT_WORKERS,
        time_limit_s: float = DEFAULT_TIME_LIMIT_S,
        memory_budget_bytes: int | None = DEFAULT_MEMORY_BUDGET,
    ) -> None:
        self.transform = transform
        self.time_limit_s = time_limit_s
        self.memory_budget_bytes = memory_budget_bytes
        self._context = multiprocessing.get_context("spawn")
        self._slots = threading.BoundedSemaphore(max(1, workers))
        self._lock = threading.Lock()
        self._idle: deque[_Worker] = deque()
        self._busy: set[_Worker] = set()
        self.started = 0  # worker processes started so far (tests check that workers are reused and replaced)

    def decode(self, path: str | os.PathLike[str]) -> np.ndarray:
        """The model's input array for the image at ``path``; raises ImageDecodeError with the reason."""
        name = os.fspath(path)
        with self._slots:
            worker = self._take()
            try:
                status, value = worker.call(name, self.time_limit_s)
            except TimeoutError:
                self._discard(worker)
                log.warning("decoding %s took longer than %g s; its decoder was stopped", name, self.time_limit_s)
                reason = too_slow(self.time_limit_s)
                raise ImageDecodeError(f"{name}: {reason}", reason=reason) from None
            except _WorkerLost:
                self._discard(worker)
                log.warning("the decoder crashed on %s (exit code %s)", name, worker.process.exitcode)
                raise ImageDecodeError(f"{name}: {CRASHED}", reason=CRASHED) from None
            self._give_back(worker)
        if status == "ok":
            return value
        raise ImageDecodeError(f"{name}: {value}", reason=str(value))

    def close(self) -> None:
        """Stop every worker. Requests in flight (there are none when the caller has joined its threads) fail."""
        with self._lock:
            workers = list(self._idle) + list(self._busy)
            self._idle.clear()
            self._busy.clear()
        for worker in workers:
            worker.stop()

    def __enter__(self) -> IsolatedDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- workers ------------------------------------------------------------------------------------------------

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():  # one that died while idle (an OOM kill) must not fail an innocent file
                    self._busy.add(worker)
                    return worker
                worker.kill()
            self.started += 1
        started = time.monotonic()
        worker = _Worker(self._context, self.transform, self.memory_budget_bytes)  # outside the lock: ~0.5 s
        log.debug("decoder worker %d started in %.2f s", worker.process.pid, time.monotonic() - started)
        with self._lock:
            self._busy.add(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            self._idle.append(worker)

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
        worker.kill()


def is_isolated_source(source: Any) -> bool:
    """Paths go to the workers; in-memory images (already decoded by the caller) do not."""
    return isinstance(source, (str, Path, os.PathLike))
