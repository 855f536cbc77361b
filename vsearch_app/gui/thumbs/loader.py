"""ThumbnailLoader: gets thumbnails off the GUI thread, visible rows first, and keeps the recent ones as QPixmaps.

    loader = ThumbnailLoader(service.thumbnail, side=256)   # source(path, max_side) -> core.types.Thumbnail
    loader.thumbnailReady.connect(...)                        # (path) the pixmap is now in loader.pixmap(path)
    loader.request(path); loader.prioritize(visible_paths)    # the results model does both
    loader.new_generation()                                   # a new query: drop what the old one still wanted
    loader.shutdown()                                         # before the loader is deleted; waits for the pool

How (GUI.md, "Results grid"):
- The queue lives here, in the GUI thread, and feeds a private QThreadPool only up to its maxThreadCount (2). The pool
  never holds a backlog: clearing a big pool queue crashed qimgv, and a backlog could not be reordered as the user
  scrolls. ``prioritize`` reorders the queue (visible first, then neighbours) and drops what scrolled away.
- A pool job calls ``source`` (the engine's cached, draft-decoding ``thumbnail``), turns the numpy pixels into a QImage
  that owns a copy of them, and emits a private signal. That signal is connected to a bound method of this
  GUI-thread QObject, so Qt queues it to the GUI thread (a lambda or partial would run in the pool thread), and only
  there is the QPixmap made: QPixmaps are not allowed off the GUI thread.
- Every request carries the generation it was made in; a result from an older generation is dropped, so a previous
  query's thumbnails never arrive late into a new one.
- QPixmaps live in a memory LRU of about three screens (the model sets the size from the visible range); failures
  (missing file, undecodable) are remembered with their reason so a painted placeholder does not ask again forever.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

from vsearch_app.core.types import Thumbnail

log = logging.getLogger(__name__)

ThumbnailSource = Callable[[Path, int], Thumbnail]

DEFAULT_SIDE = 256
DEFAULT_MEMORY_ITEMS = 300
MAX_REMEMBERED_FAILURES = 10_000
POOL_THREADS = 2  # GUI.md: two decoders keep a 2-core machine's GUI responsive (decoding releases the GIL)

_Key = tuple[Path, int]  # (path, side in device pixels)


class ThumbnailLoader(QObject):
    """Thumbnails for the GUI: requests in, QPixmaps out, never more than POOL_THREADS decodes at once.

    All methods are for the GUI thread. ``side`` is the thumbnail's longest side in device pixels (the cell size
    times the screen's devicePixelRatio).
    """

    thumbnailReady = Signal(object)  # path: loader.pixmap(path) now has it
    thumbnailFailed = Signal(object, str)  # path, why there is no thumbnail (loader.failure(path) says it too)

    # Emitted from pool threads: generation, path, side, QImage or None, reason or None.
    _delivered = Signal(int, object, int, object, object)

    def __init__(
        self,
        source: ThumbnailSource,
        *,
        side: int = DEFAULT_SIDE,
        memory_items: int = DEFAULT_MEMORY_ITEMS,
        threads: int = POOL_THREADS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._source = source
        self._side = max(1, int(side))
        self._memory_items = max(1, memory_items)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max(1, threads))
        self._generation = 0
        self._queue: OrderedDict[_Key, None] = OrderedDict()  # an ordered set: the next request is the first
        self._in_flight: dict[_Key, int] = {}  # key -> the generation it was started in
        self._running = 0  # jobs started and not yet delivered (any generation): what the pool holds
        self._pixmaps: OrderedDict[_Key, QPixmap] = OrderedDict()  # least recently used first
        self._failures: OrderedDict[_Key, str] = OrderedDict()
        self._closed = False
        self._delivered.connect(self._on_delivered)

    # --- what the model asks --------------------------------------------------------------------------------------

    @property
    def side(self) -> int:
        return self._side

    def set_side(self, side: int) -> None:
        """Change the thumbnail size (e.g. the user zoomed the grid): pending requests are dropped, since they were
        for the old size; cached pixmaps of other sizes simply age out of the LRU."""
        side = max(1, int(side))
        if side != self._side:
            self._side = side
            self.new_generation()

    def pixmap(self, path: Path) -> QPixmap | None:
        """The thumbnail of ``path`` at the current side, if it is in memory (and marks it recently used)."""
        key = (path, self._side)
        pixmap = self._pixmaps.get(key)
        if pixmap is not None:
            self._pixmaps.move_to_end(key)
        return pixmap

    def failure(self, path: Path) -> str | None:
        """Why ``path`` has no thumbnail at the current side, if loading it failed."""
        return self._failures.get((path, self._side))

    def request(self, path: Path) -> None:
        """Load ``path`` unless it is loaded, failed, queued or being loaded. Served after earlier requests."""
        key = (path, self._side)
        if self._closed or self._known(key):
            return
        self._queue[key] = None
        self._pump()

    def prioritize(self, paths: Iterable[Path]) -> None:
        """The queue becomes ``paths`` in this order (visible first, then the neighbours), minus what is already
        there or on its way; queued requests not named are dropped (they scrolled out of reach)."""
        if self._closed:
            return
        self._queue.clear()
        for path in paths:
            key = (path, self._side)
            if not self._known(key):
                self._queue[key] = None
        self._pump()

    def new_generation(self) -> int:
        """Forget every pending request and ignore the results of jobs already running (a new query started).
        Failures are forgotten too, so a file fixed since is tried again; the pixmap LRU stays valid."""
        self._generation += 1
        self._queue.clear()
        self._in_flight.clear()
        self._failures.clear()
        return self._generation

    def set_memory_items(self, count: int) -> None:
        """How many pixmaps to keep in memory (about three screens of cells)."""
        self._memory_items = max(1, count)
        self._trim_memory()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop: drop every request, wait for the running jobs, ignore their results. Returns False if a job was
        still running after ``timeout_ms`` (a photo on a hung network drive). Safe to call twice."""
        self._closed = True
        self.new_generation()
        finished = self._pool.waitForDone(timeout_ms)
        if not finished:
            log.warning("thumbnail jobs still running after %d ms at shutdown", timeout_ms)
        return finished

    # --- state, for the view and tests ----------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> int:
        """Jobs handed to the pool whose results have not reached the GUI thread yet."""
        return self._running

    @property
    def pool(self) -> QThreadPool:
        return self._pool

    @property
    def memory_items(self) -> int:
        return len(self._pixmaps)

    # --- internals ------------------------------------------------------------------------------------------------

    def _known(self, key: _Key) -> bool:
        return (key in self._pixmaps or key in self._failures or key in self._queue
                or self._in_flight.get(key) == self._generation)

    def _pump(self) -> None:
        """Hand queued requests to the pool while it has an idle thread."""
        while self._queue and not self._closed and self._running < self._pool.maxThreadCount():
            key, _ = self._queue.popitem(last=False)
            self._in_flight[key] = self._generation
            self._running += 1
            self._pool.start(_ThumbnailJob(self._source, key, self._generation, self._delivered))

    def _on_delivered(self, generation: int, path: Path, side: int, image: QImage | None, reason: str | None) -> None:
        """GUI thread: a job finished. Keep its result only if it belongs to the current generation."""
        self._running -= 1
        key = (path, side)
        current = generation == self._generation and not self._closed
        if current and self._in_flight.get(key) == generation:
            del self._in_flight[key]
        if current:
            if image is not None:
                self._pixmaps[key] = QPixmap.fromImage(image)
                self._trim_memory()
                if side == self._side:
                    self.thumbnailReady.emit(path)
            else:
                self._failures[key] = reason or "no thumbnail"
                while len(self._failures) > MAX_REMEMBERED_FAILURES:
                    self._failures.popitem(last=False)
                if side == self._side:
                    self.thumbnailFailed.emit(path, self._failures[key])
        self._pump()

    def _trim_memory(self) -> None:
        while len(self._pixmaps) > self._memory_items:
            self._pixmaps.popitem(last=False)


