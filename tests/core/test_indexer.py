"""Indexer: batches committed to the catalog, failures recorded, progress, pause/cancel, EXIF facts."""

from __future__ import annotations

import logging
import threading
import warnings

import numpy as np
import pytest
from PIL import Image

from tests.core.library_fakes import FakeEmbedder, content_vector
from vsearch_app.core.library.indexer import Indexer, read_photo_facts
from vsearch_app.core.library.photo_metadata import exif_datetime
from vsearch_app.core.store.catalog import Catalog


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog.open(tmp_path / "data" / "catalog.sqlite3")
    yield cat
    cat.close()


def _pending(catalog, root, n, *, bad=()):
    root.mkdir(parents=True, exist_ok=True)
    catalog.add_root(root)
    for i in range(n):
        path = root / f"p{i:03d}.jpg"
        path.write_bytes((b"BAD" if i in bad else b"IMG") + bytes([i]) * 50)
        st = path.stat()
        catalog.mark_pending(path, st.st_size, st.st_mtime_ns)
    return catalog.pending()


def test_embeds_pending_files_in_committed_batches(tmp_path, catalog):
    records = _pending(catalog, tmp_path / "root", 10, bad={3})
    embedder = FakeEmbedder()
    batches = []
    indexer = Indexer(catalog, embedder, on_vectors=lambda ids, v: batches.append((ids, v)), commit_every=4,
                      batch_size=2)
    report = indexer.run(records)
    assert (report.embedded, report.failed, report.cancelled) == (9, 1, False)
    assert [len(ids) for ids, _ in batches] == [3, 4, 2]  # one callback per committed batch; p003 failed
    counts = catalog.counts()
    assert counts["indexed"] == 9 and counts["failed"] == 1 and counts["pending"] == 0
    (failed,) = catalog.failed()
    assert failed.path.name == "p003.jpg" and "not an image" in failed.fail_reason
    # The stored vector is the embedder's, the fingerprint is recorded (moves need it).
    row = catalog.get_file(tmp_path / "root" / "p000.jpg")
    np.testing.assert_allclose(catalog.get_embedding(row.path, "fake-model"),
                               content_vector(row.path.read_bytes()), rtol=1e-6)
    assert row.fingerprint


def test_progress_reports_done_total_rate_and_eta(tmp_path, catalog):
    records = _pending(catalog, tmp_path / "root", 5)
    seen = []
    Indexer(catalog, FakeEmbedder(), commit_every=2).run(records, progress=seen.append)
    assert [(p.done, p.total) for p in seen] == [(2, 5), (4, 5), (5, 5)]
    assert all(p.rate > 0 for p in seen)
    assert seen[-1].eta_s == 0


def test_cancel_keeps_committed_batches_and_leaves_the_rest_pending(tmp_path, catalog):
    records = _pending(catalog, tmp_path / "root", 9)
    cancel = threading.Event()
    embedder = FakeEmbedder()
    calls = []

    def stop_after_first(paths):
        calls.append(paths)
        if len(calls) == 2:
            cancel.set()

    embedder.before_batch = stop_after_first
    report = Indexer(catalog, embedder, commit_every=3, batch_size=3).run(records, cancel=cancel)
    assert report.cancelled and report.embedded == 3
    assert catalog.counts()["indexed"] == 3 and catalog.counts()["pending"] == 6


def test_pause_blocks_between_batches_until_resumed(tmp_path, catalog):
    records = _pending(catalog, tmp_path / "root", 4)
    pause = threading.Event()
    embedder = FakeEmbedder()
    paused_at = []

    def pause_after_first(paths):
        if not paused_at:
            pause.set()
            paused_at.append(len(paths))

    embedder.before_batch = pause_after_first
    done = threading.Event()
    thread = threading.Thread(target=lambda: (Indexer(catalog, embedder, commit_every=2).run(records, pause=pause),
                                              done.set()))
    thread.start()
    try:
        assert not done.wait(0.5)  # paused after the first batch
        assert len(embedder.embedded_paths) == 2
        pause.clear()
        assert done.wait(10)
    finally:
        pause.clear()
        thread.join(10)
    assert len(embedder.embedded_paths) == 4


