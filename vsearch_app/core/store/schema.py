"""The catalog's tables, and how a catalog written by an older VSearch becomes the current one.

``prepare(conn, path, write_lock)`` runs when a catalog is opened: it creates the tables in a new file, refuses a
database that is not a catalog or comes from a newer VSearch (CatalogError), and migrates an older schema one step
at a time after copying the file to ``<name>.bak-v<old version>``. The tables are made as version 1 and then
migrated like any old catalog, so a new library and an updated one always end with the same schema.

Adding a schema version: write ``_migrate_<v>_to_<v+1>`` (SQL run through ``run_script``, never
``executescript``, which would commit the caller's transaction), append it to MIGRATIONS, raise SCHEMA_VERSION,
and add a test that migrates a catalog of the old version with data in it. A released step is never edited.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from vsearch_app.errors import CatalogError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 6

_SCHEMA_V1 = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE roots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path BLOB NOT NULL UNIQUE,
    display TEXT NOT NULL,
    added_at REAL NOT NULL,
    online INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    root_id INTEGER NOT NULL REFERENCES roots(id) ON DELETE CASCADE,
    path BLOB NOT NULL UNIQUE,
    display TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    fingerprint TEXT,
    state TEXT NOT NULL CHECK (state IN ('pending', 'indexed', 'failed', 'offline')),
    fail_reason TEXT
);
CREATE INDEX files_root ON files(root_id);
CREATE INDEX files_fingerprint ON files(fingerprint, size);
CREATE INDEX files_state ON files(state);
CREATE TABLE models (model_id TEXT PRIMARY KEY, dim INTEGER NOT NULL);
CREATE TABLE embeddings (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    model_id TEXT NOT NULL REFERENCES models(model_id),
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (file_id, model_id)
);
INSERT INTO schema_version (version) VALUES (1);
"""


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run SQL statements one by one (``executescript`` would COMMIT the caller's transaction first)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            conn.execute(buf)
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete SQL statement: {buf!r}")


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """v2: EXIF facts and captions on files; a change counter so the vector index can catch up incrementally."""
    run_script(
        conn,
        """
        ALTER TABLE files ADD COLUMN captured_at TEXT;
        ALTER TABLE files ADD COLUMN width INTEGER;
        ALTER TABLE files ADD COLUMN height INTEGER;
        ALTER TABLE files ADD COLUMN caption TEXT NOT NULL DEFAULT '';
        ALTER TABLE embeddings ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX embeddings_model_seq ON embeddings(model_id, seq);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta (key, value) VALUES ('embedding_seq', 1);
        INSERT INTO meta (key, value) VALUES ('log_floor', 0);
        UPDATE embeddings SET seq = 1;
        CREATE TABLE embedding_log (seq INTEGER NOT NULL, file_id INTEGER NOT NULL, model_id TEXT NOT NULL);
        CREATE INDEX embedding_log_model_seq ON embedding_log(model_id, seq);
        -- Deletions (also by ON DELETE CASCADE) bump the counter and are logged, so a saved vector index can drop
        -- exactly those labels when it catches up; inserts and replacements set their row's seq in Python.
        CREATE TRIGGER embeddings_deleted AFTER DELETE ON embeddings BEGIN
            UPDATE meta SET value = value + 1 WHERE key = 'embedding_seq';
            INSERT INTO embedding_log (seq, file_id, model_id)
                SELECT value, old.file_id, old.model_id FROM meta WHERE key = 'embedding_seq';
        END;
        """,
    )


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    """v3: which content an embedding describes, and the library's own settings (its remembered model).

    ``files.content_version`` grows whenever a file's content changes; each embedding records the version it was
    computed from. A model's vector is current only when the two agree, so after switching models and back, the
    photos that changed meanwhile are re-embedded and the others are not."""
    run_script(
        conn,
        """
        ALTER TABLE files ADD COLUMN content_version INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE embeddings ADD COLUMN content_version INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE library_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
    )


def _migrate_3_to_4(conn: sqlite3.Connection) -> None:
    """v4: captions per photo, caption model and prompt (core/store/captions.py reads and writes them).

    Keyed by file id, so a caption follows its photo through renames and moves and goes when the photo goes.
    ``content_version`` is the file's content version the caption describes (a caption of older content is stale).
    ``settings`` holds the generation settings as JSON. ``files.caption`` stays: it mirrors the latest finished
    caption ("caption ..."/"describe ..." prompts) for search hits."""
    run_script(
        conn,
        """
        CREATE TABLE captions (
            file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            prompt TEXT NOT NULL,
            text TEXT NOT NULL,
            token_count INTEGER NOT NULL,
            stop_reason TEXT NOT NULL,
            created_at REAL NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}',
            content_version INTEGER NOT NULL DEFAULT 0,
            prefill_s REAL NOT NULL DEFAULT 0,
            decode_tokens_per_s REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (file_id, model, prompt)
        );
        """,
    )


def _migrate_4_to_5(conn: sqlite3.Connection) -> None:
    """v5: full-text search over stored captions, and the photo facts that filters read.

    ``captions_fts`` is an FTS5 index over ``captions.text`` (external content: the text is stored once, in
    ``captions``); triggers keep it in step with every insert, update and delete, cascades included. The tokenizer
    folds case and accents, so "Cafe" finds "café".

    Files gain the capture time's source and UTC offset (``captured_at`` stays local time as EXIF writes it), the
    camera, the lens and whether the photo carries a GPS position. ``meta_version`` says which version of the
    metadata reader filled these columns: 0 means never read, so photos indexed before v5 are found and filled by a
    background backfill from the files themselves, without embedding anything."""
    run_script(
        conn,
        """
        CREATE VIRTUAL TABLE captions_fts USING fts5(
            text, content='captions', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER captions_fts_insert AFTER INSERT ON captions BEGIN
            INSERT INTO captions_fts (rowid, text) VALUES (new.rowid, new.text);
        END;
        CREATE TRIGGER captions_fts_delete AFTER DELETE ON captions BEGIN
            INSERT INTO captions_fts (captions_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
        END;
        CREATE TRIGGER captions_fts_update AFTER UPDATE OF text ON captions BEGIN
            INSERT INTO captions_fts (captions_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
            INSERT INTO captions_fts (rowid, text) VALUES (new.rowid, new.text);
        END;
        INSERT INTO captions_fts (captions_fts) VALUES ('rebuild');
        ALTER TABLE files ADD COLUMN captured_source TEXT;
        ALTER TABLE files ADD COLUMN captured_offset TEXT;
        ALTER TABLE files ADD COLUMN camera_make TEXT;
        ALTER TABLE files ADD COLUMN camera_model TEXT;
        ALTER TABLE files ADD COLUMN lens TEXT;
        ALTER TABLE files ADD COLUMN has_gps INTEGER;
        ALTER TABLE files ADD COLUMN meta_version INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX files_captured_at ON files(captured_at);
        CREATE INDEX files_meta_version ON files(meta_version);
        """,
    )


# The camera of a photo as one indexed text key (make, unit separator, model), so that the search filters can list
# the library's few distinct cameras with a handful of index seeks and select one camera's photos through the index
# (core/library/filters.py uses this exact expression: SQLite only uses an expression index for the same text).
CAMERA_KEY = "(coalesce(camera_make, '') || char(31) || coalesce(camera_model, ''))"


def _migrate_5_to_6(conn: sqlite3.Connection) -> None:
    """v6: an index on the camera (CAMERA_KEY). A camera filter over a million photos read the whole table twice
    (0.6 s, measured 2026-12-02); with the index it reads the few thousand matching rows."""
    conn.execute(f"CREATE INDEX files_camera ON files ({CAMERA_KEY}, state)")  # covers "this camera, searchable"


# MIGRATIONS[v] turns a version-v database into version v+1. Append; never edit a released step.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _migrate_1_to_2, 2: _migrate_2_to_3, 3: _migrate_3_to_4, 4: _migrate_4_to_5, 5: _migrate_5_to_6,
}


def _create_v1(conn: sqlite3.Connection) -> None:
    run_script(conn, _SCHEMA_V1)


def prepare(conn: sqlite3.Connection, path: Path, write_lock: threading.RLock) -> None:
    """Bring the database behind ``conn`` to SCHEMA_VERSION (see the module docstring). ``write_lock`` is the
    catalog's lock for writes from this process; other processes are kept out by SQLite's own lock."""
    try:  # fast path without the write lock, so opening never waits for a busy indexer in another process
        current = conn.execute("SELECT version FROM schema_version").fetchone()[0]
    except (sqlite3.OperationalError, TypeError):  # no table (new file) or no row: create under the lock
        current = None
    if current == SCHEMA_VERSION:
        return
    with write_lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            has_table = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone()
            if not has_table:
                others = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
                if others:
                    raise CatalogError(f"{path} is a SQLite database but not a VSearch catalog")
                _create_v1(conn)
                version = 1
                fresh = True
            else:
                version = conn.execute("SELECT version FROM schema_version").fetchone()[0]
                fresh = False
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if version > SCHEMA_VERSION:
            raise CatalogError(
                f"the catalog {path} was written by a newer VSearch (schema {version}, this version "
                f"understands up to {SCHEMA_VERSION}). Update VSearch, or use another data folder.",
                param="data_dir",
            )
        if version < SCHEMA_VERSION:
            if not fresh:
                _backup(conn, path, version)
            _migrate(conn, path, version)


def _backup(conn: sqlite3.Connection, path: Path, version: int) -> Path:
    target = path.with_name(f"{path.name}.bak-v{version}")
    log.info("backing up catalog schema v%d to %s before migrating", version, target)
    dest = sqlite3.connect(target)
    try:
        conn.backup(dest)
    finally:
        dest.close()
    return target


def _migrate(conn: sqlite3.Connection, path: Path, version: int) -> None:
    while version < SCHEMA_VERSION:
        # Each step runs in its own transaction (SQLite DDL is transactional): a crash leaves v or v+1. The
        # version is re-read under the write lock, as another process may have migrated in the meantime.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("SELECT version FROM schema_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                log.info("migrating catalog %s from schema %d to %d", path, version, version + 1)
                MIGRATIONS[version](conn)
                conn.execute("UPDATE schema_version SET version = ?", (version + 1,))
                version += 1
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
