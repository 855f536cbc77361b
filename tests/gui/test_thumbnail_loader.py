"""ThumbnailLoader: pixmaps from the real ThumbnailCache, a pool fed only up to its thread count, visible-first
ordering, stale generations dropped, failures remembered, a clean shutdown."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from vsearch_app.core.types import Thumbnail
from vsearch_app.gui.thumbs.loader import numpy_to_qimage


class GatedSource:
    """A thumbnail source that holds every call until ``release()``, recording the order of the calls."""

    def __init__(self) -> None:
        self.calls: list[Path] = []
        self.gate = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, path: Path, side: int) -> Thumbnail:
        with self._lock:
            self.calls.append(path)
        assert self.gate.wait(30)
        pixels = np.full((side // 2, side, 3), 128, np.uint8)
        return Thumbnail(path, pixels)

    def release(self) -> None:
        self.gate.set()


def _wait_idle(qtbot, loader) -> None:
    qtbot.waitUntil(lambda: loader.running == 0 and loader.queued == 0, timeout=15_000)


def test_thumbnails_arrive_as_pixmaps_from_the_real_cache(qtbot, make_loader, photos, thumbnail_cache):
    loader = make_loader(thumbnail_cache.get, side=96)
    ready: list[Path] = []
    loader.thumbnailReady.connect(ready.append)
    for path in photos[:10]:
        loader.request(path)
    qtbot.waitUntil(lambda: len(ready) == 10, timeout=20_000)
    assert set(ready) == set(photos[:10])
    for path in photos[:10]:
        pixmap = loader.pixmap(path)
        assert pixmap is not None and not pixmap.isNull()
        assert max(pixmap.width(), pixmap.height()) == 96
    assert loader.pixmap(photos[4]).height() == 96  # the fifth photo is portrait, and stays so


def test_the_pool_is_never_given_more_than_its_thread_count(qtbot, make_loader):
    source = GatedSource()
    loader = make_loader(source, side=32)
    paths = [Path(f"/photos/{i}.jpg") for i in range(10)]
    for path in paths:
        loader.request(path)
        loader.request(path)  # asking twice queues once
    assert loader.running == 2 and loader.queued == 8
    qtbot.waitUntil(lambda: len(source.calls) == 2)
    assert loader.pool.activeThreadCount() <= 2
    source.release()
    _wait_idle(qtbot, loader)
    assert sorted(source.calls) == sorted(paths)  # each once


def test_prioritize_puts_the_visible_rows_first_and_drops_what_scrolled_away(qtbot, make_loader):
    source = GatedSource()
    loader = make_loader(source, side=32, threads=1)  # one thread: the calls happen in exactly the queue's order
    paths = [Path(f"/photos/{i}.jpg") for i in range(10)]
    for path in paths:
        loader.request(path)
    loader.prioritize([paths[9], paths[8], paths[0]])  # 0 is already being loaded: not queued again
    assert loader.queued == 2
    source.release()
    _wait_idle(qtbot, loader)
    assert source.calls == [paths[0], paths[9], paths[8]]
    assert loader.pixmap(paths[5]) is None


def test_results_of_a_previous_generation_are_dropped(qtbot, make_loader):
    source = GatedSource()
    loader = make_loader(source, side=32)
    ready: list[Path] = []
    loader.thumbnailReady.connect(ready.append)
    old, new = Path("/photos/old-query.jpg"), Path("/photos/new-query.jpg")
    loader.request(old)
    qtbot.waitUntil(lambda: source.calls == [old])
    loader.new_generation()  # a new query while the old thumbnail is being made
    loader.request(new)
    source.release()
    _wait_idle(qtbot, loader)
    assert ready == [new]
    assert loader.pixmap(old) is None and loader.pixmap(new) is not None


def test_failures_are_reported_once_and_remembered(qtbot, make_loader, tmp_path, thumbnail_cache):
    loader = make_loader(thumbnail_cache.get, side=64)
    failed: list[tuple[Path, str]] = []
    loader.thumbnailFailed.connect(lambda path, reason: failed.append((path, reason)))
    missing = tmp_path / "gone.jpg"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    loader.request(missing)
    loader.request(broken)
    qtbot.waitUntil(lambda: len(failed) == 2, timeout=10_000)
    assert dict(failed)[missing] == "file is missing"
    assert dict(failed)[broken].startswith("cannot decode: ")
    assert loader.failure(missing) == "file is missing"
    loader.request(missing)  # a placeholder repainted: not asked again
    assert loader.queued == 0 and loader.running == 0


def test_a_source_that_raises_costs_one_thumbnail_not_the_pool(qtbot, make_loader, photos, thumbnail_cache):
    def flaky(path: Path, side: int) -> Thumbnail:
        if path == photos[0]:
            raise RuntimeError("boom")
        return thumbnail_cache.get(path, side)

    loader = make_loader(flaky, side=48)
    loader.request(photos[0])
    loader.request(photos[1])
    _wait_idle(qtbot, loader)
    assert loader.failure(photos[0]) == "thumbnail failed: boom"
    assert loader.pixmap(photos[1]) is not None


def test_the_memory_cache_keeps_the_most_recently_used(qtbot, make_loader, photos, thumbnail_cache):
    loader = make_loader(thumbnail_cache.get, side=32)
    loader.set_memory_items(3)
    for path in photos[:5]:
        loader.request(path)
    _wait_idle(qtbot, loader)
    assert loader.memory_items == 3
    assert sum(loader.pixmap(path) is not None for path in photos[:5]) == 3


def test_a_new_side_asks_again_at_that_size(qtbot, make_loader, photos, thumbnail_cache):
    loader = make_loader(thumbnail_cache.get, side=32)
    loader.request(photos[0])
    _wait_idle(qtbot, loader)
    loader.set_side(64)
    assert loader.pixmap(photos[0]) is None
    loader.request(photos[0])
    _wait_idle(qtbot, loader)
    assert loader.pixmap(photos[0]).width() == 64


def test_shutdown_leaves_the_pool_empty_and_ignores_later_requests(qtbot, make_loader):
    source = GatedSource()
    loader = make_loader(source, side=32)
    ready: list[Path] = []
    loader.thumbnailReady.connect(ready.append)
    for i in range(8):
        loader.request(Path(f"/photos/{i}.jpg"))
    qtbot.waitUntil(lambda: len(source.calls) == 2)
    threading.Timer(0.2, source.release).start()  # the running jobs finish while shutdown waits for them
    assert loader.shutdown(10_000)
    assert loader.pool.activeThreadCount() == 0
    assert loader.queued == 0
    loader.request(Path("/photos/late.jpg"))
    assert loader.queued == 0 and loader.running <= 2
    qtbot.wait(50)  # let any queued delivery reach the GUI thread: it must be ignored
    assert ready == [] and loader.running == 0
    assert len(source.calls) == 2


def test_numpy_to_qimage_copies_the_pixels():
    pixels = np.zeros((3, 4, 3), np.uint8)
    pixels[0, 0] = (255, 0, 0)
    pixels[2, 3] = (0, 0, 255)
    image = numpy_to_qimage(pixels)
    del pixels
    assert (image.width(), image.height()) == (4, 3)
    assert image.pixelColor(0, 0).getRgb()[:3] == (255, 0, 0)
    assert image.pixelColor(3, 2).getRgb()[:3] == (0, 0, 255)
    with pytest.raises(ValueError):
        numpy_to_qimage(np.zeros((3, 4), np.uint8))
