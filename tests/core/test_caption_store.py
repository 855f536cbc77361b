"""core.store.captions and the catalog's captions table (schema v4): the migration from v3, cascades, stored
settings, and imports that do not need torch. No model is involved."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np

from vsearch_app.core.store import captions, schema
from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog
from vsearch_app.core.types import CaptionResult, CaptionSettings


def finished(text, prompt="caption en", model="m", settings=None):
    return CaptionResult(text, prompt, model, "stop_token", token_count=3, settings=settings)


def test_migrating_v3_to_v4_keeps_the_data_and_backs_up_first(tmp_path, monkeypatch):
    db = tmp_path / CATALOG_FILENAME
    photos = tmp_path / "photos"
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 3)  # this VSearch before captions had their table
    with Catalog.open(db) as old:
        assert old.schema_version() == 3
        old.add_root(photos)
        fid = old.record_embedding(photos / "a.jpg", "m", np.arange(4), size=5, mtime_ns=6, width=40, height=30)
        old.set_caption(photos / "a.jpg", "written by v3")
        old.set_setting("model", "m")
    monkeypatch.undo()
    with Catalog.open(db) as cat:
        assert cat.schema_version() == schema.SCHEMA_VERSION
        rec = cat.get_file(photos / "a.jpg")
        assert rec.id == fid and rec.state == "indexed" and rec.width == 40 and rec.caption == "written by v3"
        assert cat.embeddings("m")[1].tolist() == [[0, 1, 2, 3]] and cat.get_setting("model") == "m"
        assert cat.integrity_check() == "ok"
        ref = captions.find_photo(cat, photos / "a.jpg")
        assert captions.save(cat, ref, finished("a new caption")).stored_at is not None
        assert captions.load(cat, photos / "a.jpg").text == "a new caption"
        assert cat.get_file(photos / "a.jpg").caption == "a new caption"
    conn = sqlite3.connect(tmp_path / f"{CATALOG_FILENAME}.bak-v3")
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == 3
        assert conn.execute("SELECT caption FROM files").fetchall() == [("written by v3",)]
    finally:
        conn.close()


def test_captions_go_with_their_folder(tmp_path):
    photos = tmp_path / "photos"
    with Catalog.open(tmp_path / CATALOG_FILENAME) as cat:
        cat.add_root(photos)
        cat.mark_pending(photos / "a.jpg", 1, 1)
        captions.save(cat, captions.find_photo(cat, photos / "a.jpg"), finished("x"))
        assert cat.query("SELECT count(*) FROM captions")[0][0] == 1
        cat.remove_root(photos)
        assert cat.query("SELECT count(*) FROM captions")[0][0] == 0


def test_a_photo_removed_while_captioning_is_not_stored(tmp_path):
    photos = tmp_path / "photos"
    with Catalog.open(tmp_path / CATALOG_FILENAME) as cat:
        cat.add_root(photos)
        cat.mark_pending(photos / "a.jpg", 1, 1)
        ref = captions.find_photo(cat, photos / "a.jpg")
        cat.delete_file(photos / "a.jpg")
        assert captions.save(cat, ref, finished("x")).stored_at is None
        assert captions.find_photo(cat, photos / "a.jpg") is None


def test_settings_round_trip_and_unknown_fields_are_ignored(tmp_path):
    photos = tmp_path / "photos"
    settings = CaptionSettings(prompt="describe en", max_tokens=7, sample=True, temperature=1.1, top_p=0.5, seed=9)
    with Catalog.open(tmp_path / CATALOG_FILENAME) as cat:
        cat.add_root(photos)
        cat.mark_pending(photos / "a.jpg", 1, 1)
        ref = captions.find_photo(cat, photos / "a.jpg")
        captions.save(cat, ref, finished("y", prompt="describe en", settings=settings))
        assert captions.load(cat, photos / "a.jpg").settings == settings
        # A newer VSearch may store settings this one does not know.
        with cat.transaction() as conn:
            conn.execute("""UPDATE captions SET settings = '{"max_tokens": 3, "beam_width": 4}'""")
        assert captions.load(cat, photos / "a.jpg").settings == CaptionSettings(max_tokens=3)


def test_describing_prompts():
    assert captions.is_describing("caption en") and captions.is_describing("Describe es")
    assert captions.is_describing("cap fr")
    assert not captions.is_describing("question: what is this?") and not captions.is_describing("ocr")


def test_caption_modules_import_without_torch():
    code = (
        "import sys\n"
        "import vsearch_app.core.engine.caption_session, vsearch_app.core.store.captions, vsearch_app.core.types\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    repo = str(Path(__file__).resolve().parents[2])  # this checkout, not whatever vsearch_app is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=env, cwd=repo)
