"""Issue 10, defect 4, end to end through the real CLI with the tiny SigLIP: two `vsearch index` runs at once over
1,000 photos embed each photo once in total, `search --limit 5000` then returns every photo, and while one process
indexes, a second `index` is refused in one line naming it while `search` and `status` keep working.

The refusal is made certain (not left to timing) by running the first indexer through a small wrapper that stops
after its first committed batch until the test creates a gate file; it drops a marker file when it waits there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.core.library_fakes import Cli, embedded_count, make_photo

RUN_TIMEOUT = 600  # generous: the machine running the tests may be busy; nothing here asserts a duration

GATED_INDEXER = """
import os, sys, time
from vsearch_app.core.library import library

after_batch = library.Library._after_batch

def gated(self, *args):
    after_batch(self, *args)
    gate = os.environ["LOCK_TEST_GATE"]
    open(gate + ".waiting", "w").close()
    while not os.path.exists(gate):
        time.sleep(0.05)

library.Library._after_batch = gated
from vsearch_app.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def cli(tmp_path, tiny_siglip_dir):
    return Cli(tmp_path, tiny_siglip_dir)


def _photos(root: Path, start: int, count: int) -> list[Path]:
    return [make_photo(root / f"d{i % 8}" / f"p{i:04d}.png", i, size=(32, 24)) for i in range(start, start + count)]


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        _, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, stderr


def _all_paths(cli: Cli, probe: Path) -> list[str]:
    return [hit["path"] for hit in cli.json("search", str(probe), "--limit", "5000")]


@pytest.mark.slow
def test_two_concurrent_indexers_embed_each_photo_once_and_search_returns_all(tmp_path, cli):
    root = tmp_path / "photos"
    photos = _photos(root, 0, 1000)
    cli.run("folders", "add", str(root))
    probe = Path(shutil.copy(photos[0], tmp_path / "probe.png"))  # outside the library: the model embeds it

    both = [subprocess.Popen(cli.args("index"), env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    results = [_finish(proc) for proc in both]
    for code, stderr in results:
        assert "Traceback" not in stderr, stderr
        assert code == 0 or (code == 2 and "is indexing this library" in stderr and embedded_count(stderr) == 0), stderr
    assert 0 in [code for code, _ in results]
    # Whether the second one was refused or started after the first had finished, no photo was embedded twice.
    assert sum(embedded_count(stderr) for _, stderr in results) == 1000

    found = _all_paths(cli, probe)
    assert len(found) == 1000 and set(found) == {str(p) for p in photos}


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="the gate wrapper relies on POSIX process handling")
def test_a_second_indexer_is_refused_while_search_and_status_keep_working(tmp_path, cli):
    root = tmp_path / "photos"
    photos = _photos(root, 0, 200)  # the indexer commits every 64: it waits with 64 indexed
    cli.run("folders", "add", str(root))
    gate = tmp_path / "gate"
    env = {**cli.env, "LOCK_TEST_GATE": str(gate)}
    first = subprocess.Popen([sys.executable, "-c", GATED_INDEXER, "index", "--model", str(cli.model_dir)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not Path(f"{gate}.waiting").exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the gated indexer ended early"
        assert Path(f"{gate}.waiting").exists(), "the gated indexer never committed a batch"

        refused = cli.run("index", expect=2)
        lines = refused.stderr.splitlines()
        assert len(lines) == 1, refused.stderr
        assert lines[0].startswith(f"vsearch: another VSearch process (pid {first.pid}, `"), lines[0]
        assert f"is indexing this library ({cli.data_dir}); wait for it to finish or stop it." in lines[0]
        assert lines[0].endswith("Searching and `vsearch status` still work.")

        status = cli.json("status")  # readers work beside the writer, and see what it has committed so far
        assert status["counts"]["indexed"] == 64 and status["counts"]["pending"] == 136
        assert cli.json("folders", "list") == [{"path": str(root), "online": True}]
        hits = cli.json("search", str(photos[0]), "--limit", "5000")
        assert len(hits) == 64
    finally:
        gate.touch()
        code, stderr = _finish(first)
    assert code == 0 and "Traceback" not in stderr, stderr
    assert embedded_count(stderr) == 200
    assert cli.json("status")["counts"] == {"indexed": 200, "failed": 0, "offline": 0, "pending": 0}
    assert len(cli.json("search", str(photos[0]), "--limit", "5000")) == 200