def test_file_that_changes_while_embedding_stays_pending(tmp_path, catalog):
    records = _pending(catalog, tmp_path / "root", 2)
    embedder = FakeEmbedder()
    target = records[0].path

    def grow(paths):
        with open(target, "ab") as handle:
            handle.write(b"more bytes arriving")

    embedder.before_batch = grow
    report = Indexer(catalog, embedder).run(records)
    assert report.embedded == 1 and report.skipped == 1
    assert catalog.get_file(target).state == "pending"


def test_vanished_file_is_left_pending_not_failed(tmp_path, catalog):
    records = _pending(catalog, tmp_path / "root", 2)
    records[1].path.unlink()
    report = Indexer(catalog, FakeEmbedder()).run(records)
    assert report.embedded == 1 and report.failed == 0
    assert catalog.get_file(records[1].path).state == "pending"


def test_model_is_loaded_only_when_there_is_work(tmp_path, catalog):
    loads = []

    def factory():
        loads.append(1)
        return FakeEmbedder()

    indexer = Indexer(catalog, factory)
    assert indexer.run([]).embedded == 0
    assert loads == []
    indexer.run(_pending(catalog, tmp_path / "root", 1))
    assert loads == [1]


def test_photo_facts_read_exif_capture_time_and_upright_size(tmp_path):
    image = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: shown 20 x 40
    exif.get_ifd(0x8769)[36867] = "2021:05:03 14:22:01"
    path = tmp_path / "exif.jpg"
    image.save(path, exif=exif)
    facts = read_photo_facts(str(path))
    assert (facts.captured_at, facts.width, facts.height) == ("2021-05-03T14:22:01", 20, 40)
    assert facts.fingerprint
    plain = tmp_path / "plain.png"
    Image.new("RGB", (7, 5)).save(plain)
    assert read_photo_facts(str(plain)).captured_at is None
    assert read_photo_facts(str(plain)).width == 7


def test_photo_facts_send_pillow_warnings_to_the_debug_log(tmp_path, monkeypatch, caplog):
    path = tmp_path / "big.png"
    Image.new("RGB", (8, 8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # 64 pixels: Pillow warns (it refuses only above 2x)
    caplog.set_level(logging.DEBUG, logger="vsearch_app.preprocessing.decoder_messages")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert read_photo_facts(str(path)).width == 8
    assert any(str(path) in r.getMessage() and "DecompressionBombWarning" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("raw", "expected"), [
    ("2021:05:03 14:22:01", "2021-05-03T14:22:01"),
    (b"2021:05:03 14:22:01\x00", "2021-05-03T14:22:01"),
    ("0000:00:00 00:00:00", None),
    ("    :  :     :  :  ", None),
    ("garbage", None),
    (None, None),
])
def test_exif_datetime_parsing(raw, expected):
    assert exif_datetime(raw) == expected


def test_exif_facts_are_stored_in_the_catalog(tmp_path, catalog):
    root = tmp_path / "root"
    root.mkdir()
    catalog.add_root(root)
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = "2019:12:24 18:00:00"
    path = root / "x.jpg"
    Image.new("RGB", (30, 10), "blue").save(path, exif=exif)
    st = path.stat()
    catalog.mark_pending(path, st.st_size, st.st_mtime_ns)
    Indexer(catalog, FakeEmbedder()).run(catalog.pending())
    row = catalog.get_file(path)
    assert (row.captured_at, row.width, row.height, row.state) == ("2019-12-24T18:00:00", 30, 10, "indexed")


def test_an_invalid_vector_fails_that_file_only(tmp_path, catalog):
    records = _pending(catalog, tmp_path / "root", 3)
    embedder = FakeEmbedder()
    original = embedder.embed_images

    def poisoned(sources, **kwargs):
        result = original(sources, **kwargs)
        result.vectors[0] = np.nan
        return result

    embedder.embed_images = poisoned
    report = Indexer(catalog, embedder).run(records)
    assert (report.embedded, report.failed) == (2, 1)
    assert "invalid vector" in catalog.failed()[0].fail_reason
