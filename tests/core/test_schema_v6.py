"""Schema v6: the camera index that the search filters' camera list and camera filter read."""

from __future__ import annotations

import numpy as np

from vsearch_app.core.library.filters import allowed_ids, camera_keys, check_filter, filter_sql
from vsearch_app.core.library.photo_metadata import META_VERSION, PhotoMetadata
from vsearch_app.core.store import schema
from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog
from vsearch_app.core.types import SearchFilter


def meta(make, model):
    return PhotoMetadata("2020-01-01T00:00:00", "exif", None, make, model, None, False, 4, 3)


def test_migrating_v5_to_v6_adds_the_camera_index_that_filters_use(tmp_path, monkeypatch):
    db = tmp_path / CATALOG_FILENAME
    photos = tmp_path / "photos"
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 5)
    with Catalog.open(db) as old:
        old.add_root(photos)
        ids = [old.record_embedding(photos / f"{i}.jpg", "m", np.arange(4), size=1, mtime_ns=1) for i in range(5)]
        for fid, camera in zip(ids, [("Google", "Pixel 7"), ("Google", "Pixel 7"), (None, "Scanner"),
                                     ("Canon", None), (None, None)], strict=True):
            old.record_metadata(fid, meta(*camera), META_VERSION)
    monkeypatch.undo()
    with Catalog.open(db) as cat:
        assert cat.schema_version() == 6
        assert camera_keys(cat) == ["\x1fScanner", "Canon\x1f", "Google\x1fPixel 7"]
        filters = check_filter(SearchFilter(camera="pixel"))
        where = filter_sql(cat, filters)
        plan = cat.query(f"EXPLAIN QUERY PLAN SELECT id FROM files WHERE {where.where}", where.params)
        assert "files_camera" in str(plan)
        assert allowed_ids(cat, filters).tolist() == ids[:2]
        assert cat.integrity_check() == "ok"
    assert (tmp_path / f"{CATALOG_FILENAME}.bak-v5").exists()
