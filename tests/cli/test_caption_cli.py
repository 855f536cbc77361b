"""`vsearch caption` as a user runs it: streamed text, --json, and clear errors (exit 2, no traceback)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.support.tiny_paligemma import make_tiny_paligemma
from vsearch_app.cli.main import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_paligemma(tmp_path_factory.mktemp("cli_pg"), seed=0)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(path)
    return path


def test_json_output(model_dir, photo, capsys):
    code = main(["caption", str(photo), "--caption-model", str(model_dir), "--dtype", "float32", "--max-tokens", "6",
                 "--prompt", "describe en", "--json"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) >= {"text", "token_ids", "prompt", "prefill_s", "decode_tokens_per_s"}
    assert document["prompt"] == "describe en"
    assert 1 <= len(document["token_ids"]) <= 6
    assert document["prefill_s"] > 0


def test_streamed_text_equals_json_text_and_seed_repeats(model_dir, photo, capsys):
    args = ["caption", str(photo), "--caption-model", str(model_dir), "--dtype", "float32", "--max-tokens", "8",
            "--sample", "--temperature", "1.2", "--top-p", "0.95", "--seed", "7"]
    assert main(args) == 0
    streamed = capsys.readouterr().out
    assert main([*args, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert streamed == document["text"] + "\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--prompt", ""], "prompt is empty"),
        (["--max-tokens", "0"], "max tokens"),
        (["--top-p", "0"], "top-p"),
        (["--top-p", "1.5"], "top-p"),
        (["--sample", "--temperature", "0"], "temperature"),
    ],
)
def test_bad_arguments(photo, capsys, extra, message):
    assert main(["caption", str(photo), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_image(tmp_path, capsys):
    assert main(["caption", str(tmp_path / "nope.jpg")]) == 2
    err = capsys.readouterr().err
    assert "nope.jpg" in err and "not found" in err and "Traceback" not in err


def test_not_an_image(tmp_path, capsys):
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(b"this is not a jpeg")
    assert main(["caption", str(fake)]) == 2
    err = capsys.readouterr().err
    assert "fake.jpg" in err and "not an image" in err


def test_missing_gated_model_explains_licence_and_login(photo, capsys):
    assert main(["caption", str(photo), "--caption-model", "google/paligemma-3b-mix-224"]) == 2
    err = capsys.readouterr().err
    assert "huggingface.co/google/paligemma-3b-mix-224" in err and "licence" in err
    assert "vsearch models download google/paligemma-3b-mix-224" in err
    assert "HF_TOKEN" in err and "hf auth login" in err
    assert "Traceback" not in err


def test_missing_local_model_folder(photo, tmp_path, capsys):
    assert main(["caption", str(photo), "--caption-model", str(tmp_path / "no_such_model")]) == 2
    assert "no_such_model" in capsys.readouterr().err


def test_model_from_the_hub_cache_by_id(model_dir, photo, tmp_path, monkeypatch, capsys):
    """A snapshot in the standard hub-cache layout is found by its id, offline."""
    import shutil

    cache = tmp_path / "hub"
    repo = cache / "models--google--paligemma-3b-mix-224"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    code = main(["caption", str(photo), "--caption-model", "google/paligemma-3b-mix-224", "--dtype", "float32",
                 "--max-tokens", "3", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["model"] == "google/paligemma-3b-mix-224"


def test_a_photo_in_the_library_gets_its_caption_stored(model_dir, tmp_path, capsys):
    """Same output as for any photo, and the caption is kept in the library (the session's code path)."""
    import os

    from vsearch_app.core.service import LibraryService
    from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog
    from vsearch_app.settings import AppSettings

    photos = tmp_path / "photos"
    photos.mkdir()
    inside = photos / "beach.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(inside)
    data = tmp_path / "data"
    with Catalog.open(data / CATALOG_FILENAME) as cat:  # as a scan of the folder leaves it
        cat.add_root(photos)
        cat.mark_pending(inside, os.stat(inside).st_size, os.stat(inside).st_mtime_ns)
    args = ["caption", str(inside), "--data-dir", str(data), "--caption-model", str(model_dir), "--dtype", "float32",
            "--max-tokens", "5", "--prompt", "describe en"]
    assert main(args) == 0
    streamed = capsys.readouterr().out
    assert main([*args, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert streamed == document["text"] + "\n" and document["model"] == str(model_dir.resolve())
    with LibraryService.open(AppSettings.resolve(data)) as session:
        stored = session.stored_caption(inside, prompt="describe en")
    assert stored is not None and stored.text == document["text"] and stored.model == document["model"]
    assert stored.token_count == len(document["token_ids"]) and stored.settings.max_tokens == 5
