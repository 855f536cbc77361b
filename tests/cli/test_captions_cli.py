"""Captions from the command line (issue 13): `vsearch search` fuses stored captions into its ranking (with
`--caption-weight` and `config set caption-weight`), marks the hits they raised, and `vsearch captions export` prints
what is stored."""

from __future__ import annotations

import json
import sys

import pytest

from tests.core.library_fakes import make_photo
from vsearch_app.cli.main import main
from vsearch_app.core.service import LibraryService
from vsearch_app.core.store import captions
from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog
from vsearch_app.core.types import CaptionResult
from vsearch_app.settings import AppSettings


def run(capsys, *args: str, expect: int = 0) -> tuple[str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == expect, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    return out, err


def store_caption(data_dir, path, text: str, *, prompt: str = "caption en", stopped: bool = False) -> None:
    with Catalog.open(data_dir / CATALOG_FILENAME) as cat:
        result = CaptionResult(text, prompt, "tiny-pg", "cancelled" if stopped else "stop_token", token_count=4)
        assert captions.save(cat, captions.find_photo(cat, path), result, now=1_764_662_400.0).stored_at


@pytest.fixture
def library(tmp_path, tiny_siglip_dir, capsys):
    root = tmp_path / "photos"
    photos = [make_photo(root / f"img{i:02d}.png", i) for i in range(12)]
    data_dir = tmp_path / "vsearch-data"  # the conftest points VSEARCH_DATA_DIR here
    model = ["--model", str(tiny_siglip_dir), "--dtype", "float32"]
    index(data_dir, tiny_siglip_dir, root)
    return data_dir, photos, model


def index(data_dir, model_dir, root=None) -> None:
    """`vsearch folders add` and `vsearch index`, through the service (the CLI's progress bar keeps the stderr it
    found at import, which pytest's capture may have closed since)."""
    settings = AppSettings.resolve(data_dir, model=str(model_dir), dtype="float32")
    with LibraryService.open(settings) as service:
        if root is not None:
            service.add_folder(root)
        service.index()


def search_json(capsys, model, *extra: str) -> list[dict]:
    return json.loads(run(capsys, "search", "zorblax", "--limit", "12", "--json", *model, *extra)[0])


def ranking(hits: list[dict]) -> list[tuple]:
    """What the order is made of (every hit also carries its photo's caption, which storing captions changes)."""
    return [(h["path"], h["score"], h["caption_matched"]) for h in hits]


def test_a_word_only_one_caption_holds_puts_that_photo_first_and_weight_0_changes_nothing(library, capsys,
                                                                                            monkeypatch):
    data_dir, photos, model = library
    before = search_json(capsys, model)
    assert len(before) == 12 and not any(h["caption_matched"] for h in before)
    assert {h["caption"] for h in before} == {""}
    target = before[-1]["path"]
    store_caption(data_dir, target, "Zorblax asleep on the sofa")
    for hit in before[:4]:
        store_caption(data_dir, hit["path"], "a sofa in a living room")

    assert ranking(search_json(capsys, model, "--caption-weight", "0")) == ranking(before)  # identical
    fused = search_json(capsys, model, "--caption-weight", "10")
    assert fused[0] == {**before[-1], "caption_matched": True, "caption": "Zorblax asleep on the sofa"}
    assert ranking(fused[1:]) == ranking(before[:-1])

    # The library's setting is what a plain search uses.
    out, _ = run(capsys, "config", "set", "caption-weight", "10")
    assert out.startswith("caption-weight = 10;")
    assert search_json(capsys, model)[0]["path"] == target
    assert "caption-weight = 10  (set for this library" in run(capsys, "config", "show")[0]
    run(capsys, "config", "set", "caption-weight", "0")
    assert ranking(search_json(capsys, model)) == ranking(before)

    # On a terminal the raised hit says why.
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    lines = run(capsys, "search", "zorblax", "--limit", "3", "--caption-weight", "10", *model)[0].splitlines()
    assert lines[0].endswith(f"{target}  (caption: Zorblax asleep on the sofa)")
    assert "(caption" not in lines[1]


def test_bad_caption_weights_are_one_line_errors(library, capsys):
    _, _, model = library
    _, err = run(capsys, "search", "zorblax", "--caption-weight", "-1", *model, expect=2)
    assert err.strip() == "vsearch: the caption weight is a number from 0 (off) to 10, got -1.0 (--caption-weight)"
    _, err = run(capsys, "config", "set", "caption-weight", "lots", expect=2)
    assert err.strip() == "vsearch: the caption weight is a number from 0 (off) to 10, not 'lots'"
    _, err = run(capsys, "config", "set", "caption-weight", "11", expect=2)
    assert "Traceback" not in err and "(--caption-weight)" not in err
    out, _ = run(capsys, "config", "show", "--json")
    assert json.loads(out)["caption_weight"] == {"value": 1.0, "source": "the default", "default": 1.0}


def test_captions_export_prints_what_is_stored(library, capsys):
    data_dir, photos, _ = library
    store_caption(data_dir, photos[3], "a cat\twith a\nhat")
    store_caption(data_dir, photos[3], "a cat wi", prompt="describe en", stopped=True)
    store_caption(data_dir, photos[1], "Zorblax")
    out, err = run(capsys, "captions", "export")
    assert err == ""
    assert out.splitlines() == [
        f"{photos[1]}\ttiny-pg\tcaption en\tfinished\t2025-12-02T08:00:00Z\tZorblax",
        f"{photos[3]}\ttiny-pg\tcaption en\tfinished\t2025-12-02T08:00:00Z\ta cat with a hat",
        f"{photos[3]}\ttiny-pg\tdescribe en\tstopped\t2025-12-02T08:00:00Z\ta cat wi",
    ]
    document = json.loads(run(capsys, "captions", "export", "--json", "--prompt", "caption en")[0])
    assert document[1] == {"path": str(photos[3]), "model": "tiny-pg", "prompt": "caption en",
                           "text": "a cat\twith a\nhat", "stopped": False, "stop_reason": "stop_token", "tokens": 4,
                           "created_at": "2025-12-02T08:00:00Z"}
    assert [d["path"] for d in document] == [str(photos[1]), str(photos[3])]
    assert len(json.loads(run(capsys, "captions", "export", "--json", "--model", "tiny-pg")[0])) == 3
    out, err = run(capsys, "captions", "export", "--model", "other")
    assert out == "" and err.strip() == ("vsearch: no stored captions with model 'other' (`vsearch captions export` "
                                         "lists them all)")
    photos[1].write_bytes(photos[0].read_bytes())  # changed since: its caption describes what was there before
    index(data_dir, library[2][1])
    assert [line.split("\t")[0] for line in run(capsys, "captions", "export")[0].splitlines()] == [str(photos[3])] * 2


def test_captions_export_on_an_empty_library_says_so(tmp_path, capsys):
    out, err = run(capsys, "captions", "export")
    assert out == ""
    assert err.strip() == ("vsearch: no captions are stored in this library yet; `vsearch caption PHOTO` stores one "
                           "for a photo in a watched folder")
    out, _ = run(capsys, "captions", "export", "--json")
    assert json.loads(out) == []
