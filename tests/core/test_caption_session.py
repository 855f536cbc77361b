"""Captions through the session (issue 11): LibraryService.load_captioner / caption / stored_caption / close, with
the tiny PaliGemma. The model is loaded once per session, results are stored per photo, caption model and prompt,
and a stored caption comes back without any model."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support.tiny_paligemma import make_tiny_paligemma
from vsearch_app.core.engine.captioner import Captioner
from vsearch_app.core.service import LibraryService
from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog
from vsearch_app.core.types import CaptionSettings
from vsearch_app.errors import ImageDecodeError, InvalidArgumentError, ModelNotFoundError, VSearchError
from vsearch_app.modeling.layers import can_pack
from vsearch_app.settings import AppSettings

SHORT = CaptionSettings(max_tokens=6)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_paligemma(tmp_path_factory.mktemp("session_pg"), seed=0)


@pytest.fixture
def loads(monkeypatch):
    """Counts every caption model load (Captioner.load) made while the test runs."""
    calls = []
    original = Captioner.load.__func__

    def counting(cls, *args, **kwargs):
        calls.append(args)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Captioner, "load", classmethod(counting))
    return calls


@pytest.fixture
def no_model(monkeypatch):
    """Any caption model load fails the test."""

    def refuse(cls, *args, **kwargs):
        raise AssertionError("the caption model was loaded")

    monkeypatch.setattr(Captioner, "load", classmethod(refuse))


def save_photo(path, seed, size=(40, 30), fmt=None):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, format=fmt)
    return path


class Lib:
    """A data folder whose catalog knows some photos (as a scan would leave them: pending, no model needed)."""

    def __init__(self, tmp_path, model_dir):
        self.root = tmp_path / "photos"
        self.settings = AppSettings.resolve(tmp_path / "data", caption_model=str(model_dir), device="cpu",
                                            dtype="float32")
        self.photos = [save_photo(self.root / f"p{i}.png", i) for i in range(3)]
        with self.catalog() as cat:
            cat.add_root(self.root)
            for photo in self.photos:
                self.scanned(cat, photo)

    def catalog(self) -> Catalog:
        return Catalog.open(self.settings.data_dir / CATALOG_FILENAME)

    @staticmethod
    def scanned(cat, photo):
        st = os.stat(photo)
        return cat.mark_pending(photo, st.st_size, st.st_mtime_ns)

    def open(self) -> LibraryService:
        return LibraryService.open(self.settings)


@pytest.fixture
def lib(tmp_path, model_dir):
    return Lib(tmp_path, model_dir)


def test_the_captioner_is_loaded_once_across_three_captions(lib, loads, tmp_path):
    outside = save_photo(tmp_path / "elsewhere" / "x.png", 9)
    with lib.open() as session:
        first = session.caption(lib.photos[0], SHORT)
        second = session.caption(lib.photos[1], CaptionSettings(prompt="describe en", max_tokens=4))
        third = session.caption(outside, SHORT)
        assert session.load_captioner() is True  # already loaded: at once, no second load
    assert len(loads) == 1
    assert all(r.text and r.token_count for r in (first, second, third))
    assert first.model == str(lib.settings.caption_model) and second.prompt == "describe en"


def test_concurrent_loads_share_one_model_and_report_progress(lib, loads):
    seen, results = [], []
    with lib.open() as session:
        threads = [threading.Thread(target=lambda: results.append(session.load_captioner(seen.append)))
                   for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == [True, True, True] and len(loads) == 1
    assert [p.phase for p in seen] == ["locating", "reading weights", "preparing", "ready"]
    assert [p.done for p in seen] == [0, 1, 2, 3] and {p.total for p in seen} == {3}


def test_a_cancelled_load_keeps_nothing_and_the_next_one_loads(lib, loads):
    cancel = threading.Event()

    def cancel_once_reading(progress):
        if progress.phase == "reading weights":
            cancel.set()

    with lib.open() as session:
        assert session.load_captioner(cancel_once_reading, cancel) is False
        assert len(loads) == 1
        assert session.load_captioner() is True
        assert len(loads) == 2
        assert session.caption(lib.photos[0], SHORT).text


def test_a_stored_caption_comes_back_without_loading_the_model(lib, monkeypatch):
    settings = CaptionSettings(prompt="caption en", max_tokens=5, sample=True, temperature=1.3, top_p=0.95, seed=3)
    with lib.open() as session:
        assert session.stored_caption(lib.photos[0]) is None
        made = session.caption(lib.photos[0], settings)
    assert made.stored_at is not None and made.settings == settings
    no_model_loaded = []
    monkeypatch.setattr(Captioner, "load", classmethod(lambda cls, *a, **k: no_model_loaded.append(a)))
    with lib.open() as session:
        stored = session.stored_caption(lib.photos[0])
        assert session.stored_caption(lib.photos[1]) is None
    assert no_model_loaded == []
    assert stored.text == made.text and stored.prompt == "caption en" and stored.model == made.model
    assert stored.token_count == made.token_count and stored.stop_reason == made.stop_reason
    assert stored.settings == settings and stored.stored_at == made.stored_at
    assert stored.decode_tokens_per_s == pytest.approx(made.decode_tokens_per_s)


def test_captions_are_kept_per_prompt_and_model(lib, no_model):
    from vsearch_app.core.store import captions
    from vsearch_app.core.types import CaptionResult

    photo = lib.photos[0]
    with lib.catalog() as cat:
        ref = captions.find_photo(cat, photo)
        for when, (model, prompt, text) in enumerate(
            [("m1", "caption en", "a house"), ("m1", "question: what is this?", "a dog"), ("m2", "caption en", "x")]
        ):
            captions.save(cat, ref, CaptionResult(text, prompt, model, "stop_token", token_count=2), now=when)
    with lib.open() as session:
        assert session.stored_caption(photo, prompt="caption en", model="m1").text == "a house"
        assert session.stored_caption(photo, prompt="question: what is this?").text == "a dog"
        assert session.stored_caption(photo, model="m2").text == "x"
        assert session.stored_caption(photo).text == "x"  # the newest
        assert session.stored_caption(photo, model="m3") is None
    with lib.catalog() as cat:  # the file's caption column mirrors the newest caption, never a question's answer
        assert cat.get_file(photo).caption == "x"


def test_a_caption_follows_a_renamed_photo_and_goes_with_it(lib, no_model):
    from vsearch_app.core.store import captions
    from vsearch_app.core.types import CaptionResult

    old = lib.photos[0]
    with lib.catalog() as cat:
        captions.save(cat, captions.find_photo(cat, old),
                           CaptionResult("a red house", "caption en", "m", "stop_token", token_count=4))
    new = lib.root / "holiday" / "renamed.png"
    new.parent.mkdir()
    old.rename(new)
    with lib.catalog() as cat:
        assert cat.rename_file(old, new) is not None
    with lib.open() as session:
        assert session.stored_caption(old) is None
        assert session.stored_caption(new).text == "a red house"
    with lib.catalog() as cat:
        cat.delete_file(new)
        assert cat.query("SELECT count(*) FROM captions")[0][0] == 0


def test_a_caption_of_changed_content_is_stale(lib, no_model):
    from vsearch_app.core.store import captions
    from vsearch_app.core.types import CaptionResult

    photo = lib.photos[1]
    with lib.catalog() as cat:
        captions.save(cat, captions.find_photo(cat, photo),
                           CaptionResult("old picture", "caption en", "m", "stop_token", token_count=2))
    save_photo(photo, 42, size=(50, 20))  # edited in place: new size and mtime
    with lib.catalog() as cat:
        lib.scanned(cat, photo)
    with lib.open() as session:
        assert session.stored_caption(photo) is None


def test_stop_mid_generation_keeps_the_partial_text_marked_stopped(lib):
    cancel = threading.Event()
    pieces = []

    def on_token(piece):
        pieces.append(piece)
        if len(pieces) == 2:
            cancel.set()

    with lib.open() as session:
        full = session.caption(lib.photos[2], CaptionSettings(prompt="describe en", max_tokens=8))
        assert full.token_count == 8 and full.stop_reason == "max_tokens"
        stopped_early = session.caption(lib.photos[0], CaptionSettings(max_tokens=20), on_token=on_token,
                                        cancel=cancel)
        assert stopped_early.stopped and stopped_early.token_count == 2 and stopped_early.stored_at is not None
        assert stopped_early.text == "".join(pieces)
        stored = session.stored_caption(lib.photos[0])
        assert stored.stopped and stored.text == stopped_early.text
        # A stopped generation never replaces a finished caption of the same photo, model and prompt.
        pieces.clear()
        cancel.clear()
        again = session.caption(lib.photos[2], CaptionSettings(prompt="describe en", max_tokens=20),
                                on_token=on_token, cancel=cancel)
        assert again.stopped and again.stored_at is None
        assert session.stored_caption(lib.photos[2]).text == full.text
        # Cancelled before it started: nothing generated, nothing stored.
        nothing = session.caption(lib.photos[1], SHORT, cancel=cancel)
        assert nothing.stopped and nothing.text == "" and nothing.token_count == 0 and nothing.stored_at is None
        assert session.stored_caption(lib.photos[1]) is None
    with lib.catalog() as cat:  # the file's caption column only gets finished captions
        assert cat.get_file(lib.photos[0]).caption == ""
        assert cat.get_file(lib.photos[2]).caption == full.text


def test_a_photo_outside_the_library_is_captioned_but_not_stored(lib, tmp_path):
    outside = save_photo(tmp_path / "other" / "o.png", 5)
    with lib.open() as session:
        result = session.caption(outside, SHORT)
        assert result.text and result.stored_at is None
        assert session.stored_caption(outside) is None


def test_the_photo_is_decoded_only_as_large_as_the_model_needs(lib, monkeypatch):
    big = save_photo(lib.root / "big.jpg", 7, size=(1600, 1200), fmt="JPEG")
    seen = []
    original = Captioner.caption

    def spy(self, image, *args, **kwargs):
        seen.append(image.size)
        return original(self, image, *args, **kwargs)

    monkeypatch.setattr(Captioner, "caption", spy)
    with lib.open() as session:
        session.caption(big, SHORT)  # before the model is loaded: the size comes from the checkpoint's config
        session.caption(big, SHORT)  # loaded: from the model
    # The tiny model takes 32 px: JPEG draft decoding at 1/8 scale gives 200 x 150, not 1600 x 1200.
    assert seen == [(200, 150), (200, 150)]


@pytest.mark.parametrize(
    ("settings", "param", "words"),
    [
        (CaptionSettings(prompt="  "), "prompt", "prompt is empty"),
        (CaptionSettings(prompt="<image> caption en"), "prompt", "<image>"),
        (CaptionSettings(max_tokens=0), "max_tokens", "max tokens"),
        (CaptionSettings(max_tokens=2.5), "max_tokens", "whole number"),
        (CaptionSettings(top_p=0.0), "top_p", "top-p"),
        (CaptionSettings(top_p=float("nan")), "top_p", "top-p"),
        (CaptionSettings(sample=True, temperature=0.0), "temperature", "temperature"),
        (CaptionSettings(temperature=float("inf")), "temperature", "temperature"),
        (CaptionSettings(seed=2**70), "seed", "seed"),
        (CaptionSettings(seed="7"), "seed", "seed"),
    ],
)
def test_bad_settings_fail_before_the_model_loads(lib, no_model, settings, param, words):
    with lib.open() as session, pytest.raises(InvalidArgumentError, match=words) as caught:
        session.caption(lib.photos[0], settings)
    assert caught.value.param == param
    assert "--" not in str(caught.value)


def test_a_bad_photo_fails_before_the_model_loads(lib, no_model, tmp_path):
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("hello")
    with lib.open() as session:
        with pytest.raises(ImageDecodeError, match="not found"):
            session.caption(tmp_path / "missing.jpg", SHORT)
        with pytest.raises(ImageDecodeError, match="not an image"):
            session.caption(not_image, SHORT)


def test_a_missing_caption_model_is_a_clear_error(tmp_path):
    photo = save_photo(tmp_path / "p.png", 1)
    settings = AppSettings.resolve(tmp_path / "data", caption_model="google/paligemma-3b-mix-224")
    with LibraryService.open(settings) as session:
        with pytest.raises(ModelNotFoundError, match="licence"):
            session.load_captioner()
        with pytest.raises(ModelNotFoundError, match="licence"):
            session.caption(photo, SHORT)


def test_close_stops_a_running_caption_stores_it_and_releases_the_model(lib):
    session = lib.open()
    started = threading.Event()
    release = threading.Event()
    outcome = []

    def on_token(piece):
        started.set()
        release.wait(10)

    def run():
        outcome.append(session.caption(lib.photos[0], CaptionSettings(max_tokens=50), on_token=on_token))

    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(60)
    closer = threading.Thread(target=session.close)
    closer.start()
    assert session._captions._closed.wait(10)  # closing has begun: the generation stops at its next step
    release.set()
    closer.join(30)
    worker.join(30)
    assert not closer.is_alive() and not worker.is_alive()
    result = outcome[0]
    assert result.stopped and result.token_count < 50 and result.stored_at is not None
    assert session._captions._captioner is None  # the model is released
    with pytest.raises(VSearchError, match="closed"):
        session.caption(lib.photos[0], SHORT)
    session.close()  # twice is fine
    with lib.open() as again:
        assert again.stored_caption(lib.photos[0]).text == result.text


def test_a_closed_session_refuses_captions_even_if_it_never_made_one(lib, no_model):
    session = lib.open()
    session.close()
    with pytest.raises(VSearchError, match="closed"):
        session.load_captioner()


def packer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "caption-packer" and t.is_alive()]


@pytest.mark.skipif(not can_pack(torch.bfloat16, torch.device("cpu")), reason="no oneDNN bf16 packing here")
def test_packing_runs_after_the_first_caption_or_an_early_load_and_close_joins_it(tmp_path, model_dir):
    settings = AppSettings.resolve(tmp_path / "data", caption_model=str(model_dir), device="cpu", dtype="bfloat16")
    photo = save_photo(tmp_path / "x.png", 4)
    with LibraryService.open(settings) as session:
        first = session.caption(photo, SHORT)  # loads without packing: the first caption runs on the plain weights
        captioner = session._captions._captioner
        assert captioner.wait_until_packed(60)  # started when the caption ended
        assert session.caption(photo, SHORT).token_ids == first.token_ids
    assert not packer_threads()

    with LibraryService.open(settings) as session:
        assert session.load_captioner()  # a load ahead of time packs at once
        assert session._captions._captioner.wait_until_packed(60)

    with LibraryService.open(settings) as session:  # closing mid-packing stops it and joins its thread
        session.caption(photo, SHORT)
    assert not packer_threads()
