"""Fault-injection harness for the store: a library with a content-hash embedder (no model, no torch), photos, a
child process that runs it with fault points armed (vsearch_app/core/store/fault_points.py), and the checks that
prove nothing was lost.

Run as a module it is the child: ``python -m tests.faults.harness DATA_DIR`` indexes the library in DATA_DIR,
saving the index after every batch and backing the catalog up after every run, so every point is reached often.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vsearch_app.core.library.library import INDEX_DIRNAME, Library
from vsearch_app.core.store import fault_points
from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog
from vsearch_app.core.store.sharded_index import ShardedIndex

MODEL_ID = "fake-model"
DIM = 8
REPO = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT_S = 120


def content_vector(data: bytes) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


@dataclass
class Embedded:
    vectors: np.ndarray
    indices: list[int]
    failures: list[tuple[int, str]]


class ContentEmbedder:
    """Vectors from file content; records every path it embeds."""

    model_id = MODEL_ID
    dim = DIM

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed_images(self, sources, *, batch_size=16, should_stop=None, on_batch=None):
        vectors, indices, failures = [], [], []
        for i, source in enumerate(sources):
            try:
                data = Path(source).read_bytes()
            except OSError as exc:
                failures.append((i, f"cannot read: {exc.strerror}"))
                continue
            vectors.append(content_vector(data))
            indices.append(i)
            self.embedded.append(str(source))
        stacked = np.stack(vectors) if vectors else np.zeros((0, DIM), np.float32)
        return Embedded(stacked, indices, failures)

    def embed_texts(self, texts, *, batch_size=32):
        return np.stack([content_vector(t.encode()) for t in texts])


def open_library(data_dir: Path, embedder: ContentEmbedder | None = None, **options) -> Library:
    embedder = embedder or ContentEmbedder()
    options = {"batch_size": 4, "commit_every": 4, "save_every_s": 0.0, "backup_every_s": 0.0, **options}
    return Library(data_dir, model_id=MODEL_ID, embedder_factory=lambda: embedder, **options)


def make_photo(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def photos_on_disk(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*.png"))


@dataclass(frozen=True)
class ChildResult:
    returncode: int
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -9


def run_child(data_dir: Path, faults: str = "", *, timeout: float = CHILD_TIMEOUT_S) -> ChildResult:
    """Index ``data_dir`` in a child process with ``faults`` armed (fault_points spec)."""
    env = {**os.environ, fault_points.ENV_VAR: faults, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "tests.faults.harness", str(data_dir)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    return ChildResult(proc.returncode, proc.stderr)


OLD_SCHEMA = 4  # what rewind_catalog_to_v4 leaves: two migration steps (v5, v6) away from today's


def rewind_catalog_to_v4(data_dir: Path) -> None:
    """Make a closed library's catalog look as a VSearch with schema v4 left it (its rows kept), so that the next
    open migrates it in two steps. An old catalog can't be made by indexing with SCHEMA_VERSION patched lower: today's
    code reads today's columns. A new migration adds its own undo here."""
    conn = sqlite3.connect(data_dir / CATALOG_FILENAME)
    try:
        with conn:
            conn.execute("DROP INDEX files_camera")  # v6
            for name in ("captions_fts_insert", "captions_fts_delete", "captions_fts_update"):  # v5
                conn.execute(f"DROP TRIGGER {name}")
            conn.execute("DROP TABLE captions_fts")
            conn.execute("DROP INDEX files_captured_at")
            conn.execute("DROP INDEX files_meta_version")
            for column in ("captured_source", "captured_offset", "camera_make", "camera_model", "lens", "has_gps",
                           "meta_version"):
                conn.execute(f"ALTER TABLE files DROP COLUMN {column}")
            conn.execute("UPDATE schema_version SET version = ?", (OLD_SCHEMA,))
    finally:
        conn.close()


def integrity(data_dir: Path) -> str:
    conn = sqlite3.connect(data_dir / CATALOG_FILENAME)
    try:
        return "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def raw_schema_version(data_dir: Path) -> int:
    conn = sqlite3.connect(data_dir / CATALOG_FILENAME)
    try:
        return conn.execute("SELECT version FROM schema_version").fetchone()[0]
    finally:
        conn.close()


def check_index_matches_catalog(data_dir: Path) -> int:
    """Open (load or rebuild) the index and check it holds exactly the catalog's vectors; returns their count."""
    with Catalog.open(data_dir / CATALOG_FILENAME) as catalog:
        dim = catalog.model_dim(MODEL_ID)
        if dim is None:
            return 0
        ids, vectors = catalog.embeddings(MODEL_ID)
        index = ShardedIndex.open_or_rebuild(data_dir / INDEX_DIRNAME, MODEL_ID, dim, catalog)
        try:
            assert len(index) == len(ids), f"index holds {len(index)} vectors, the catalog {len(ids)}"
            for fid, vector in zip(ids.tolist(), vectors, strict=True):
                found, scores = index.search(vector, k=1, filter_ids=np.array([fid]))
                assert found.tolist() == [fid] and abs(float(scores[0]) - 1.0) < 1e-3, (fid, found, scores)
        finally:
            index.close()
        return len(ids)


def still_to_embed(data_dir: Path, root: Path) -> set[str]:
    """Photos on disk without a committed vector of their current content (what a rerun must embed, no more)."""
    with Catalog.open(data_dir / CATALOG_FILENAME) as catalog:
        pending = {str(r.path) for r in catalog.pending(MODEL_ID)}
        rows = {str(r.path): r for r in catalog.files_under(root)}
    done = set()
    for path, row in rows.items():
        st = os.stat(path) if os.path.exists(path) else None
        if row.state == "indexed" and path not in pending and st and (st.st_size, st.st_mtime_ns) == (row.size,
                                                                                                     row.mtime_ns):
            done.add(path)
    return set(photos_on_disk(root)) - done


def check_rerun_completes(data_dir: Path, root: Path) -> list[str]:
    """Index in this process with no fault; then every photo is in the catalog once, indexed, with one vector,
    and the index matches. Returns the paths this rerun embedded."""
    embedder = ContentEmbedder()
    library = open_library(data_dir, embedder)
    try:
        assert library.recovery is None, library.recovery  # a kill never damages the catalog
        report = library.index()
        assert not report.cancelled
    finally:
        library.close()
    assert len(embedder.embedded) == len(set(embedder.embedded)), "a photo was embedded twice in one run"
    on_disk = photos_on_disk(root)
    with Catalog.open(data_dir / CATALOG_FILENAME) as catalog:
        rows = catalog.files_under(root)
        assert sorted(str(r.path) for r in rows) == on_disk  # one row per photo: none missing, none extra
        assert {r.state for r in rows} == {"indexed"}
        assert sorted(catalog.embedding_ids(MODEL_ID).tolist()) == sorted(r.id for r in rows)  # one vector each
        assert catalog.integrity_check() == "ok"
    assert check_index_matches_catalog(data_dir) == len(on_disk)
    return embedder.embedded


def _child_main(data_dir: Path) -> int:
    library = open_library(data_dir)
    try:
        library.index()
    finally:
        library.close()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(Path(sys.argv[1])))
