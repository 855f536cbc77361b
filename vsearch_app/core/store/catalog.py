"""The catalog: VSearch's source of truth (SQLite in WAL mode, ``<data dir>/catalog.sqlite3``).

It stores the watched roots, one row per photo (path, size, mtime, fingerprint, state, EXIF facts, caption) and the
embedding of each photo per model. The hnswlib index (core.store.vector_index) is only a cache rebuilt from here.

API summary (paths are ``str | os.PathLike``; they are made absolute with ``os.path.abspath`` and stored losslessly
as ``os.fsencode`` bytes, so names that are not valid UTF-8 survive; records give them back as ``Path``):

    cat = Catalog.open(data_dir / CATALOG_FILENAME)      # creates, migrates (backup first) or refuses a newer db
    cat.close()                                           # also usable as ``with Catalog.open(p) as cat:``

    with cat.transaction():                               # one atomic batch; calls inside join it
        ...

    # roots
    cat.add_root(path) -> RootRecord                      # idempotent; a root inside another root is refused,
                                                          # roots inside the new one are absorbed into it
    cat.remove_root(path) -> list[int]                    # deletes its rows + embeddings (never user files);
                                                          # returns the removed file ids (drop them from the index)
    cat.roots() -> list[RootRecord]                       # .id .path .added_at .online
    cat.root_for(path) -> RootRecord | None               # the root that contains path
    cat.set_offline(root) -> int                          # root unreachable: its files -> 'offline', nothing deleted
    cat.set_online(root) -> int                           # back: files with an embedding -> 'indexed', failed ->
                                                          # 'failed', others -> 'pending'; the caller's scan then
                                                          # marks files whose size/mtime changed as pending

    # files (FileRecord: id root_id path display size mtime_ns fingerprint state fail_reason captured_at
    #        width height caption)
    cat.files_under(root_or_folder) -> list[FileRecord]   # every row at or below a folder
    cat.get_file(path) -> FileRecord | None
    cat.get_file_by_id(file_id) -> FileRecord | None
    cat.files_by_ids(ids) -> dict[int, FileRecord]        # the rows that exist, batched (a page of search hits)
    cat.ids_in_states(states) -> np.ndarray int64         # sorted ids of files in those states
    cat.upsert_file(FileRecord) -> int                    # insert or update by path (id is kept on update)
    cat.mark_pending(path, size, mtime_ns, fingerprint=None) -> int
    cat.record_embedding(path, model_id, vector, *, size, mtime_ns, fingerprint=None, captured_at=None,
                         width=None, height=None) -> int  # upsert + embedding, state 'indexed'
    cat.record_failure(path, reason, *, size, mtime_ns, fingerprint=None) -> int
                                                          # state 'failed'; drops stale embeddings of that file
    cat.rename_file(old, new) -> RenameResult | None      # keeps id and embedding; .file_id .replaced_id
    cat.rename_folder(old_dir, new_dir) -> int            # every row below old_dir moves (ids kept)
    cat.find_by_fingerprint(fingerprint, size) -> list[FileRecord]   # cross-folder moves
    cat.delete_file(path) -> int | None                   # removed id (drop it from the index)
    cat.set_caption(path, caption) -> None
    cat.record_metadata(file_id, PhotoMetadata, version)  # EXIF facts (schema v5); meta_version = version
    cat.files_without_metadata(version, limit) -> list[FileRecord]   # what the metadata backfill reads next
    cat.count_without_metadata(version) -> int
    cat.counts(model_id=None) -> dict[str, int]           # all four states, zeros included; per model when given
    cat.failed() -> list[FileRecord]
    cat.pending(model_id=None) -> list[FileRecord]        # with a model: also files without its current vector
    cat.models() -> dict[str, int]                        # model id -> current vectors of indexed files

    # captions (table ``captions``, schema v4): read and written by core/store/captions.py through
    # ``transaction()`` and ``query(sql, params)`` (read-only rows, no write lock)

    # the library's settings (its remembered search model)
    cat.get_setting(key) -> str | None   cat.set_setting(key, value | None)

    # embeddings (labels in the vector index = file ids)
    cat.register_model(model_id, dim)                     # also done by record_embedding; a dim change is refused
    cat.model_dim(model_id) -> int | None
    cat.iter_embeddings(model_id, chunk_size=8192, since_seq=0) -> Iterator[(ids int64 [n], vectors float32 [n, D])]
    cat.embeddings(model_id) -> (ids, vectors)            # everything at once (small libraries, tests)
    cat.embedding_ids(model_id) -> np.ndarray int64
    cat.get_embedding(path, model_id) -> np.ndarray | None
    cat.embedding_seq() -> int                            # grows on every embedding insert/replace/delete; the
                                                          # vector index keeps it in its manifest to catch up
    cat.deleted_embedding_ids(model_id, since_seq) -> np.ndarray | None   # for that catch-up (None: log pruned)
    cat.embeddings_of(ids, model_id) -> (ids, vectors)    # some files' vectors (caption matches, good-match sample)
    cat.vector_ids_for_paths(paths) -> dict[Path, int]
    cat.paths_for_ids(ids) -> list[Path | None]           # same order; None for ids no longer in the catalog
    cat.ids_under(folder) -> np.ndarray int64             # for a folder filter in search
    cat.embeddings_under(folder, model_id) -> (ids, vectors)   # an exact search in one folder reads these

    # maintenance
    cat.integrity_check() -> str ('ok')   cat.schema_version() -> int   cat.prune_embedding_log(keep) (done on open)

States: core.types.FileState (PENDING, INDEXED, FAILED, OFFLINE; a StrEnum, stored as its value). Errors:
CatalogError (errors.py) for a database from a newer VSearch, a file that is not a catalog or cannot be opened, a full
disk, a lock held too long by another process; InvalidArgumentError for a path outside every watched root, an
unknown state, or a vector whose dimension differs from its model's.

Threading: one writer and many readers, in one process or several. Each thread gets its own connection (WAL lets
readers run while a writer commits); writes from threads of this process are serialised by a lock, and other
processes wait up to ``busy_timeout`` for SQLite's write lock. File ids use AUTOINCREMENT, so an id is never reused:
a stale index label can never point at a different photo.

Durability: WAL with ``synchronous=NORMAL``: a committed transaction survives a process crash (kill -9); after a power
cut the last transactions may roll back, but the database is never corrupt.

The tables and their migrations are core/store/schema.py. (Over 600 lines: this class is the only code that writes
SQL against the files, roots and embeddings tables, so that their invariants, such as content versions, the change
counter and the deletion log, are kept in one place; a third of the file is this summary and the path encoding.)
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vsearch_app.core.store import fault_points, schema
from vsearch_app.core.types import FileState
from vsearch_app.errors import CatalogDamagedError, CatalogDiskFullError, CatalogError, InvalidArgumentError

log = logging.getLogger(__name__)

IN_CHUNK = 500  # ids per IN (...) list in query_in: under SQLite's bound-parameter limit (999 in old builds)
CATALOG_FILENAME = "catalog.sqlite3"
BUSY_TIMEOUT_MS = 10_000
CHECK_MARK_SUFFIX = ".check"  # <catalog>.check: damage was seen while in use; the next open checks the whole file
FULL_BELOW_BYTES = 1 << 20  # free space below which an open that fails is put down to a full disk
LOG_KEEP = 200_000  # deletion-log entries kept for incremental index catch-up (older -> full id comparison)

PathLike = str | os.PathLike[str]
_STATE_VALUES = tuple(state.value for state in FileState)  # plain str: the keys of counts()


@dataclass(frozen=True)
class RootRecord:
    id: int
    path: Path
    added_at: float  # seconds since the epoch
    online: bool


@dataclass(frozen=True)
class FileRecord:
    """One photo. ``id``/``root_id`` are filled in by the catalog (leave them None when creating one)."""

    path: Path
    size: int
    mtime_ns: int
    fingerprint: str | None = None
    state: FileState = FileState.PENDING
    fail_reason: str | None = None
    captured_at: str | None = None  # EXIF DateTimeOriginal as ISO 8601 text ("2021-05-03T14:22:01")
    width: int | None = None
    height: int | None = None
    caption: str = ""
    id: int | None = None
    root_id: int | None = None
    # Photo metadata (schema v5, core/library/photo_metadata.py); meta_version 0: not read yet
    captured_source: str | None = None  # "exif" or "mtime"
    captured_offset: str | None = None  # "+02:00"
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    has_gps: bool = False
    meta_version: int = 0

    @property
    def display(self) -> str:
        return display_text(self.path)


@dataclass(frozen=True)
class RenameResult:
    file_id: int
    replaced_id: int | None  # a row that already existed at the new path and was removed (drop it from the index)


# --- path encoding --------------------------------------------------------------------------------------------------


def path_key(path: PathLike | bytes) -> bytes:
    """The lossless key stored in the db: absolute, normalised, ``os.fsencode`` bytes (no symlink resolution)."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return os.fsencode(os.path.abspath(os.fspath(path)))


