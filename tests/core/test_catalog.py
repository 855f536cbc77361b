"""The catalog: schema, migrations, lossless paths, file states, embeddings, threads and crash safety."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vsearch_app.core.store import catalog as catalog_mod
from vsearch_app.core.store import schema
from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog, CatalogError, FileRecord, path_key
from vsearch_app.core.store.fsutil import atomic_write_bytes, file_fingerprint
from vsearch_app.core.store.schema import SCHEMA_VERSION
from vsearch_app.errors import InvalidArgumentError, VSearchError


@pytest.fixture
def cat(tmp_path):
    c = Catalog.open(tmp_path / "data" / CATALOG_FILENAME)
    yield c
    c.close()


@pytest.fixture
def root(tmp_path, cat):
    folder = tmp_path / "photos"
    folder.mkdir()
    cat.add_root(folder)
    return folder


def _vec(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


# --- schema ---------------------------------------------------------------------------------------------------------


def test_new_catalog_is_wal_with_foreign_keys_and_current_schema(cat):
    conn = sqlite3.connect(cat.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    assert cat._conn().execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert cat.schema_version() == SCHEMA_VERSION
    assert cat.integrity_check() == "ok"


def _make_v1_db(path: Path, root: Path) -> None:
    """A catalog as schema v1 wrote it, by hand (not through Catalog)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(schema._SCHEMA_V1)
    key = os.fsencode(str(root))
    conn.execute("INSERT INTO roots (path, display, added_at, online) VALUES (?, ?, 1.0, 1)", (key, str(root)))
    conn.execute(
        "INSERT INTO files (root_id, path, display, size, mtime_ns, fingerprint, state) VALUES (1, ?, 'a', 10, 20,"
        " 'fp', 'indexed')",
        (key + b"/a.jpg",),
    )
    conn.execute("INSERT INTO models VALUES ('m', 4)")
    conn.execute("INSERT INTO embeddings VALUES (1, 'm', 4, ?)", (np.arange(4, dtype="<f4").tobytes(),))
    conn.close()


def test_migrates_a_v1_catalog_after_a_backup(tmp_path):
    db = tmp_path / CATALOG_FILENAME
    photos = tmp_path / "photos"
    _make_v1_db(db, photos)
    with Catalog.open(db) as cat:
        assert cat.schema_version() == SCHEMA_VERSION
        rec = cat.get_file(photos / "a.jpg")
        assert rec is not None and rec.state == "indexed" and rec.caption == "" and rec.captured_at is None
        ids, vecs = cat.embeddings("m")
        assert ids.tolist() == [rec.id] and vecs.tolist() == [[0, 1, 2, 3]]
        # the v2 features work on the migrated db
        cat.record_embedding(photos / "b.jpg", "m", np.ones(4), size=1, mtime_ns=1, captured_at="2020-01-02T03:04:05")
        assert cat.get_file(photos / "b.jpg").captured_at == "2020-01-02T03:04:05"
        assert cat.integrity_check() == "ok"
    backup = tmp_path / f"{CATALOG_FILENAME}.bak-v1"
    assert backup.exists()
    conn = sqlite3.connect(backup)
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM files").fetchone()[0] == 1
    finally:
        conn.close()


def test_a_failing_migration_leaves_the_old_schema(tmp_path, monkeypatch):
    db = tmp_path / CATALOG_FILENAME
    _make_v1_db(db, tmp_path / "photos")

    def broken(conn):
        conn.execute("ALTER TABLE files ADD COLUMN half_done TEXT")
        raise RuntimeError("simulated bug in a migration")

    monkeypatch.setitem(schema.MIGRATIONS, 1, broken)
    with pytest.raises(RuntimeError):
        Catalog.open(db)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == 1
        columns = [r[1] for r in conn.execute("PRAGMA table_info(files)")]
        assert "half_done" not in columns
    finally:
        conn.close()


def test_refuses_a_catalog_from_a_newer_version(tmp_path):
    db = tmp_path / CATALOG_FILENAME
    Catalog.open(db).close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(CatalogError, match="newer VSearch"):
        Catalog.open(db)


def test_refuses_a_file_that_is_not_a_catalog(tmp_path):
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(VSearchError, match="cannot be read"):
        Catalog.open(junk)
    other = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(CatalogError, match="not a VSearch catalog"):
        Catalog.open(other)


