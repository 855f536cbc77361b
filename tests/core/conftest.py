"""Fixtures shared by the core tests."""

from __future__ import annotations

import pytest

from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog


@pytest.fixture
def cat(tmp_path):
    """A fresh catalog in tmp_path/data with one root, tmp_path/photos (test_catalog defines its own, rootless)."""
    c = Catalog.open(tmp_path / "data" / CATALOG_FILENAME)
    c.add_root(tmp_path / "photos")
    yield c
    c.close()