def _path_from_key(key: bytes) -> Path:
    return Path(os.fsdecode(key))


def display_text(path: PathLike | bytes) -> str:
    """Readable text for a path; undecodable bytes become U+FFFD (display only, never used to find the file)."""
    raw = path if isinstance(path, bytes) else os.fsencode(os.fspath(path))
    return raw.decode("utf-8", errors="replace")


def _subtree_bounds(folder_key: bytes) -> tuple[bytes, bytes]:
    """[lo, hi) such that lo <= key < hi exactly for keys strictly below ``folder_key`` (memcmp order of BLOBs)."""
    sep = os.fsencode(os.sep)
    prefix = folder_key if folder_key.endswith(sep) else folder_key + sep
    return prefix, prefix[:-1] + bytes([prefix[-1] + 1])


subtree_bounds = _subtree_bounds  # for the SQL of search filters (core/library/filters.py)


def _is_within(key: bytes, folder_key: bytes) -> bool:
    lo, hi = _subtree_bounds(folder_key)
    return key == folder_key or lo <= key < hi


# --- the catalog ----------------------------------------------------------------------------------------------------

_FILE_COLUMNS = (
    "id, root_id, path, size, mtime_ns, fingerprint, state, fail_reason, captured_at, width, height, caption, "
    "captured_source, captured_offset, camera_make, camera_model, lens, has_gps, meta_version"
)
# SQL: the file row ``files`` has a vector of model ``?`` computed from its current content.
_CURRENT_VECTOR = (
    "EXISTS (SELECT 1 FROM embeddings e WHERE e.file_id = files.id AND e.model_id = ? "
    "AND e.content_version = files.content_version)"
)


def _friendly(exc: sqlite3.OperationalError, path: Path) -> Exception:
    """Turn the SQLite errors a user can fix into a CatalogError that says how; others stay as they are."""
    text = str(exc).lower()
    if "full" in text:
        return CatalogDiskFullError(f"the disk holding the catalog {path} is full; nothing was lost: free some "
                                    "space and run again")
    if "locked" in text or "busy" in text:
        return CatalogError(
            f"the catalog {path} stayed locked by another VSearch process for {BUSY_TIMEOUT_MS // 1000} s; "
            "wait for it to finish or stop it, then try again"
        )
    if "readonly" in text or "read-only" in text:
        return CatalogError(f"the catalog {path} is read-only; check the permissions of the data directory")
    return exc


def _disk_is_full(folder: Path) -> bool:
    """Less free space than SQLite needs to open a WAL database (its -shm file alone takes 32 KiB)."""
    try:
        return shutil.disk_usage(folder).free < FULL_BELOW_BYTES
    except OSError:
        return False