# --- roots and paths ------------------------------------------------------------------------------------------------


def test_roots_add_is_idempotent_and_nested_roots_are_handled(tmp_path, cat):
    a = tmp_path / "a"
    inner = a / "inner"
    cat.add_root(inner)
    fid = cat.mark_pending(inner / "x.jpg", 1, 1)
    first = cat.add_root(a)
    assert cat.add_root(a) == first
    assert [r.path for r in cat.roots()] == [a]  # inner merged into a
    assert cat.get_file(inner / "x.jpg").root_id == first.id and cat.get_file(inner / "x.jpg").id == fid
    with pytest.raises(InvalidArgumentError, match="already watched"):
        cat.add_root(a / "other")
    assert cat.root_for(inner / "x.jpg") == first
    assert cat.root_for(tmp_path / "ab" / "x.jpg") is None  # a prefix of the name is not a parent folder


def test_remove_root_drops_rows_and_embeddings_but_not_user_files(tmp_path, cat, root):
    photo = root / "p.jpg"
    photo.write_bytes(b"user photo")
    other = tmp_path / "other"
    cat.add_root(other)
    keep = cat.record_embedding(other / "k.jpg", "m", _vec(0), size=1, mtime_ns=1)
    gone = cat.record_embedding(photo, "m", _vec(1), size=10, mtime_ns=1)
    assert cat.remove_root(root) == [gone]
    assert photo.read_bytes() == b"user photo"
    assert cat.get_file(photo) is None
    assert cat.embeddings("m")[0].tolist() == [keep]
    assert cat.remove_root(root) == []


def test_files_outside_a_root_are_refused(tmp_path, cat, root):
    with pytest.raises(InvalidArgumentError, match="not inside a watched folder"):
        cat.mark_pending(tmp_path / "elsewhere.jpg", 1, 1)


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="needs a file system that accepts any bytes")
def test_non_utf8_file_names_round_trip_losslessly(tmp_path, cat, root):
    raw = os.fsencode(root) + b"/caf\xe9-\xff.jpg"  # Latin-1 bytes: not valid UTF-8
    with open(raw, "wb") as fh:
        fh.write(b"x")
    (name,) = os.listdir(root)  # str with surrogate escapes, as the scanner will see it
    path = root / name
    fid = cat.record_embedding(path, "m", _vec(2), size=1, mtime_ns=5)
    rec = cat.get_file(path)
    assert rec.id == fid and os.fsencode(rec.path) == raw
    assert "\ufffd" in rec.display  # readable text for the UI
    assert cat.paths_for_ids([fid]) == [rec.path]
    assert os.path.exists(cat.paths_for_ids([fid])[0])
    assert cat.files_under(root)[0].path == rec.path
    assert cat.vector_ids_for_paths([path]) == {rec.path: fid}