class _ThumbnailJob(QRunnable):
    """Runs in a pool thread: ask the source, convert to QImage, emit. Never raises (a pool thread cannot report)."""

    def __init__(self, source: ThumbnailSource, key: _Key, generation: int, delivered: Signal) -> None:
        super().__init__()
        self._source = source
        self._key = key
        self._generation = generation
        self._delivered = delivered

    def run(self) -> None:
        path, side = self._key
        image: QImage | None = None
        reason: str | None = None
        try:
            thumbnail = self._source(path, side)
            if thumbnail.image is not None:
                image = numpy_to_qimage(thumbnail.image)
            else:
                reason = thumbnail.reason or "no thumbnail"
        except Exception as exc:  # a bug must cost one thumbnail, not the pool thread
            log.exception("thumbnail of %s failed", path)
            reason = f"thumbnail failed: {exc}"
        self._delivered.emit(self._generation, path, side, image, reason)


def numpy_to_qimage(pixels: np.ndarray) -> QImage:
    """H x W x 3 uint8 RGB to a QImage that owns its pixels (safe to keep after ``pixels`` is gone)."""
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"expected H x W x 3 uint8 pixels, got {pixels.shape} {pixels.dtype}")
    height, width, _ = pixels.shape
    contiguous = np.ascontiguousarray(pixels)
    borrowed = QImage(contiguous.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return borrowed.copy()  # ``borrowed`` points into numpy's buffer; the copy has its own
