"""Crash safety: `vsearch index` killed with SIGKILL at random moments, and exactly inside index saves, never
corrupts the catalog, never leaves an index that loads blindly wrong, and a rerun ends with every photo indexed
exactly once.

Kills inside saves are made certain (not left to luck) by running the CLI through a small wrapper that pauses at two
points of VectorIndex.save: after the new index file is written and fsynced (before it is checked and renamed), and
after it is renamed into place (before the manifest that names it is replaced). The wrapper drops a marker file at
each pause; the test kills the process as soon as it sees one.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.core.library_fakes import Cli, make_photo
from vsearch_app.core.library.library import INDEX_DIRNAME
from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog
from vsearch_app.core.store.sharded_index import ShardedIndex

KILLS = 24

WRAPPER = """
import os, sys, time
from vsearch_app.core.store import index_files

def pausing(name, original):
    def wrapper(*args, **kwargs):
        mark = os.environ.get("CRASH_TEST_MARK_DIR")
        if mark:
            open(os.path.join(mark, name), "w").close()
            time.sleep(0.4)
        return original(*args, **kwargs)
    return wrapper

index_files.check_hnsw_header = pausing("temp-written", index_files.check_hnsw_header)
index_files.write_manifest = pausing("file-renamed", index_files.write_manifest)
from vsearch_app.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_at_random_moments_and_inside_saves(tmp_path, tiny_siglip_dir):
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    cli = Cli(tmp_path, tiny_siglip_dir)
    root = tmp_path / "photos"
    for i in range(40):
        make_photo(root / f"d{i % 4}" / f"p{i:03d}.png", i)
    cli.run("folders", "add", str(root))
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**cli.env, "CRASH_TEST_MARK_DIR": str(marks)}
    args = [sys.executable, "-c", WRAPPER, "index", "--model", str(cli.model_dir)]
    next_photo = 1000
    killed = {"random": 0, "temp-written": 0, "file-renamed": 0}
    for attempt in range(KILLS * 3):
        if sum(killed.values()) >= KILLS:
            break
        # Keep work for every run: two new photos and one edited photo.
        for _ in range(2):
            make_photo(root / "new" / f"n{next_photo}.png", next_photo)
            next_photo += 1
        make_photo(root / "d1" / "p001.png", next_photo)
        next_photo += 1
        for marker in marks.iterdir():
            marker.unlink()
        target = ("temp-written", "file-renamed", None, None)[attempt % 4]
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if target is None:
                delay = rng.uniform(0.2, 4.0)
                deadline = time.monotonic() + delay
                while time.monotonic() < deadline and proc.poll() is None:
                    time.sleep(0.01)
                hit = proc.poll() is None
            else:
                deadline = time.monotonic() + 60
                while not (marks / target).exists() and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.002)
                hit = (marks / target).exists() and proc.poll() is None
            if hit:
                proc.send_signal(signal.SIGKILL)
                killed["random" if target is None else target] += 1
            proc.wait(timeout=120)
            stderr = proc.stderr.read().decode(errors="replace")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
        assert "Traceback" not in stderr, f"seed {seed}: {stderr}"
        with sqlite3.connect(cli.data_dir / CATALOG_FILENAME) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", f"seed {seed}"
    assert sum(killed.values()) >= KILLS, f"seed {seed}: only {killed} kills landed"
    assert killed["temp-written"] and killed["file-renamed"], killed

    # The index either loads (its manifest and file agree) or is rebuilt; either way it matches the catalog.
    with Catalog.open(cli.data_dir / CATALOG_FILENAME) as catalog:
        assert catalog.integrity_check() == "ok"
        model_id = cli.model_key
        dim = catalog.model_dim(model_id)
        index = ShardedIndex.open_or_rebuild(cli.data_dir / INDEX_DIRNAME, model_id, dim, catalog)
        ids = catalog.embedding_ids(model_id)
        assert len(index) == len(ids)
        index.close()

    rerun = cli.run("index")
    assert "Traceback" not in rerun.stderr
    on_disk = sorted(str(p) for p in root.rglob("*.png"))
    with Catalog.open(cli.data_dir / CATALOG_FILENAME) as catalog:
        rows = catalog.files_under(root)
        assert sorted(str(r.path) for r in rows) == on_disk  # one row per photo, none missing, none extra
        assert {r.state for r in rows} == {"indexed"}
        ids = catalog.embedding_ids(model_id)
        assert sorted(ids.tolist()) == sorted(r.id for r in rows)  # exactly one vector per photo
        ids_arr, vectors = catalog.embeddings(model_id)
        index = ShardedIndex.open_or_rebuild(cli.data_dir / INDEX_DIRNAME, model_id, dim, catalog)
        try:
            assert len(index) == len(rows)
            for fid, vector in zip(ids_arr.tolist(), vectors, strict=True):
                found, scores = index.search(vector, k=1, filter_ids=np.array([fid]))
                assert found.tolist() == [fid] and scores[0] == pytest.approx(1.0, abs=1e-3)
        finally:
            index.close()
    status = cli.json("status")
    assert status["counts"] == {"indexed": len(on_disk), "failed": 0, "offline": 0, "pending": 0}