def test_path_key_is_absolute_and_normalised(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert path_key("a/./b/../c.jpg") == os.fsencode(str(tmp_path / "a" / "c.jpg"))


# --- files ----------------------------------------------------------------------------------------------------------


def test_upsert_get_and_counts(cat, root):
    rec = FileRecord(root / "a.jpg", size=3, mtime_ns=4, fingerprint="f", width=10, height=20, caption="dog")
    fid = cat.upsert_file(rec)
    got = cat.get_file(root / "a.jpg")
    assert (got.id, got.size, got.mtime_ns, got.width, got.height, got.caption, got.state) == (
        fid, 3, 4, 10, 20, "dog", "pending",
    )  # fmt: skip
    assert cat.upsert_file(FileRecord(root / "a.jpg", size=5, mtime_ns=6, state="failed", fail_reason="x")) == fid
    assert cat.get_file(root / "a.jpg").size == 5
    assert cat.counts() == {"pending": 0, "indexed": 0, "failed": 1, "offline": 0}
    with pytest.raises(InvalidArgumentError):
        cat.upsert_file(FileRecord(root / "b.jpg", size=1, mtime_ns=1, state="weird"))


def test_record_embedding_and_failure(cat, root):
    p = root / "a.jpg"
    fid = cat.record_embedding(p, "m", _vec(3), size=1, mtime_ns=2, fingerprint="fp", width=4, height=3)
    rec = cat.get_file(p)
    assert rec.state == "indexed" and rec.width == 4 and rec.fingerprint == "fp"
    np.testing.assert_array_equal(cat.get_embedding(p, "m"), _vec(3))
    # the file changes and now cannot be decoded: failed, reason kept, stale vector gone
    assert cat.mark_pending(p, 2, 3) == fid and cat.get_file(p).state == "pending"
    assert cat.record_failure(p, "cannot identify image file", size=2, mtime_ns=3) == fid
    rec = cat.get_file(p)
    assert rec.state == "failed" and rec.fail_reason == "cannot identify image file"
    assert cat.get_embedding(p, "m") is None
    assert [f.path for f in cat.failed()] == [p]
    # a later successful embedding clears the failure
    cat.record_embedding(p, "m", _vec(4), size=2, mtime_ns=4)
    assert cat.get_file(p).fail_reason is None and cat.failed() == []


def test_models_keep_their_dimension_and_their_own_vectors(cat, root):
    p = root / "a.jpg"
    cat.record_embedding(p, "small", _vec(1, 4), size=1, mtime_ns=1)
    cat.record_embedding(p, "big", _vec(1, 16), size=1, mtime_ns=1)
    assert cat.model_dim("small") == 4 and cat.model_dim("big") == 16
    assert cat.embeddings("small")[1].shape == (1, 4) and cat.embeddings("big")[1].shape == (1, 16)
    with pytest.raises(InvalidArgumentError, match="dimension"):
        cat.record_embedding(p, "small", _vec(1, 8), size=1, mtime_ns=1)
    with pytest.raises(InvalidArgumentError, match="NaN"):
        cat.record_embedding(p, "small", np.full(4, np.nan), size=1, mtime_ns=1)
    q = root / "q.jpg"
    cat.record_embedding(q, "small", _vec(2, 4), size=1, mtime_ns=1)
    # each model sees its own work: q has no "big" vector; nothing is reset or lost by asking
    assert cat.pending("small") == [] and [r.path for r in cat.pending("big")] == [q]
    assert cat.counts("big") == {"indexed": 1, "pending": 1, "failed": 0, "offline": 0}
    assert cat.counts("small")["indexed"] == 2 and cat.get_file(q).state == "indexed"
    assert cat.models() == {"small": 2, "big": 1}


def test_a_changed_file_needs_a_new_vector_from_every_model(cat, root):
    p = root / "a.jpg"
    cat.record_embedding(p, "A", _vec(1), size=1, mtime_ns=1)
    cat.record_embedding(p, "B", _vec(2), size=1, mtime_ns=1)
    cat.mark_pending(p, 1, 1)  # same size and mtime: not a change
    cat.record_embedding(p, "B", _vec(2), size=1, mtime_ns=1)
    assert cat.pending("A") == [] and cat.pending("B") == []
    cat.mark_pending(p, 2, 2)  # the photo was edited
    assert [r.path for r in cat.pending("A")] == [p] and [r.path for r in cat.pending("B")] == [p]
    cat.record_embedding(p, "B", _vec(3), size=2, mtime_ns=2)  # model B catches up
    assert cat.pending("B") == []
    assert [r.path for r in cat.pending("A")] == [p]  # A's vector describes the old picture
    assert cat.counts("A") == {"indexed": 0, "pending": 1, "failed": 0, "offline": 0}
    # the indexer records the size/mtime it read: a change it saw makes the other models' vectors stale too
    cat.record_embedding(p, "A", _vec(4), size=3, mtime_ns=3)
    assert cat.pending("A") == [] and [r.path for r in cat.pending("B")] == [p]


def test_library_settings_are_remembered(cat, tmp_path):
    assert cat.get_setting("model") is None
    cat.set_setting("model", "google/siglip2-base-patch16-224")
    cat.set_setting("model", "/models/mine")
    assert cat.get_setting("model") == "/models/mine"
    cat.set_setting("model", None)
    assert cat.get_setting("model") is None


def test_rename_keeps_id_and_embedding_and_replaces_an_overwritten_target(cat, root):
    a, b, c = root / "a.jpg", root / "sub" / "b.jpg", root / "c.jpg"
    fa = cat.record_embedding(a, "m", _vec(1), size=1, mtime_ns=1, fingerprint="fa")
    fc = cat.record_embedding(c, "m", _vec(2), size=1, mtime_ns=1)
    res = cat.rename_file(a, b)
    assert res.file_id == fa and res.replaced_id is None
    assert cat.get_file(a) is None and cat.get_file(b).id == fa
    np.testing.assert_array_equal(cat.get_embedding(b, "m"), _vec(1))
    res = cat.rename_file(b, c)  # moved over an existing photo
    assert res == catalog_mod.RenameResult(fa, fc)
    assert cat.embeddings("m")[0].tolist() == [fa]
    assert cat.rename_file(root / "nope.jpg", a) is None


def test_rename_folder_moves_every_row_below_it(tmp_path, cat, root):
    ids = [cat.mark_pending(root / "trip" / n, 1, 1) for n in ("a.jpg", "deep/b.jpg")]
    untouched = cat.mark_pending(root / "trip2" / "c.jpg", 1, 1)  # shares a prefix, not a parent
    assert cat.rename_folder(root / "trip", root / "2024" / "trip") == 2
    assert [f.id for f in cat.files_under(root / "2024")] == ids
    assert cat.get_file(root / "2024" / "trip" / "deep" / "b.jpg").id == ids[1]
    assert cat.get_file(root / "trip2" / "c.jpg").id == untouched


def test_move_across_roots_by_fingerprint(tmp_path, cat, root):
    other = tmp_path / "other"
    cat.add_root(other)
    fid = cat.record_embedding(root / "a.jpg", "m", _vec(1), size=77, mtime_ns=1, fingerprint="abc")
    (match,) = cat.find_by_fingerprint("abc", 77)
    assert match.id == fid
    assert cat.find_by_fingerprint("abc", 78) == []
    cat.rename_file(match.path, other / "a.jpg")
    rec = cat.get_file(other / "a.jpg")
    assert rec.id == fid and rec.root_id == cat.root_for(other).id and rec.state == "indexed"


def test_offline_root_keeps_its_files_and_returns_them_without_reembedding(tmp_path, cat, root):
    indexed = cat.record_embedding(root / "a.jpg", "m", _vec(1), size=1, mtime_ns=1)
    cat.record_failure(root / "b.jpg", "broken", size=1, mtime_ns=1)
    cat.mark_pending(root / "c.jpg", 1, 1)
    seq = cat.embedding_seq()
    assert cat.set_offline(root) == 3
    assert cat.counts() == {"pending": 0, "indexed": 0, "failed": 0, "offline": 3}
    assert not cat.roots()[0].online
    assert cat.embeddings("m")[0].tolist() == [indexed]  # nothing deleted
    assert cat.set_online(root) == 3
    assert {f.path.name: f.state for f in cat.files_under(root)} == {"a.jpg": "indexed", "b.jpg": "failed",
                                                                      "c.jpg": "pending"}  # fmt: skip
    assert cat.roots()[0].online and cat.embedding_seq() == seq  # no embedding was touched


def test_delete_and_id_lookups(cat, root):
    ids = [cat.record_embedding(root / f"{i}.jpg", "m", _vec(i), size=1, mtime_ns=1) for i in range(3)]
    assert cat.delete_file(root / "1.jpg") == ids[1]
    assert cat.delete_file(root / "1.jpg") is None
    assert cat.paths_for_ids([ids[2], ids[1], ids[0]]) == [root / "2.jpg", None, root / "0.jpg"]
    assert sorted(cat.ids_under(root).tolist()) == [ids[0], ids[2]]
    assert cat.vector_ids_for_paths([root / "0.jpg", root / "1.jpg"]) == {root / "0.jpg": ids[0]}
    # ids are never reused, so a stale index label cannot point at another photo
    new = cat.mark_pending(root / "1.jpg", 1, 1)
    assert new > max(ids)


def test_set_caption(cat, root):
    cat.mark_pending(root / "a.jpg", 1, 1)
    cat.set_caption(root / "a.jpg", "a dog on a beach")
    assert cat.get_file(root / "a.jpg").caption == "a dog on a beach"
    with pytest.raises(InvalidArgumentError):
        cat.set_caption(root / "missing.jpg", "x")


# --- embeddings for the vector index -------------------------------------------------------------------------------


def test_iter_embeddings_streams_in_chunks_and_since_seq(cat, root):
    ids = [cat.record_embedding(root / f"{i}.jpg", "m", _vec(i), size=1, mtime_ns=1) for i in range(10)]
    chunks = list(cat.iter_embeddings("m", chunk_size=4))
    assert [len(c[0]) for c in chunks] == [4, 4, 2]
    all_ids = np.concatenate([c[0] for c in chunks])
    assert all_ids.dtype == np.int64 and all_ids.tolist() == ids
    assert chunks[0][1].dtype == np.float32 and chunks[0][1].shape == (4, 8)
    np.testing.assert_array_equal(chunks[2][1][1], _vec(9))
    seq = cat.embedding_seq()
    cat.record_embedding(root / "3.jpg", "m", _vec(33), size=2, mtime_ns=2)  # replaced vector
    changed = list(cat.iter_embeddings("m", since_seq=seq))
    assert changed[0][0].tolist() == [ids[3]]
    assert list(cat.iter_embeddings("unknown-model")) == []
    ids0, vecs0 = cat.embeddings("unknown-model")
    assert ids0.shape == (0,) and vecs0.shape == (0, 0)


def test_embedding_seq_grows_on_every_change_including_cascades(cat, root):
    seen = [cat.embedding_seq()]

    def step():
        seen.append(cat.embedding_seq())
        assert seen[-1] > seen[-2]

    cat.record_embedding(root / "a.jpg", "m", _vec(1), size=1, mtime_ns=1)
    step()
    cat.record_embedding(root / "a.jpg", "m", _vec(2), size=1, mtime_ns=1)
    step()
    cat.delete_file(root / "a.jpg")  # embedding removed by ON DELETE CASCADE
    step()
    cat.record_embedding(root / "b.jpg", "m", _vec(1), size=1, mtime_ns=1)
    cat.record_failure(root / "b.jpg", "x", size=1, mtime_ns=2)
    seen.append(cat.embedding_seq())
    cat.record_embedding(root / "c.jpg", "m", _vec(1), size=1, mtime_ns=1)
    before = cat.embedding_seq()
    cat.remove_root(root)
    assert cat.embedding_seq() > before


# --- transactions and threads ---------------------------------------------------------------------------------------


def test_a_transaction_commits_all_or_nothing(cat, root):
    with pytest.raises(RuntimeError):
        with cat.transaction():
            cat.record_embedding(root / "a.jpg", "m", _vec(1), size=1, mtime_ns=1)
            cat.record_embedding(root / "b.jpg", "m", _vec(2), size=1, mtime_ns=1)
            raise RuntimeError("crash in the middle of a batch")
    assert cat.counts()["indexed"] == 0 and cat.embeddings("m")[0].size == 0
    with cat.transaction():
        cat.record_embedding(root / "a.jpg", "m", _vec(1), size=1, mtime_ns=1)
        with cat.transaction():  # nested: joins the batch
            cat.record_embedding(root / "b.jpg", "m", _vec(2), size=1, mtime_ns=1)
    assert cat.counts()["indexed"] == 2


def test_readers_see_committed_batches_while_a_writer_thread_runs(cat, root):
    errors: list[BaseException] = []
    stop = threading.Event()
    batch = 5

    def writer():
        try:
            for b in range(20):
                with cat.transaction():
                    for i in range(batch):
                        cat.record_embedding(root / f"{b}-{i}.jpg", "m", _vec(i), size=1, mtime_ns=1)
        except BaseException as exc:  # noqa: BLE001 - report in the main thread
            errors.append(exc)
        finally:
            stop.set()

    def reader():
        try:
            while not stop.is_set():
                n = cat.counts()["indexed"]
                assert n % batch == 0, "a reader saw half a batch"
                ids, vecs = cat.embeddings("m")
                assert len(ids) % batch == 0 and len(vecs) == len(ids)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert cat.counts()["indexed"] == 100


def test_closed_catalog_refuses_use(tmp_path):
    cat = Catalog.open(tmp_path / CATALOG_FILENAME)
    cat.counts()
    cat.close()
    cat.close()
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
    with pytest.raises(CatalogError, match="closed"):
        cat.counts()


def test_a_full_disk_is_a_clear_error_and_loses_only_that_batch(cat, root):
    cat.record_embedding(root / "kept.jpg", "m", _vec(0, 256), size=1, mtime_ns=1)
    conn = cat._conn()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # the database may not grow: SQLITE_FULL
    with pytest.raises(CatalogError, match="full"):
        with cat.transaction():
            for i in range(200):
                cat.record_embedding(root / f"{i}.jpg", "m", _vec(i, 256), size=1, mtime_ns=1)
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert cat.counts()["indexed"] == 1 and cat.integrity_check() == "ok"
    cat.record_embedding(root / "after.jpg", "m", _vec(1, 256), size=1, mtime_ns=1)  # usable again
    assert cat.counts()["indexed"] == 2


def test_a_catalog_locked_by_another_process_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog_mod, "BUSY_TIMEOUT_MS", 100)
    cat = Catalog.open(tmp_path / CATALOG_FILENAME)
    cat.add_root(tmp_path / "photos")
    other = sqlite3.connect(cat.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(CatalogError, match="locked by another VSearch process"):
            cat.mark_pending(tmp_path / "photos" / "a.jpg", 1, 1)
        assert cat.counts()["pending"] == 0  # readers are not blocked by the writer (WAL)
        other.execute("ROLLBACK")
        cat.mark_pending(tmp_path / "photos" / "a.jpg", 1, 1)
    finally:
        other.close()
        cat.close()


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from vsearch_app.core.store.catalog import Catalog
    db, root = sys.argv[1], sys.argv[2]
    cat = Catalog.open(db)
    cat.add_root(root)
    vec = np.ones(256, dtype=np.float32)
    start = cat.counts()["indexed"]
    print("ready", flush=True)
    b = 0
    while True:
        with cat.transaction():
            for i in range(50):
                cat.record_embedding(f"{root}/{start}-{b}-{i}.jpg", "m", vec, size=1, mtime_ns=1)
        b += 1
    """
)


def test_catalog_survives_kill_9_of_a_writer_mid_batch(tmp_path):
    db = tmp_path / CATALOG_FILENAME
    root = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(db), str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read()
        time.sleep(float(rng.uniform(0.05, 0.4)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with Catalog.open(db) as cat:
            assert cat.integrity_check() == "ok"
            counts = cat.counts()
            assert counts["indexed"] % 50 == 0, "a half-written batch survived the crash"
            ids, vecs = cat.embeddings("m")
            assert len(ids) == counts["indexed"]


# --- fsutil ---------------------------------------------------------------------------------------------------------


def test_fingerprint_sees_content_and_size_but_not_name(tmp_path):
    big = bytes(np.random.default_rng(0).integers(0, 256, 1_000_000, dtype=np.uint8))
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(big)
    b.write_bytes(big)
    assert file_fingerprint(a) == file_fingerprint(b) == file_fingerprint(a, size=len(big))
    for pos in (10, len(big) // 2, len(big) - 10):  # start, middle and end samples
        changed = bytearray(big)
        changed[pos] ^= 1
        b.write_bytes(bytes(changed))
        assert file_fingerprint(b) != file_fingerprint(a)
    b.write_bytes(big + b"\0")
    assert file_fingerprint(b) != file_fingerprint(a)
    small = tmp_path / "s.bin"
    small.write_bytes(b"abc")
    small2 = tmp_path / "s2.bin"
    small2.write_bytes(b"abd")
    assert file_fingerprint(small) != file_fingerprint(small2)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "m.json"
    atomic_write_bytes(target, b"old")

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temp file left behind


def test_opening_does_not_wait_for_another_writer(tmp_path, monkeypatch):
    """`vsearch search` must open the catalog while `vsearch index --watch` holds the write lock."""
    db = tmp_path / CATALOG_FILENAME
    Catalog.open(db).close()
    monkeypatch.setattr(catalog_mod, "BUSY_TIMEOUT_MS", 100)
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        with Catalog.open(db) as cat:
            assert cat.counts()["indexed"] == 0
    finally:
        writer.execute("ROLLBACK")
        writer.close()
