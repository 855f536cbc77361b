"""Schema v5: the captions' full-text index follows the captions table, and files gain the metadata columns that
filters read, with meta_version 0 marking photos whose metadata a backfill still has to read."""

from __future__ import annotations

import numpy as np

from vsearch_app.core.store import captions, schema
from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog
from vsearch_app.core.types import CaptionResult


def caption(text, prompt="caption en"):
    return CaptionResult(text, prompt, "m", "stop_token", token_count=3)


def fts_ids(cat, match):
    return sorted(r[0] for r in cat.query(
        "SELECT c.file_id FROM captions_fts JOIN captions c ON c.rowid = captions_fts.rowid "
        "WHERE captions_fts MATCH ?", (match,)))


def test_migrating_v4_to_v5_indexes_existing_captions_and_marks_metadata_unread(tmp_path, monkeypatch):
    db = tmp_path / CATALOG_FILENAME
    photos = tmp_path / "photos"
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 4)
    with Catalog.open(db) as old:
        old.add_root(photos)
        fid = old.record_embedding(photos / "a.jpg", "m", np.arange(4), size=5, mtime_ns=6, captured_at="2019-06-01T10:00:00")
        captions.save(old, captions.find_photo(old, photos / "a.jpg"), caption("Zorblax at the café"))
    monkeypatch.undo()
    with Catalog.open(db) as cat:
        assert cat.schema_version() == schema.SCHEMA_VERSION  # 5 and later steps
        assert fts_ids(cat, "zorblax") == [fid]
        assert fts_ids(cat, "cafe") == [fid]  # accents folded
        row = cat.query("SELECT captured_at, meta_version, camera_model, has_gps FROM files WHERE id = ?", (fid,))
        assert row == [("2019-06-01T10:00:00", 0, None, None)]
        assert cat.integrity_check() == "ok"
    assert (tmp_path / f"{CATALOG_FILENAME}.bak-v4").exists()


def test_the_full_text_index_follows_replacements_and_deletions(tmp_path):
    photos = tmp_path / "photos"
    with Catalog.open(tmp_path / CATALOG_FILENAME) as cat:
        cat.add_root(photos)
        for name in ("a.jpg", "b.jpg"):
            cat.mark_pending(photos / name, 1, 1)
        a = captions.find_photo(cat, photos / "a.jpg")
        b = captions.find_photo(cat, photos / "b.jpg")
        captions.save(cat, a, caption("a red bicycle"))
        captions.save(cat, b, caption("a blue bicycle"))
        assert fts_ids(cat, "bicycle") == [a.file_id, b.file_id]
        captions.save(cat, a, caption("a green kite"))  # replaces a's caption for this model and prompt
        assert fts_ids(cat, "red") == [] and fts_ids(cat, "kite") == [a.file_id]
        cat.remove_root(photos)  # cascades to captions, and so to the index
        assert fts_ids(cat, "bicycle OR kite") == []
        assert cat.query("SELECT count(*) FROM captions_fts")[0][0] == 0