def is_damage(exc: sqlite3.DatabaseError) -> bool:
    """True when SQLite says the file itself is damaged (not locked, not unreadable for permissions)."""
    name = getattr(exc, "sqlite_errorname", "")
    text = str(exc).lower()
    return name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or "malformed" in text or "not a database" in text


def _file_from_row(row: tuple) -> FileRecord:
    fid, root_id, key, size, mtime_ns, fp, state, reason, captured, width, height, caption = row[:12]
    source, offset, make, model, lens, has_gps, meta_version = row[12:]
    return FileRecord(
        path=_path_from_key(key),
        size=size,
        mtime_ns=mtime_ns,
        fingerprint=fp,
        state=FileState(state),
        fail_reason=reason,
        captured_at=captured,
        width=width,
        height=height,
        caption=caption or "",
        id=fid,
        root_id=root_id,
        captured_source=source,
        captured_offset=offset,
        camera_make=make,
        camera_model=model,
        lens=lens,
        has_gps=bool(has_gps),
        meta_version=meta_version or 0,
    )


class Catalog:
    """See the module docstring for the API and the threading rules."""

    def __init__(self, path: Path, read_only: bool = False) -> None:  # use Catalog.open()
        self.path = path
        self.read_only = read_only
        self._local = threading.local()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._closed = False

    # -- lifecycle --

    @classmethod
    def open(cls, path: PathLike, *, read_only: bool = False) -> Catalog:
        """Open (creating if needed) the catalog at ``path``; migrate an older schema after a backup copy.

        ``read_only``: for a data folder VSearch may not write (a read-only disk or mount): the file is opened
        immutable (SQLite then needs no -wal/-shm files, which it could not create there), nothing is migrated,
        and every write raises CatalogError.

        Raises CatalogError for a database made by a newer VSearch or a file that is not a usable catalog,
        CatalogDamagedError (a CatalogError) when SQLite finds the file damaged
        (core/store/catalog_recovery.py opens libraries and handles that).
        """
        path = Path(path)
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise CatalogError(f"there is no catalog at {path}, and the data folder is read-only", param="data_dir")
        cat = cls(path, read_only)
        try:
            cat._prepare()
        except sqlite3.DatabaseError as exc:
            cat.close()
            if isinstance(exc, sqlite3.OperationalError) and not isinstance(_friendly(exc, path), sqlite3.Error):
                raise _friendly(exc, path) from exc
            if not read_only and _disk_is_full(path.parent):  # SQLite says "disk I/O error" when -shm cannot grow
                raise _friendly(sqlite3.OperationalError("database or disk is full"), path) from exc
            error = CatalogDamagedError if is_damage(exc) else CatalogError
            raise error(
                f"the catalog {path} cannot be read ({exc}). Check that the data directory is writable; if the "
                f"file is damaged, move it aside to start a new one (your photos are not affected) or restore a "
                f"backup ({path.name}.bak-v*)."
            ) from exc
        except BaseException:
            cat.close()
            raise
        if not read_only:
            cat.prune_embedding_log()
        return cat

    def close(self) -> None:
        """Close every connection this catalog opened (from any thread). Idempotent."""
        with self._conns_lock:
            conns, self._all_conns = self._all_conns, []
            self._closed = True
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing must not hide the real error
                log.debug("closing a catalog connection failed", exc_info=True)

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise CatalogError("the catalog is closed")
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        # check_same_thread=False only so that close() may close connections of other threads; each connection
        # is otherwise used by the thread that created it.
        if self.read_only:
            uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        else:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        self._local.conn = conn
        self._local.depth = 0
        with self._conns_lock:
            self._all_conns.append(conn)
        return conn

    def _prepare(self) -> None:
        conn = self._conn()
        if self.read_only:
            schema.check_readable(conn, self.path)
            return
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("catalog %s: journal mode is %s, not WAL (file system without shared memory?)", self.path, mode)
        schema.prepare(conn, self.path, self._write_lock)

    # -- transactions --

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write batch: everything inside commits together or not at all. Nested calls join."""
        conn = self._conn()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise _friendly(exc, self.path) from exc
            self._local.depth = 1
            try:
                yield conn
                fault_points.reached("catalog.mid_commit", disk_full=schema.sqlite_disk_full)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:  # SQLite may already have rolled back (e.g. on a full disk)
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError) and is_damage(exc):
                    raise self._damaged(exc) from exc
                if isinstance(exc, sqlite3.OperationalError):
                    raise _friendly(exc, self.path) from exc
                raise
            finally:
                self._local.depth = 0

    def _read(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._reading():
            return self._conn().execute(sql, tuple(params)).fetchall()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Reads outside a transaction: a damaged page becomes CatalogDamagedError (and a mark for the next open)."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if is_damage(exc):
                raise self._damaged(exc) from exc
            raise

    def _damaged(self, exc: sqlite3.DatabaseError) -> CatalogDamagedError:
        """SQLite met a damaged page while in use: leave a mark so that the next open checks the whole file and
        restores it (core/store/catalog_recovery.py), and say so."""
        try:
            self.path.with_name(self.path.name + CHECK_MARK_SUFFIX).touch()
        except OSError as mark_error:
            log.warning("could not mark the catalog %s for a check: %s", self.path, mark_error)
        return CatalogDamagedError(f"the catalog {self.path} is damaged ({exc}); run VSearch again: it checks the "
                                   "catalog and restores it from its backup")

    def query(self, sql: str, params: Iterable = ()) -> list[tuple]:
        """Rows of a read-only statement on this thread's connection (no write lock), for the stores beside the
        catalog (core/store/captions.py); writes go through ``transaction()``."""
        return self._read(sql, params)

    def query_in(self, sql: str, values: Iterable, params: Iterable = ()) -> list[tuple]:
        """Rows of ``sql`` with its ``{marks}`` replaced by an IN list of ``values``, read in chunks of IN_CHUNK so a
        long list stays under SQLite's bound-parameter limit; ``params`` are bound before each chunk's values."""
        items, before = list(values), list(params)
        rows: list[tuple] = []
        for start in range(0, len(items), IN_CHUNK):
            part = items[start:start + IN_CHUNK]
            rows += self._read(sql.format(marks=",".join("?" * len(part))), [*before, *part])
        return rows

    # -- roots --

    def add_root(self, path: PathLike) -> RootRecord:
        """Watch a folder. Idempotent. A folder inside a watched root is refused (it is already covered); roots
        inside the new folder are merged into it (their files keep ids and embeddings)."""
        key = path_key(path)
        with self.transaction() as conn:
            existing = conn.execute("SELECT id FROM roots WHERE path = ?", (key,)).fetchone()
            if existing:
                return self._root_by_id(existing[0])
            for (rkey,) in conn.execute("SELECT path FROM roots").fetchall():
                if _is_within(key, rkey):
                    raise InvalidArgumentError(
                        f"{display_text(key)} is already watched as part of {display_text(rkey)}"
                    )
            cur = conn.execute(
                "INSERT INTO roots (path, display, added_at, online) VALUES (?, ?, ?, 1)",
                (key, display_text(key), time.time()),
            )
            new_id = cur.lastrowid
            lo, hi = _subtree_bounds(key)
            inner = conn.execute("SELECT id, path FROM roots WHERE path >= ? AND path < ?", (lo, hi)).fetchall()
            for rid, rkey in inner:
                log.info("merging watched folder %s into %s", display_text(rkey), display_text(key))
                conn.execute("UPDATE files SET root_id = ? WHERE root_id = ?", (new_id, rid))
                conn.execute("DELETE FROM roots WHERE id = ?", (rid,))
            return self._root_by_id(new_id)

    def remove_root(self, path: PathLike) -> list[int]:
        """Stop watching a folder: delete its file rows and embeddings (the user's files are not touched).

        Returns the removed file ids so the caller can drop them from the vector index. Unknown root -> [].
        """
        key = path_key(path)
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM roots WHERE path = ?", (key,)).fetchone()
            if not row:
                return []
            ids = [r[0] for r in conn.execute("SELECT id FROM files WHERE root_id = ?", (row[0],))]
            conn.execute("DELETE FROM files WHERE root_id = ?", (row[0],))
            conn.execute("DELETE FROM roots WHERE id = ?", (row[0],))
            return ids

    def roots(self) -> list[RootRecord]:
        rows = self._read("SELECT id, path, added_at, online FROM roots ORDER BY path")
        return [RootRecord(r[0], _path_from_key(r[1]), r[2], bool(r[3])) for r in rows]

    def files_per_root(self) -> dict[Path, int]:
        """How many files each watched root holds (every state; a root with none maps to 0), in one query."""
        rows = self._read(
            "SELECT r.path, count(f.id) FROM roots r LEFT JOIN files f ON f.root_id = r.id GROUP BY r.id"
        )
        return {_path_from_key(key): n for key, n in rows}

    def root_for(self, path: PathLike) -> RootRecord | None:
        """The watched root that contains ``path`` (or is ``path``), if any."""
        rid = self._root_id_for(path_key(path))
        return self._root_by_id(rid) if rid is not None else None

    def _root_by_id(self, rid: int) -> RootRecord:
        r = self._read("SELECT id, path, added_at, online FROM roots WHERE id = ?", (rid,))[0]
        return RootRecord(r[0], _path_from_key(r[1]), r[2], bool(r[3]))

    def _root_id_for(self, key: bytes) -> int | None:
        # Roots never nest (add_root merges), so at most one matches; a handful of roots -> a scan is fine.
        for rid, rkey in self._read("SELECT id, path FROM roots"):
            if _is_within(key, rkey):
                return rid
        return None

    def _require_root_id(self, key: bytes) -> int:
        rid = self._root_id_for(key)
        if rid is None:
            raise InvalidArgumentError(f"{display_text(key)} is not inside a watched folder; add the folder first")
        return rid

    def set_offline(self, root: PathLike) -> int:
        """The root is missing or unreadable: mark its files 'offline' (never delete them). Returns rows changed."""
        key = path_key(root)
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM roots WHERE path = ?", (key,)).fetchone()
            if not row:
                raise InvalidArgumentError(f"{display_text(key)} is not a watched folder")
            conn.execute("UPDATE roots SET online = 0 WHERE id = ?", (row[0],))
            cur = conn.execute("UPDATE files SET state = 'offline' WHERE root_id = ? AND state != 'offline'", (row[0],))
            return cur.rowcount

    def set_online(self, root: PathLike) -> int:
        """The root is back: offline files with an embedding become 'indexed' again (no re-embedding), files
        with a recorded failure 'failed', the rest 'pending'. Files that changed while away are the caller's
        reconciliation scan's business (compare size/mtime_ns, then mark_pending). Returns rows changed."""
        key = path_key(root)
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM roots WHERE path = ?", (key,)).fetchone()
            if not row:
                raise InvalidArgumentError(f"{display_text(key)} is not a watched folder")
            conn.execute("UPDATE roots SET online = 1 WHERE id = ?", (row[0],))
            cur = conn.execute(
                """
                UPDATE files SET state = CASE
                    WHEN EXISTS (SELECT 1 FROM embeddings e WHERE e.file_id = files.id) THEN 'indexed'
                    WHEN fail_reason IS NOT NULL THEN 'failed'
                    ELSE 'pending' END
                WHERE root_id = ? AND state = 'offline'
                """,
                (row[0],),
            )
            return cur.rowcount

    # -- files --

    def files_under(self, folder: PathLike) -> list[FileRecord]:
        """Every file row at or below ``folder`` (a root or any folder inside one), ordered by path."""
        key = path_key(folder)
        lo, hi = _subtree_bounds(key)
        rows = self._read(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE path = ? OR (path >= ? AND path < ?) ORDER BY path", (key, lo, hi)
        )
        return [_file_from_row(r) for r in rows]

    def get_file(self, path: PathLike) -> FileRecord | None:
        rows = self._read(f"SELECT {_FILE_COLUMNS} FROM files WHERE path = ?", (path_key(path),))
        return _file_from_row(rows[0]) if rows else None

    def get_file_by_id(self, file_id: int) -> FileRecord | None:
        rows = self._read(f"SELECT {_FILE_COLUMNS} FROM files WHERE id = ?", (int(file_id),))
        return _file_from_row(rows[0]) if rows else None

    def files_by_ids(self, ids: Iterable[int]) -> dict[int, FileRecord]:
        """The rows of ``ids`` that still exist, by id, in a few queries (a page of search results at once)."""
        id_list = [int(i) for i in ids]
        found: dict[int, FileRecord] = {}
        for start in range(0, len(id_list), 500):  # stay under SQLite's bound-parameter limit
            part = id_list[start : start + 500]
            marks = ",".join("?" * len(part))
            for row in self._read(f"SELECT {_FILE_COLUMNS} FROM files WHERE id IN ({marks})", part):
                record = _file_from_row(row)
                found[record.id] = record
        return found

    def ids_in_states(self, states: Iterable[str]) -> np.ndarray:
        """Sorted ids (int64) of the files in any of ``states`` (search leaves offline and failed files out)."""
        wanted = list(states)
        if not wanted:
            return np.zeros(0, dtype=np.int64)
        marks = ",".join("?" * len(wanted))
        rows = self._read(f"SELECT id FROM files WHERE state IN ({marks}) ORDER BY id", wanted)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def upsert_file(self, record: FileRecord) -> int:
        """Insert or update the row for ``record.path`` (its id is kept on update; ``record.id`` is ignored).
        The path must lie inside a watched root. Returns the file id."""
        if record.state not in _STATE_VALUES:
            raise InvalidArgumentError(f"unknown file state {record.state!r}")
        key = path_key(record.path)
        with self.transaction() as conn:
            rid = self._require_root_id(key)
            conn.execute(
                """
                INSERT INTO files (root_id, path, display, size, mtime_ns, fingerprint, state, fail_reason,
                                   captured_at, width, height, caption)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (path) DO UPDATE SET
                    root_id = excluded.root_id, size = excluded.size, mtime_ns = excluded.mtime_ns,
                    fingerprint = excluded.fingerprint, state = excluded.state, fail_reason = excluded.fail_reason,
                    captured_at = excluded.captured_at, width = excluded.width, height = excluded.height,
                    caption = excluded.caption
                """,
                (
                    rid, key, display_text(key), int(record.size), int(record.mtime_ns), record.fingerprint,
                    record.state, record.fail_reason, record.captured_at, record.width, record.height,
                    record.caption or "",
                ),
            )  # fmt: skip
            return conn.execute("SELECT id FROM files WHERE path = ?", (key,)).fetchone()[0]

    def mark_pending(self, path: PathLike, size: int, mtime_ns: int, fingerprint: str | None = None) -> int:
        """New or changed file: state 'pending' with its current size/mtime (EXIF facts and caption are kept;
        an existing embedding stays searchable until the new one replaces it, but no longer counts as current, see
        ``pending(model_id)``). Returns the file id."""
        key = path_key(path)
        with self.transaction() as conn:
            rid = self._require_root_id(key)
            conn.execute(
                """
                INSERT INTO files (root_id, path, display, size, mtime_ns, fingerprint, state)
                VALUES (?, ?, ?, ?, ?, ?, 'pending')
                ON CONFLICT (path) DO UPDATE SET
                    root_id = excluded.root_id, size = excluded.size, mtime_ns = excluded.mtime_ns,
                    fingerprint = excluded.fingerprint, state = 'pending', fail_reason = NULL,
                    content_version = content_version + (size != excluded.size OR mtime_ns != excluded.mtime_ns)
                """,
                (rid, key, display_text(key), int(size), int(mtime_ns), fingerprint),
            )
            return conn.execute("SELECT id FROM files WHERE path = ?", (key,)).fetchone()[0]

    def register_model(self, model_id: str, dim: int) -> None:
        """Remember a model's dimension; a different dimension for a known model id is refused."""
        with self.transaction() as conn:
            row = conn.execute("SELECT dim FROM models WHERE model_id = ?", (model_id,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO models (model_id, dim) VALUES (?, ?)", (model_id, int(dim)))
            elif row[0] != int(dim):
                raise InvalidArgumentError(
                    f"model {model_id!r} was recorded with dimension {row[0]}, not {dim}; "
                    "use a different model id for a different model"
                )

    def model_dim(self, model_id: str) -> int | None:
        rows = self._read("SELECT dim FROM models WHERE model_id = ?", (model_id,))
        return rows[0][0] if rows else None

    def record_embedding(
        self,
        path: PathLike,
        model_id: str,
        vector: np.ndarray,
        *,
        size: int,
        mtime_ns: int,
        fingerprint: str | None = None,
        captured_at: str | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> int:
        """Store the embedding of a photo (replacing an older one for that model) and mark it 'indexed'.
        Creates the file row if needed. Returns the file id (= the label to use in the vector index)."""
        vec = np.ascontiguousarray(vector, dtype="<f4").reshape(-1)
        if not np.all(np.isfinite(vec)):
            raise InvalidArgumentError(f"embedding for {display_text(path_key(path))} contains NaN or infinity")
        key = path_key(path)
        with self.transaction() as conn:
            self.register_model(model_id, vec.shape[0])
            rid = self._require_root_id(key)
            conn.execute(
                """
                INSERT INTO files (root_id, path, display, size, mtime_ns, fingerprint, state, fail_reason,
                                   captured_at, width, height)
                VALUES (?, ?, ?, ?, ?, ?, 'indexed', NULL, ?, ?, ?)
                ON CONFLICT (path) DO UPDATE SET
                    root_id = excluded.root_id, size = excluded.size, mtime_ns = excluded.mtime_ns,
                    fingerprint = excluded.fingerprint, state = 'indexed', fail_reason = NULL,
                    captured_at = excluded.captured_at, width = excluded.width, height = excluded.height,
                    content_version = content_version + (size != excluded.size OR mtime_ns != excluded.mtime_ns)
                """,
                (rid, key, display_text(key), int(size), int(mtime_ns), fingerprint, captured_at, width, height),
            )
            fid, version = conn.execute("SELECT id, content_version FROM files WHERE path = ?", (key,)).fetchone()
            seq = self._bump_seq(conn)
            conn.execute(
                """
                INSERT INTO embeddings (file_id, model_id, dim, vector, seq, content_version) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (file_id, model_id) DO UPDATE SET dim = excluded.dim, vector = excluded.vector,
                                                              seq = excluded.seq,
                                                              content_version = excluded.content_version
                """,
                (fid, model_id, vec.shape[0], vec.tobytes(), seq, version),
            )
            return fid

    def record_failure(
        self, path: PathLike, reason: str, *, size: int, mtime_ns: int, fingerprint: str | None = None
    ) -> int:
        """The file could not be decoded/embedded: state 'failed' with ``reason``; not retried until its size or
        mtime changes (the scan compares them). Its old embeddings are dropped, as they describe content that is
        gone: remove the returned id from the vector index too. Returns the file id."""
        key = path_key(path)
        with self.transaction() as conn:
            rid = self._require_root_id(key)
            conn.execute(
                """
                INSERT INTO files (root_id, path, display, size, mtime_ns, fingerprint, state, fail_reason)
                VALUES (?, ?, ?, ?, ?, ?, 'failed', ?)
                ON CONFLICT (path) DO UPDATE SET
                    root_id = excluded.root_id, size = excluded.size, mtime_ns = excluded.mtime_ns,
                    fingerprint = excluded.fingerprint, state = 'failed', fail_reason = excluded.fail_reason
                """,
                (rid, key, display_text(key), int(size), int(mtime_ns), fingerprint, str(reason)),
            )
            fid = conn.execute("SELECT id FROM files WHERE path = ?", (key,)).fetchone()[0]
            conn.execute("DELETE FROM embeddings WHERE file_id = ?", (fid,))
            return fid

    def rename_file(self, old: PathLike, new: PathLike) -> RenameResult | None:
        """A file moved (same content): keep its id, so its embedding and index label stay valid.

        If ``new`` already had a row (a file was replaced by the move), that row is deleted first and its id is
        returned as ``replaced_id``. Returns None when ``old`` is unknown. ``new`` must be inside a watched root.
        """
        old_key, new_key = path_key(old), path_key(new)
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM files WHERE path = ?", (old_key,)).fetchone()
            if not row:
                return None
            if old_key == new_key:
                return RenameResult(row[0], None)
            rid = self._require_root_id(new_key)
            replaced = conn.execute("SELECT id FROM files WHERE path = ?", (new_key,)).fetchone()
            if replaced:
                conn.execute("DELETE FROM files WHERE id = ?", (replaced[0],))
            conn.execute(
                "UPDATE files SET path = ?, display = ?, root_id = ? WHERE id = ?",
                (new_key, display_text(new_key), rid, row[0]),
            )
            return RenameResult(row[0], replaced[0] if replaced else None)

    def rename_folder(self, old_dir: PathLike, new_dir: PathLike) -> int:
        """A folder moved: every row below ``old_dir`` moves below ``new_dir``, ids kept. Rows already at the
        target paths are replaced. Returns the number of rows moved."""
        old_key, new_key = path_key(old_dir), path_key(new_dir)
        if old_key == new_key:
            return 0
        lo, hi = _subtree_bounds(old_key)
        with self.transaction() as conn:
            rid = self._require_root_id(new_key)
            rows = conn.execute("SELECT id, path FROM files WHERE path >= ? AND path < ?", (lo, hi)).fetchall()
            moved = 0
            for fid, key in rows:
                target = new_key + key[len(old_key) :]
                conn.execute("DELETE FROM files WHERE path = ? AND id != ?", (target, fid))
                conn.execute(
                    "UPDATE files SET path = ?, display = ?, root_id = ? WHERE id = ?",
                    (target, display_text(target), rid, fid),
                )
                moved += 1
            return moved

    def find_by_fingerprint(self, fingerprint: str, size: int) -> list[FileRecord]:
        """Rows with this content fingerprint and size (a moved file: match a 'gone' row to a 'new' file)."""
        sql = f"SELECT {_FILE_COLUMNS} FROM files WHERE fingerprint = ? AND size = ? ORDER BY id"
        rows = self._read(sql, (fingerprint, int(size)))
        return [_file_from_row(r) for r in rows]

    def delete_file(self, path: PathLike) -> int | None:
        """Forget a file that is gone from disk (its embeddings go too). Returns its id, or None if unknown."""
        key = path_key(path)
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM files WHERE path = ?", (key,)).fetchone()
            if not row:
                return None
            conn.execute("DELETE FROM files WHERE id = ?", (row[0],))
            return row[0]

    def record_metadata(self, file_id: int, meta, version: int) -> None:
        """Store what core/library/photo_metadata.py read of a photo (a PhotoMetadata) and the reader's version."""
        with self.transaction() as conn:
            conn.execute(
                """
                UPDATE files SET captured_at = ?, captured_source = ?, captured_offset = ?, camera_make = ?,
                    camera_model = ?, lens = ?, has_gps = ?, width = coalesce(?, width),
                    height = coalesce(?, height), meta_version = ?
                WHERE id = ?
                """,
                (meta.captured_at, meta.captured_source, meta.captured_offset, meta.camera_make, meta.camera_model,
                 meta.lens, int(bool(meta.has_gps)), meta.width, meta.height, int(version), int(file_id)),
            )

    def files_without_metadata(self, version: int, limit: int = 256) -> list[FileRecord]:
        """Up to ``limit`` reachable rows (not offline) whose metadata is older than ``version``, by id."""
        rows = self._read(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE meta_version < ? AND state != 'offline' ORDER BY id LIMIT ?",
            (int(version), int(limit)),
        )
        return [_file_from_row(r) for r in rows]

    def count_without_metadata(self, version: int) -> int:
        return self._read("SELECT count(*) FROM files WHERE meta_version < ? AND state != 'offline'",
                          (int(version),))[0][0]

    def set_caption(self, path: PathLike, caption: str) -> None:
        with self.transaction() as conn:
            cur = conn.execute("UPDATE files SET caption = ? WHERE path = ?", (caption, path_key(path)))
            if cur.rowcount == 0:
                raise InvalidArgumentError(f"{display_text(path_key(path))} is not in the catalog")

    def counts(self, model_id: str | None = None) -> dict[str, int]:
        """Files per state. With ``model_id`` the counts are that model's view: 'indexed' only when the file has a
        current vector of that model, 'pending' when it still needs one (see ``pending``)."""
        counts = dict.fromkeys(_STATE_VALUES, 0)
        if model_id is None:
            counts.update(dict(self._read("SELECT state, count(*) FROM files GROUP BY state")))
            return counts
        rows = self._read(
            f"""
            SELECT CASE WHEN state = 'indexed' AND NOT {_CURRENT_VECTOR} THEN 'pending' ELSE state END AS s, count(*)
            FROM files GROUP BY s
            """,
            (model_id,),
        )
        counts.update(dict(rows))
        return counts

    def failed(self) -> list[FileRecord]:
        return self._by_state(FileState.FAILED)

    def pending(self, model_id: str | None = None) -> list[FileRecord]:
        """Files waiting to be embedded: state 'pending', and with ``model_id`` also the 'indexed' files that have
        no current vector of that model (another model indexed them, or they changed since this one did)."""
        if model_id is None:
            return self._by_state(FileState.PENDING)
        rows = self._read(
            f"""
            SELECT {_FILE_COLUMNS} FROM files
            WHERE state = 'pending' OR (state = 'indexed' AND NOT {_CURRENT_VECTOR}) ORDER BY path
            """,
            (model_id,),
        )
        return [_file_from_row(r) for r in rows]

    def _by_state(self, state: str) -> list[FileRecord]:
        rows = self._read(f"SELECT {_FILE_COLUMNS} FROM files WHERE state = ? ORDER BY path", (state,))
        return [_file_from_row(r) for r in rows]

    def models(self) -> dict[str, int]:
        """Every model with vectors in the catalog, and how many current vectors of online files it has."""
        rows = self._read(
            """
            SELECT e.model_id, count(*) FROM embeddings e JOIN files f ON f.id = e.file_id
            WHERE f.state = 'indexed' AND e.content_version = f.content_version GROUP BY e.model_id
            """
        )
        return dict(rows)

    # -- the library's own settings --

    def get_setting(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM library_settings WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_setting(self, key: str, value: str | None) -> None:
        """Remember ``value`` under ``key`` (None forgets it)."""
        with self.transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM library_settings WHERE key = ?", (key,))
            else:
                conn.execute(
                    "INSERT INTO library_settings (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    # -- embeddings --

    @staticmethod
    def _bump_seq(conn: sqlite3.Connection) -> int:
        conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'embedding_seq'")
        return conn.execute("SELECT value FROM meta WHERE key = 'embedding_seq'").fetchone()[0]

    def embedding_seq(self) -> int:
        """A counter that grows with every embedding insert, replacement or deletion (any model)."""
        return self._read("SELECT value FROM meta WHERE key = 'embedding_seq'")[0][0]

    def iter_embeddings(
        self, model_id: str, chunk_size: int = 8192, since_seq: int = 0
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (ids int64 [n], vectors float32 [n, D]) chunks, ordered by file id, of embeddings written after
        ``since_seq`` (0 = all). Runs on this thread's connection in one read snapshot (WAL: writers continue)."""
        dim = self.model_dim(model_id)
        if dim is None:
            return
        conn = self._conn()
        if since_seq <= 0:
            sql, params = "SELECT file_id, vector FROM embeddings WHERE model_id = ? ORDER BY file_id", (model_id,)
        else:
            sql = "SELECT file_id, vector FROM embeddings WHERE model_id = ? AND seq > ? ORDER BY file_id"
            params = (model_id, int(since_seq))
        with self._reading():
            cur = conn.execute(sql, params)
            try:
                while True:
                    rows = cur.fetchmany(chunk_size)
                    if not rows:
                        return
                    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                    vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
                    yield ids, vectors.astype(np.float32, copy=False)
            finally:
                cur.close()

    def deleted_embedding_ids(self, model_id: str, since_seq: int) -> np.ndarray | None:
        """Ids whose ``model_id`` embedding was deleted after ``since_seq`` and not re-added since. None when the
        deletion log was pruned past ``since_seq`` (then compare ``embedding_ids`` with the index instead)."""
        floor = self._read("SELECT value FROM meta WHERE key = 'log_floor'")[0][0]
        if since_seq < floor:
            return None
        rows = self._read(
            """
            SELECT DISTINCT l.file_id FROM embedding_log l WHERE l.model_id = ? AND l.seq > ? AND NOT EXISTS
                (SELECT 1 FROM embeddings e WHERE e.file_id = l.file_id AND e.model_id = l.model_id)
            ORDER BY l.file_id
            """,
            (model_id, int(since_seq)),
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def prune_embedding_log(self, keep: int = LOG_KEEP) -> int:
        """Forget all but the newest ``keep`` deletion-log entries (done on open). Returns rows removed."""
        find = "SELECT seq FROM embedding_log ORDER BY seq DESC LIMIT 1 OFFSET ?"
        if not self._read(find, (keep,)):  # the common case: nothing to do, no write lock taken
            return 0
        with self.transaction() as conn:
            row = conn.execute(find, (keep,)).fetchone()
            if row is None:
                return 0
            cur = conn.execute("DELETE FROM embedding_log WHERE seq <= ?", (row[0],))
            conn.execute("UPDATE meta SET value = max(value, ?) WHERE key = 'log_floor'", (row[0],))
            return cur.rowcount

    def embeddings(self, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """All (ids, vectors) of a model at once; prefer iter_embeddings for big libraries."""
        dim = self.model_dim(model_id) or 0
        chunks = list(self.iter_embeddings(model_id))
        if not chunks:
            return np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32)
        return np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])

    def embedding_ids(self, model_id: str) -> np.ndarray:
        rows = self._read("SELECT file_id FROM embeddings WHERE model_id = ? ORDER BY file_id", (model_id,))
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def get_embedding(self, path: PathLike, model_id: str) -> np.ndarray | None:
        rows = self._read(
            "SELECT e.vector FROM embeddings e JOIN files f ON f.id = e.file_id WHERE f.path = ? AND e.model_id = ?",
            (path_key(path), model_id),
        )
        return np.frombuffer(rows[0][0], dtype="<f4").astype(np.float32) if rows else None

    def embeddings_of(self, ids: Iterable[int], model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64 [n], vectors float32 [n, D]) of the ``model_id`` embeddings of the files ``ids`` that have one
        (the vectors the index holds for them), ordered by id: search scores caption matches exactly with these."""
        dim = self.model_dim(model_id)
        id_list = sorted({int(i) for i in ids})
        if dim is None or not id_list:
            return np.zeros(0, dtype=np.int64), np.zeros((0, dim or 0), dtype=np.float32)
        rows = self.query_in("SELECT file_id, vector FROM embeddings WHERE model_id = ? AND file_id IN ({marks}) "
                             "ORDER BY file_id", id_list, [model_id])
        found = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
        return found, vectors.astype(np.float32, copy=False)

    def vector_ids_for_paths(self, paths: Iterable[PathLike]) -> dict[Path, int]:
        """Map known paths to their file ids (= index labels); unknown paths are left out."""
        out: dict[Path, int] = {}
        conn = self._conn()
        with self._reading():
            for p in paths:
                key = path_key(p)
                row = conn.execute("SELECT id FROM files WHERE path = ?", (key,)).fetchone()
                if row:
                    out[_path_from_key(key)] = row[0]
        return out

    def paths_for_ids(self, ids: Iterable[int]) -> list[Path | None]:
        """Paths for file ids, in the same order; None where an id is no longer in the catalog."""
        id_list = [int(i) for i in ids]
        found: dict[int, Path] = {}
        conn = self._conn()
        with self._reading():
            for start in range(0, len(id_list), 500):  # stay under SQLite's bound-parameter limit
                part = id_list[start : start + 500]
                marks = ",".join("?" * len(part))
                for fid, key in conn.execute(f"SELECT id, path FROM files WHERE id IN ({marks})", part):
                    found[fid] = _path_from_key(key)
        return [found.get(i) for i in id_list]

    def ids_under(self, folder: PathLike) -> np.ndarray:
        """File ids at or below ``folder`` (for a folder filter in search)."""
        key = path_key(folder)
        lo, hi = _subtree_bounds(key)
        rows = self._read("SELECT id FROM files WHERE path = ? OR (path >= ? AND path < ?)", (key, lo, hi))
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def embeddings_under(self, folder: PathLike, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64 [n], vectors float32 [n, D]) of the ``model_id`` embeddings of files at or below ``folder``,
        ordered by id: an exact search in one folder reads them here (SQLite returns a 768-d blob in a few
        microseconds; hnswlib's get_items takes ~100)."""
        dim = self.model_dim(model_id)
        if dim is None:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        key = path_key(folder)
        lo, hi = _subtree_bounds(key)
        rows = self._read(
            """
            SELECT e.file_id, e.vector FROM embeddings e JOIN files f ON f.id = e.file_id
            WHERE e.model_id = ? AND (f.path = ? OR (f.path >= ? AND f.path < ?)) ORDER BY e.file_id
            """,
            (model_id, key, lo, hi),
        )
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
        return ids, vectors.astype(np.float32, copy=False)

    # -- maintenance --

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` result ('ok' when healthy)."""
        return "; ".join(r[0] for r in self._read("PRAGMA integrity_check"))

    def schema_version(self) -> int:
        return self._read("SELECT version FROM schema_version")[0][0]

    def quick_check(self) -> str:
        """``PRAGMA quick_check`` ('ok' when healthy): integrity_check less the index cross-checks, about 3x
        faster; enough to trust a copy before it replaces a backup."""
        return "; ".join(r[0] for r in self._read("PRAGMA quick_check"))

    def copy_to(self, target: PathLike) -> None:
        """Write a consistent snapshot of the whole catalog to ``target`` (a new file, replaced if there) with
        SQLite's online backup: writers in other threads and processes go on meanwhile. The copy is a single
        self-contained file (rollback journal, no -wal)."""
        dest = sqlite3.connect(os.fspath(target), isolation_level=None)
        try:
            self._conn().backup(dest)
            dest.execute("PRAGMA journal_mode = DELETE")
        finally:
            dest.close()
