"""Decoding user photos in a few reusable worker processes, so one bad file costs that file, never the run.

Image decoders are C code fed with whatever is on the user's disk; a damaged file can crash one (a segfault takes
the whole process with it) or send it into a loop. ``IsolatedDecoder.decode(path)`` runs ``open_image`` and the
model's ``ImageTransform`` in a worker process (decode_worker) and returns the same float32 [3, H, W] array the
in-process path gives. A worker that dies while decoding a file makes that file fail with "decoder crashed"; one
that takes longer than the time limit is killed and the file fails with "took longer than N s"; a file that would
need more memory than the worker's budget fails with that reason, after a second try in a fresh worker (the budget
caps address space, which a worker's heap may have fragmented over thousands of photos). A new worker replaces a
lost one on the next request, workers are also replaced after ``recycle_after`` files, and every other file is
unaffected.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vsearch_app.core.engine import decode_worker
from vsearch_app.errors import ImageDecodeError
from vsearch_app.preprocessing.image import ImageTransform, open_image

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 2
# Long enough for the largest image Pillow agrees to open (179 megapixels, a PNG or TIFF decoded in full) on a slow
# laptop, short enough that a hung decoder costs a minute, not the night.
DEFAULT_TIME_LIMIT_S = 60.0
# The largest image Pillow agrees to open, as 16-bit grey, passes through float64 on its way to RGB: about 2.5 GiB.
DEFAULT_MEMORY_BUDGET = 3 * 2**30
# A fresh worker costs about half a second; after this many photos (minutes of indexing) that is noise.
DEFAULT_RECYCLE_AFTER = 2000

CRASHED = "decoder crashed"
# How long a new worker may take to say it is ready (a Python with Pillow and numpy: half a second, more on a busy
# laptop just after boot). One that does not is a machine where workers cannot run, not a bad photo.
START_TIMEOUT_S = 60.0


def too_slow(limit_s: float) -> str:
    return f"took longer than {limit_s:g} s"


@dataclass(frozen=True)
class _Reply:
    status: str  # "ok", "error" or "memory" (see decode_worker)
    value: Any  # the pixels, or the reason
    served: int  # files the worker had answered, this one included


class _StartFailed(Exception):
    """A worker process could not be started, or died before it was ready (no file is to blame)."""


class _WorkerLost(Exception):
    """The worker process ended (crashed, was killed) while it had a request."""


class _Worker:
    def __init__(self, context: Any, transform: ImageTransform, memory_budget: int | None) -> None:
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=decode_worker.serve, args=(child_conn, transform, memory_budget),
                                       name="vsearch-decoder", daemon=True)
        self.process.start()
        child_conn.close()  # the child holds its own copy; ours must go so a dead child reads as end of file
        self.served = 0  # files decoded (or refused) so far
        try:
            ready = self.conn.poll(START_TIMEOUT_S) and self.conn.recv() == ("ready", None)
        except Exception:  # EOF: it died while starting  # noqa: BLE001
            ready = False
        if not ready:
            self.kill()
            raise _StartFailed(f"exit code {self.process.exitcode}")

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
        self.served += 1
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
        recycle_after: int = DEFAULT_RECYCLE_AFTER,
    ) -> None:
        self.transform = transform
        self.recycle_after = max(1, recycle_after)
        self.time_limit_s = time_limit_s
        self.memory_budget_bytes = memory_budget_bytes
        self._context = multiprocessing.get_context("spawn")
        self._slots = threading.BoundedSemaphore(max(1, workers))
        self._lock = threading.Lock()
        self._idle: deque[_Worker] = deque()
        self._busy: set[_Worker] = set()
        self.started = 0  # worker processes started so far (tests check that workers are reused and replaced)
        self.in_process = False  # set when workers cannot start here: decoding then happens in this process

    def decode(self, path: str | os.PathLike[str]) -> np.ndarray:
        """The model's input array for the image at ``path``; raises ImageDecodeError with the reason."""
        name = os.fspath(path)
        if self.in_process:
            return self._decode_here(name)
        with self._slots:
            try:
                reply = self._ask(name)
                if reply.status == "memory" and reply.served > 1:  # out of memory in a worker that had decoded others
                    log.debug("retrying %s in a fresh decoder worker", name)
                    reply = self._ask(name, fresh=True)
            except (_StartFailed, OSError) as exc:
                # Failing every photo because helpers cannot start (a process limit, a broken frozen build) would
                # be worse than decoding unprotected: the photos are fine, the machine is not.
                log.warning("decoder worker processes cannot start (%s); decoding photos in this process", exc)
                self.in_process = True
                return self._decode_here(name)
        if reply.status == "ok":
            return reply.value
        raise ImageDecodeError(f"{name}: {reply.value}", reason=str(reply.value))

    def _decode_here(self, name: str) -> np.ndarray:
        return self.transform.to_array(open_image(name, target_size=self.transform.size))

    def _ask(self, name: str, *, fresh: bool = False) -> _Reply:
        """One worker's answer for ``name``; a crash or a timeout raises ImageDecodeError (the worker is gone)."""
        worker = self._take(fresh=fresh)
        try:
            status, value = worker.call(name, self.time_limit_s)
        except TimeoutError:
            self._discard(worker)
            log.info("decoding %s took longer than %g s; its decoder was stopped", name, self.time_limit_s)
            reason = too_slow(self.time_limit_s)
            raise ImageDecodeError(f"{name}: {reason}", reason=reason) from None
        except _WorkerLost:
            self._discard(worker)
            log.info("the decoder crashed on %s (exit code %s)", name, worker.process.exitcode)
            raise ImageDecodeError(f"{name}: {CRASHED}", reason=CRASHED) from None
        if status == "memory" or worker.served >= self.recycle_after:
            self._discard(worker, polite=True)  # a heap that ran out once is not trusted with the next file
        else:
            self._give_back(worker)
        return _Reply(status, value, worker.served)

    def worker_pids(self) -> list[int]:
        """Process ids of the workers alive now (benchmarks read their CPU time)."""
        with self._lock:
            return [w.process.pid for w in [*self._idle, *self._busy] if w.process.pid is not None]

    def close(self) -> None:
        """Stop every worker. Requests in flight (there are none when the caller has joined its threads) fail."""
        self.in_process = False  # a later use tries workers again
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

    def _take(self, *, fresh: bool = False) -> _Worker:
        with self._lock:
            while self._idle and not fresh:
                worker = self._idle.pop()
                if worker.alive():  # one that died while idle (an OOM kill) must not fail an innocent file
                    self._busy.add(worker)
                    return worker
                worker.kill()
            self.started += 1
        started = time.monotonic()
        try:
            worker = _Worker(self._context, self.transform, self.memory_budget_bytes)  # outside the lock: ~0.5 s
        except BaseException:
            with self._lock:
                self.started -= 1
            raise
        log.debug("decoder worker %d started in %.2f s", worker.process.pid, time.monotonic() - started)
        with self._lock:
            self._busy.add(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            self._idle.append(worker)

    def _discard(self, worker: _Worker, *, polite: bool = False) -> None:
        with self._lock:
            self._busy.discard(worker)
        if polite:
            worker.stop()
        else:
            worker.kill()


def is_isolated_source(source: Any) -> bool:
    """Paths go to the workers; in-memory images (already decoded by the caller) do not."""
    return isinstance(source, (str, Path, os.PathLike))
