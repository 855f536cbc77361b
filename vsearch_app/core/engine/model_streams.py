"""Model streams: the parts of an image batch run at the same time, each in a thread with a share of torch's threads.

Used by ``core.engine.embedder``. Kept apart because it is about threads, not about embeddings: torch's per-thread
thread counts, a pool started behind a barrier, and futures that run in the caller's thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch


def default_stream_count(device: torch.device) -> int:
    """Two model streams on a CPU with at least two torch threads, when torch's thread counts are per thread (its
    OpenMP backend: the wheels for every desktop platform); otherwise, and on GPUs, one."""
    if device.type != "cpu" or torch.get_num_threads() < 2:
        return 1
    return 2 if "ATen parallel backend: OpenMP" in torch.__config__.parallel_info() else 1


class ModelStreams:
    """Runs the parts of image batches at the same time, each in its own thread with ``1/count`` of the torch threads.

    Why: one forward pass over all cores synchronises its threads after every operator, and the small operators
    (layer norms, softmax, adds) do not divide well; the decode threads also preempt a core in the middle of a matrix
    product, which stalls the other threads at the next barrier. Independent half-batches do neither (the gain
    measured with bench_embed is in benchmarks/RESULTS.md).

    torch keeps the thread count per OS thread (OpenMP), but ``torch.set_num_threads`` also sets the default that
    threads created later start from; so the stream threads are started together, each takes its count, and the
    starting thread then puts the default back.
    """

    SMALLEST_SPLIT = 4  # a smaller batch (a query image) runs whole, in the calling thread with all its threads

    def __init__(self, count: int) -> None:
        self.count = max(1, count)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def split(self, batch: range) -> list[range]:
        """The parts a batch is embedded in: ``count`` near-equal ranges, or the batch itself when it is small."""
        if self.count == 1 or len(batch) < self.SMALLEST_SPLIT:
            return [batch]
        bounds = np.linspace(batch.start, batch.stop, self.count + 1).round().astype(int)
        return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def submit(self, fn: Callable[..., Any], *args: Any, whole: bool) -> Future:
        """Start ``fn(*args)`` on a stream thread. A ``whole`` batch (one that was not split), or any work when there
        is a single stream (a GPU, or one core), runs instead in the caller's thread, with all its torch threads,
        when its result is asked for."""
        if whole or self.count == 1:
            return _Deferred(fn, args)
        return self._started().submit(fn, *args)

    def _started(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                own = torch.get_num_threads()
                pool = ThreadPoolExecutor(self.count, thread_name_prefix="vsearch-model")
                ready = threading.Barrier(self.count + 1)
                for _ in range(self.count):  # each blocks at the barrier, so the pool must start all its threads
                    pool.submit(_take_threads, max(1, own // self.count), ready)
                ready.wait()
                torch.set_num_threads(own)
                self._pool = pool
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


class _Deferred(Future):
    """A future whose work runs in the thread that first asks for its result."""

    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        super().__init__()
        self._work: tuple[Callable[..., Any], tuple] | None = (fn, args)

    def result(self, timeout: float | None = None) -> Any:
        work, self._work = self._work, None
        if work is not None and self.set_running_or_notify_cancel():
            try:
                self.set_result(work[0](*work[1]))
            except BaseException as exc:
                self.set_exception(exc)
        return super().result(timeout)


def _take_threads(count: int, ready: threading.Barrier) -> None:
    torch.get_num_threads()  # runs torch's lazy per-thread set-up now, so it cannot later replace the count below
    torch.set_num_threads(count)
    ready.wait()
