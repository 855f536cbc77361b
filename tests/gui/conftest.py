"""Fixtures for the GUI tests (pytest-qt, offscreen): generated photos and thumbnail loaders that are always shut
down, so no pool thread outlives its test."""

from __future__ import annotations

import pytest

import vsearch_app.gui  # noqa: F401  (applies gui.qtfix before the first Qt call of a test)
from tests.gui.photos import write_photos
from tests.gui.window_helpers import Windows
from vsearch_app.core.library.thumbnails import ThumbnailCache
from vsearch_app.gui.thumbs.loader import ThumbnailLoader


@pytest.fixture
def photos(tmp_path):
    """40 generated JPEG photos (every fifth one portrait)."""
    return write_photos(tmp_path / "photos", 40)


@pytest.fixture
def thumbnail_cache(tmp_path):
    return ThumbnailCache(tmp_path / "thumbs")


@pytest.fixture
def make_loader(qapp):
    """make_loader(source, **kwargs) -> ThumbnailLoader, shut down at teardown."""
    made: list[ThumbnailLoader] = []

    def make(source, **kwargs) -> ThumbnailLoader:
        loader = ThumbnailLoader(source, **kwargs)
        made.append(loader)
        return loader

    yield make
    for loader in made:
        assert loader.shutdown(10_000)


@pytest.fixture
def windows(qtbot, tmp_path):
    """windows.open(settings) -> the real MainWindow, shown, engine started; every one is closed the app's way
    (Finishing, lanes stopped, library closed) at teardown. See tests/gui/window_helpers.py."""
    made = Windows(qtbot, tmp_path)
    yield made
    made.close_all()
