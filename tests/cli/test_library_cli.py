"""End to end through the real CLI in a subprocess, with the tiny random SigLIP: folders, index, search, status,
and `index --watch` following adds, edits, renames, moves, deletions and an unplugged folder.

Embedding work is counted from the indexer's INFO log line ("embedded N photo(s)"), which is what proves that a
rename or a returning folder costs no model call. The catalog is polled (read-only, WAL) with a timeout instead of
sleeping for fixed times.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.core.library_fakes import TIMEOUT, Cli, embedded_count, make_photo
from tests.support.noisy_images import corrupt_deflate_tiff, png_with_a_broken_animation_chunk
from vsearch_app.cli.library_cmd import index_summary
from vsearch_app.core.store.catalog import CATALOG_FILENAME
from vsearch_app.core.types import FolderInfo, IndexReport, LibraryStatus


@pytest.fixture
def cli(tmp_path, tiny_siglip_dir):
    return Cli(tmp_path, tiny_siglip_dir)


def test_index_search_status_and_a_second_index_does_no_work(tmp_path, cli):
    root = tmp_path / "photos"
    photos = [make_photo(root / ("beach" if i % 2 else "city") / f"img{i:02d}.png", i) for i in range(30)]
    (root / "broken.jpg").write_bytes(b"not a jpeg at all")
    cli.run("folders", "add", str(root))
    assert cli.json("folders", "list") == [{"path": str(root), "online": True}]

    first = cli.run("index")
    assert embedded_count(first.stderr) == 30
    status = cli.json("status")
    assert set(status) == {"model", "roots", "counts", "failed", "index"}
    assert status["roots"] == [{"path": str(root), "online": True}]
    assert status["counts"] == {"indexed": 30, "failed": 1, "offline": 0, "pending": 0}
    assert status["failed"][0]["path"] == str(root / "broken.jpg") and status["failed"][0]["reason"]
    assert status["model"] == str(cli.model_dir)
    assert Path(status["index"]["path"]).is_dir() and status["index"]["bytes"] > 0
    text = cli.run("status").stdout
    assert f"index:   {status['index']['path']} (" in text and "30 indexed, 0 pending, 1 failed" in text

    # Query by example with a copy outside the library (so the model really runs on it): the original comes first.
    probe = shutil.copy(photos[7], tmp_path / "probe.png")
    piped = cli.run("search", probe, "--limit", "5").stdout.splitlines()
    assert piped[0] == str(photos[7]) and len(piped) == 5  # piped: paths only, one per line
    hits = cli.json("search", probe, "--limit", "30")
    assert hits[0]["path"] == str(photos[7]) and hits[0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)

    # Weights decide which term dominates.
    a, b = str(photos[3]), str(photos[12])

    def rank(query: str) -> list[str]:
        return [h["path"] for h in cli.json("search", query, "--limit", "30")]

    ranking = rank(f"{a} + 3:{b}")
    assert ranking.index(b) < ranking.index(a)
    ranking = rank(f"3:{a} + {b}")
    assert ranking.index(a) < ranking.index(b)
    # Subtracting b can only push b down (for any photo c: a.c > a.b implies a.c - w b.c > a.b - w), and here it
    # does push it from the top half to the bottom.
    alone, minus = rank(a), rank(f"{a} - 2:{b}")
    assert minus.index(b) >= alone.index(b) and minus.index(b) >= len(minus) // 2

    city = cli.json("search", probe, "--in", str(root / "city"), "--limit", "30")
    assert len(city) == 15 and all(Path(h["path"]).parent.name == "city" for h in city)
    strict = cli.json("search", probe, "--threshold", "0.9", "--limit", "30")
    assert strict and all(h["score"] >= 0.9 for h in strict)

    again = cli.run("index")
    assert embedded_count(again.stderr) == 0 and "0 photo(s) embedded" in again.stderr


def test_user_errors_exit_2_without_a_traceback(tmp_path, cli):
    proc = cli.run("search", '"unclosed', expect=2)
    assert "never closed" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli.run("folders", "add", str(tmp_path / "missing"), expect=2)
    assert "not a folder" in proc.stderr
    proc = cli.run("search", "./nope.jpg", expect=2)
    assert "no image file" in proc.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="file names with a newline; libtiff is out of reach there")
def test_print0_noisy_decoders_and_an_unreachable_folder(tmp_path, cli):
    root, drive = tmp_path / "photos", tmp_path / "drive"
    odd = make_photo(root / "two\nlines.png", 1)  # a newline in the name: only NUL-separated output survives it
    plain = make_photo(root / "plain.png", 2)
    noisy = png_with_a_broken_animation_chunk(root / "animated-but-not.png")  # Pillow warns "Invalid APNG"
    damaged = corrupt_deflate_tiff(root / "damaged.tif")  # libtiff writes "ZIPDecode: ..." to fd 2 by default
    make_photo(drive / "on-the-drive.png", 3)
    cli.run("folders", "add", str(root))
    cli.run("folders", "add", str(drive))
    cli.run("index")
    drive.rename(tmp_path / "drive-unplugged")

    proc = cli.run("index")
    lines = proc.stderr.splitlines()
    assert f"vsearch: {drive} is offline (not reachable: unplugged, unmounted or moved?); its photos are kept, not " \
           "deleted, and are back in search results when it is" in lines
    # Decoders' chatter stayed in the debug log: no warning text, no libtiff message through the progress bar.
    for word in ("Invalid APNG", "UserWarning", "ZIPDecode", "libtiff"):
        assert word not in proc.stderr, proc.stderr
    reasons = {f["path"]: f["reason"] for f in cli.json("status")["failed"]}
    assert reasons == {str(damaged): "truncated or corrupt image data"}

    out = subprocess.run(cli.args("search", str(plain), "--print0", "--limit", "10"), env=cli.env,
                         capture_output=True, timeout=TIMEOUT, check=True).stdout
    assert out.endswith(b"\0")
    assert sorted(out.split(b"\0")[:-1]) == sorted(os.fsencode(p) for p in (odd, plain, noisy))
    proc = cli.run("search", "sunset", "--print0", "--json", expect=2)
    assert "not allowed with argument" in proc.stderr


def test_index_summary_names_every_unreachable_folder():
    status = LibraryStatus(model="m", roots=[FolderInfo(Path("/p/home"), True), FolderInfo(Path("/mnt/usb"), False)],
                           counts={"indexed": 5, "pending": 1, "failed": 0, "offline": 3}, failed=[],
                           index_path=None, index_bytes=0)
    assert index_summary(IndexReport(embedded=2, failed=1), status) == [
        "2 photo(s) embedded, 1 could not be read (see `vsearch status`); 5 indexed, 1 pending, 3 offline",
        "/mnt/usb is offline (not reachable: unplugged, unmounted or moved?); its photos are kept, not deleted, and "
        "are back in search results when it is",
    ]


def test_a_folder_that_vanishes_while_index_runs_is_named_in_its_summary(tmp_path, monkeypatch, capsys):
    from tests.core.library_fakes import FakeEmbedder
    from vsearch_app.cli import library_cmd
    from vsearch_app.cli.main import main
    from vsearch_app.core.library.library import Library

    root = tmp_path / "usb"
    for i in range(3):
        make_photo(root / f"img{i}.png", i)
    embedder = FakeEmbedder()
    # The drive is unplugged after the scan, while the photos are being embedded.
    embedder.before_batch = lambda paths: root.exists() and root.rename(tmp_path / "usb-gone")
    library = Library(tmp_path / "data", model_id="fake-model", embedder_factory=lambda: embedder)
    library.add_folder(root)
    monkeypatch.setattr(library_cmd.LibraryService, "open", classmethod(lambda cls, settings: cls(settings, library)))
    assert main(["index"]) == 0
    assert f"vsearch: {root} is offline (not reachable" in capsys.readouterr().err


def _wait(condition, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {what} (last: {last!r})")


@pytest.mark.skipif(sys.platform == "win32", reason="stops the watcher with SIGINT")
def test_watch_follows_the_folder_and_an_unplugged_drive(tmp_path, cli):
    root = tmp_path / "drive"
    photos = [make_photo(root / "inbox" / f"img{i:02d}.png", 100 + i) for i in range(12)]
    cli.run("folders", "add", str(root))
    log_path = tmp_path / "watch.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(cli.args("index", "--watch"), env=cli.env, stdout=subprocess.DEVNULL,
                                stderr=log_file)
    catalog = None
    try:
        _wait(lambda: (cli.data_dir / CATALOG_FILENAME).exists(), "catalog created")
        catalog = cli.catalog()

        def state(path):
            row = catalog.get_file(path)
            return row.state if row else None

        def embedded():
            return embedded_count(log_path.read_text())

        _wait(lambda: catalog.counts()["indexed"] == 12, "initial index")
        # The log line follows the catalog commit, so it may land a moment after the count does.
        _wait(lambda: embedded() == 12, "twelve embeddings logged")

        added = make_photo(root / "inbox" / "new.png", 500)
        _wait(lambda: state(added) == "indexed", "added photo indexed")
        _wait(lambda: embedded() == 13, "one embedding for the added photo")

        before = catalog.get_embedding(photos[0], cli.model_key)
        make_photo(photos[0], 501)  # edited in place: new pixels
        _wait(lambda: embedded() == 14, "edited photo re-embedded")
        _wait(lambda: not np.allclose(catalog.get_embedding(photos[0], cli.model_key), before),
              "edited photo has a new vector")

        vector = catalog.get_embedding(photos[1], cli.model_key)
        renamed = root / "inbox" / "renamed.png"
        os.rename(photos[1], renamed)
        moved = root / "archive" / "2020" / "moved.png"
        moved.parent.mkdir(parents=True)
        os.rename(photos[2], moved)
        _wait(lambda: state(renamed) == "indexed" and state(photos[1]) is None, "rename followed")
        _wait(lambda: state(moved) == "indexed" and state(photos[2]) is None, "move followed")
        np.testing.assert_array_equal(catalog.get_embedding(renamed, cli.model_key), vector)

        photos[3].unlink()
        _wait(lambda: state(photos[3]) is None, "deleted photo forgotten")
        assert embedded() == 14  # rename, move and delete cost no model call

        away = tmp_path / "drive-unplugged"
        os.rename(root, away)
        _wait(lambda: catalog.counts()["offline"] == 12 and catalog.counts()["indexed"] == 0, "drive offline")
        os.rename(away, root)
        _wait(lambda: catalog.counts()["indexed"] == 12 and catalog.counts()["offline"] == 0, "drive back")
        late = make_photo(root / "inbox" / "late.png", 502)
        _wait(lambda: state(late) == "indexed", "the returned drive is watched again")
        # The late photo's log line comes after any work the return caused, so this also proves the drive came back
        # without re-embedding.
        _wait(lambda: embedded() >= 15, "the late photo's embedding logged")
        assert embedded() == 15

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if catalog is not None:
            catalog.close()
    text = log_path.read_text()
    assert "stopped watching" in text and "Traceback" not in text
    again = cli.run("index")
    assert embedded_count(again.stderr) == 0
    assert cli.json("status")["counts"] == {"indexed": 13, "failed": 0, "offline": 0, "pending": 0}
