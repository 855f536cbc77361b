"""Which model a library belongs to, through the real CLI (issue: a failed run threw the library's vectors away, a
checkpoint replaced in place gave silently wrong results, and the library forgot its model).

Commands here are run without the Cli driver's automatic --model where the scenario needs that.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.library_fakes import TIMEOUT, Cli, embedded_count, make_photo
from tests.support.tiny_models import make_tiny_siglip
from vsearch_app.core.store.catalog import CATALOG_FILENAME

N_PHOTOS = 8


def vsearch(cli: Cli, *args: str, expect: int = 0, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real CLI with exactly ``args`` (no --model added)."""
    proc = subprocess.run([sys.executable, "-m", "vsearch_app", *args], env=env or cli.env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert proc.returncode == expect, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def library_state(data_dir: Path) -> dict:
    """What a run must not change: every catalog table's rows and every index file's bytes."""
    conn = sqlite3.connect(f"file:{data_dir / CATALOG_FILENAME}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        state = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}  # noqa: S608
    finally:
        conn.close()
    for path in sorted((data_dir / "index").rglob("*")):
        if path.is_file():
            state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@pytest.fixture
def model_dir(tmp_path, tiny_siglip_dir):
    """A private copy of the tiny model, so a test may replace its weights in place."""
    return Path(shutil.copytree(tiny_siglip_dir, tmp_path / "my-model"))


@pytest.fixture
def indexed(tmp_path, model_dir):
    cli = Cli(tmp_path, model_dir)
    root = tmp_path / "photos"
    for i in range(N_PHOTOS):
        make_photo(root / f"img{i}.png", i)
    cli.run("folders", "add", str(root))
    assert embedded_count(cli.run("index").stderr) == N_PHOTOS
    return cli


def test_a_failed_index_run_changes_nothing(tmp_path, indexed):
    cli = indexed
    before = library_state(cli.data_dir)
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(cli.model_dir / "config.json", no_weights / "config.json")
    for model, expected in ((str(tmp_path / "my-modell"), "does not exist"), ("org/tinyy", "not downloaded"),
                            (str(no_weights), "model.safetensors")):
        proc = vsearch(cli, "index", "--model", model, expect=2)
        assert expected in proc.stderr and "Traceback" not in proc.stderr
        assert library_state(cli.data_dir) == before, f"--model {model} changed the library"
    # Without --model the library's own model is used: nothing to do, nothing changed.
    proc = vsearch(cli, "index")
    assert embedded_count(proc.stderr) == 0
    assert library_state(cli.data_dir) == before


def test_switching_models_keeps_both_sets_of_vectors(tmp_path, indexed):
    cli = indexed
    other = make_tiny_siglip(tmp_path / "other-model", seed=1)
    switched = vsearch(cli, "index", "--model", str(other))
    assert embedded_count(switched.stderr) == N_PHOTOS and "now searches with" in switched.stderr
    status = vsearch(cli, "status").stdout
    assert f"{N_PHOTOS} indexed, 0 pending" in status and f"{N_PHOTOS} also indexed with {cli.model_dir}" in status
    back = vsearch(cli, "index", "--model", str(cli.model_dir))  # switching back costs no embedding
    assert embedded_count(back.stderr) == 0
    assert vsearch(cli, "config", "show").stdout.startswith(f"model = {cli.model_dir}")


def test_a_checkpoint_replaced_in_place_is_a_new_model(tmp_path, indexed):
    cli = indexed
    probe = str(cli.model_dir.parent / "photos" / "img3.png")
    before = vsearch(cli, "search", probe, "--json", "--limit", "3").stdout
    # Retrained into the same folder: same architecture, same file size, new weights.
    shutil.rmtree(cli.model_dir)
    make_tiny_siglip(cli.model_dir, seed=7)
    proc = vsearch(cli, "index")
    assert embedded_count(proc.stderr) == N_PHOTOS  # every photo again, under the new identity
    assert vsearch(cli, "search", probe, "--json", "--limit", "3").stdout != before
    with sqlite3.connect(cli.data_dir / CATALOG_FILENAME) as conn:
        models = dict(conn.execute("SELECT model_id, dim FROM models").fetchall())
    assert len(models) == 2 and all(key.startswith(f"{cli.model_dir}@") for key in models)
    # A different vector size in the same folder: a third model, never mixed with the others.
    shutil.rmtree(cli.model_dir)
    make_tiny_siglip(cli.model_dir, hidden=48, seed=8)
    assert embedded_count(vsearch(cli, "index").stderr) == N_PHOTOS
    hits = vsearch(cli, "search", probe, "--json", "--limit", "3").stdout
    assert '"score"' in hits and "dimension" not in hits
    with sqlite3.connect(cli.data_dir / CATALOG_FILENAME) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT dim FROM models")) == [32, 32, 48]


def test_the_library_remembers_its_model(tmp_path, indexed):
    cli = indexed
    hits = vsearch(cli, "search", "a red circle", "--json")  # no --model: the library's own
    assert hits.stdout.count('"path"') == N_PHOTOS
    status = vsearch(cli, "status").stdout
    assert f"model:   {cli.model_dir}" in status and f"{N_PHOTOS} indexed, 0 pending" in status

    other = make_tiny_siglip(tmp_path / "other-model", seed=1)
    wrong = vsearch(cli, "search", "a red circle", "--model", str(other), expect=2)
    assert wrong.stderr.count("\n") == 1 and "Traceback" not in wrong.stderr
    assert f"no photos indexed with {other}; {N_PHOTOS} with {cli.model_dir}" in wrong.stderr
    assert f"vsearch index --model {other}" in wrong.stderr
    # The environment variable chooses too, and `config set` changes what is remembered.
    env = {**cli.env, "VSEARCH_MODEL": str(other)}
    assert "no photos indexed with" in vsearch(cli, "search", "a red circle", env=env, expect=2).stderr
    vsearch(cli, "config", "set", "model", str(other))
    assert "no photos indexed with" in vsearch(cli, "search", "red", expect=2).stderr
    vsearch(cli, "config", "unset", "model")
    assert "is not downloaded yet" in vsearch(cli, "search", "red", expect=2).stderr  # the hub default is absent
    vsearch(cli, "config", "set", "model", str(cli.model_dir))
    assert vsearch(cli, "search", "red", "--json").stdout.count('"path"') == N_PHOTOS


def test_search_and_index_say_what_to_do_in_an_empty_library(tmp_path, model_dir):
    cli = Cli(tmp_path, model_dir)
    assert "vsearch folders add" in cli.run("search", "anything", expect=2).stderr
    # ... even before any model is downloaded (a new user's first command)
    assert "vsearch folders add" in vsearch(cli, "search", "anything", expect=2).stderr
    assert "vsearch folders add" in vsearch(cli, "duplicates", expect=2).stderr
    assert "vsearch folders add" in cli.run("index", expect=2).stderr
    (tmp_path / "empty").mkdir()
    cli.run("folders", "add", str(tmp_path / "empty"))
    assert "no photos found in the watched folders yet" in cli.run("search", "anything", expect=2).stderr
    make_photo(tmp_path / "empty" / "a.png", 1)
    cli.run("index")
    assert cli.json("search", "anything") != []
