"""A read-only data folder (issue 15): a read-only mount (as root: a tmpfs remounted read-only) or a folder without
write permission (as another user; chmod does not bind root). Searching, listing and status still work and write
nothing; indexing says in one line why it cannot (CLI exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults import harness
from vsearch_app.core.store.catalog import CATALOG_FILENAME
from vsearch_app.core.store.data_dir import is_read_only
from vsearch_app.errors import CatalogError, DataDirError

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="read-only mounts and modes as on Linux")


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture(params=["read-only mount", "no write permission"])
def read_only_library(request, tmp_path):
    """(photo root, data folder) of an indexed library whose data folder is then made read-only."""
    root, data = tmp_path / "photos", tmp_path / "data"
    data.mkdir()
    mounted = False
    if request.param == "read-only mount":
        if os.geteuid() != 0:
            pytest.skip("mounting needs root")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(data)], capture_output=True,
                              text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted = True
    elif os.geteuid() == 0:
        pytest.skip("root writes through missing write permission")
    try:
        for i in range(6):
            harness.make_photo(root / f"p{i}.png", i)
        library = harness.open_library(data)
        library.add_folder(root)
        library.index()
        library.close()
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True)
        else:
            for folder in [data, *[p for p in data.rglob("*") if p.is_dir()]]:
                folder.chmod(0o555)
        assert is_read_only(data)
        yield root, data
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(data)], check=False)
        else:
            for folder in [data, *[p for p in data.rglob("*") if p.is_dir()]]:
                folder.chmod(0o755)


def test_search_works_and_writes_nothing(read_only_library):
    root, data = read_only_library
    before = _snapshot(data)
    library = harness.open_library(data, read_only=True)
    try:
        hits = library.search(str(root / "p3.png"), limit=3)  # an image query: its stored vector, found first
        assert hits[0].path == root / "p3.png" and hits[0].score == pytest.approx(1.0, abs=1e-4)
        assert library.counts()["indexed"] == 6
        with pytest.raises(DataDirError, match=r"^cannot index: the data folder .* is read-only; search still works$"):
            library.index()
        with pytest.raises(CatalogError, match="read-only"):
            library.add_folder(root.parent)
    finally:
        library.close()
    assert _snapshot(data) == before


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VSEARCH_DATA_DIR": str(data)}
    return subprocess.run([sys.executable, "-m", "vsearch_app", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=harness.REPO)


def test_the_cli_lists_and_reports_but_says_why_it_cannot_index(read_only_library):
    root, data = read_only_library
    listed = _cli(data, "folders", "list")
    assert listed.returncode == 0 and listed.stdout.strip() == str(root), listed.stderr
    status = _cli(data, "status", "--json", "--model", harness.MODEL_ID)
    assert status.returncode == 0, status.stderr
    assert sum(json.loads(status.stdout)["counts"].values()) == 6
    index = _cli(data, "index")
    assert index.returncode == 2
    assert index.stderr.splitlines() == [index.stderr.strip()]
    assert index.stderr.startswith(f"vsearch: cannot index: the data folder {data} is read-only")
    assert (data / CATALOG_FILENAME).exists()


def test_a_missing_index_on_a_read_only_mount_is_rebuilt_in_memory_quietly(tmp_path, caplog):
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    root, data = tmp_path / "photos", tmp_path / "data"
    data.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(data)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        for i in range(4):
            harness.make_photo(root / f"p{i}.png", i)
        library = harness.open_library(data)
        library.add_folder(root)
        library.index()
        library.close()
        for file in (data / "index").iterdir():
            file.unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True)
        library = harness.open_library(data, read_only=True)
        try:
            with caplog.at_level("WARNING"):
                hits = library.search(str(root / "p2.png"), limit=1)
            assert hits[0].path == root / "p2.png"
        finally:
            library.close()
        assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], caplog.text
        assert list((data / "index").iterdir()) == []
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)
