"""LibraryService.caption_many (core/engine/caption_batch.py) with the tiny PaliGemma: one model load per job,
folders expanded to the library's photos, resumable after a cancel, undecodable photos reported."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from PIL import Image

from tests.support.tiny_paligemma import make_tiny_paligemma
from vsearch_app.core.engine.captioner import Captioner
from vsearch_app.core.service import LibraryService
from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog
from vsearch_app.core.types import CaptionSettings
from vsearch_app.errors import InvalidArgumentError, ModelNotFoundError
from vsearch_app.settings import AppSettings

SHORT = CaptionSettings(max_tokens=5)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_paligemma(tmp_path_factory.mktemp("batch_pg"), seed=0)


@pytest.fixture
def generations(monkeypatch):
    """Every generation the captioner runs (path order), and every model load."""
    seen = {"captions": [], "loads": 0}
    caption, load = Captioner.caption, Captioner.load.__func__

    def counting_caption(self, image, *args, **kwargs):
        seen["captions"].append(image)
        return caption(self, image, *args, **kwargs)

    def counting_load(cls, *args, **kwargs):
        seen["loads"] += 1
        return load(cls, *args, **kwargs)

    monkeypatch.setattr(Captioner, "caption", counting_caption)
    monkeypatch.setattr(Captioner, "load", classmethod(counting_load))
    return seen


def save_photo(path, seed):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def library(tmp_path, model_dir):
    """A data folder whose catalog knows 5 photos in "photos" and "photos/sub", and one unreadable file."""
    root = tmp_path / "photos"
    photos = [save_photo(root / f"p{i}.png", i) for i in range(3)] + [save_photo(root / "sub" / f"s{i}.png", 10 + i)
                                                                     for i in range(2)]
    broken = root / "broken.png"
    broken.write_bytes(b"not a png")
    settings = AppSettings.resolve(tmp_path / "data", caption_model=str(model_dir), device="cpu", dtype="float32")
    with Catalog.open(settings.data_dir / CATALOG_FILENAME) as cat:
        cat.add_root(root)
        for photo in [*photos, broken]:
            st = os.stat(photo)
            cat.mark_pending(photo, st.st_size, st.st_mtime_ns)
    return settings, root, photos, broken


def test_a_folder_job_captions_every_photo_once_with_one_model_load(library, generations):
    settings, root, photos, broken = library
    results, progress = [], []
    with LibraryService.open(settings) as session:
        report = session.caption_many([root], SHORT, on_result=lambda p, r: results.append((p, r)),
                                      progress=progress.append)
        assert report.total == 6 and report.captioned == 5 and report.skipped == 0 and not report.cancelled
        assert [f.path for f in report.failed] == [broken]
        assert sorted(p for p, _ in results) == sorted(photos)
        assert all(r.stored_at is not None and r.text for _, r in results)
        for photo in photos:
            assert session.stored_caption(photo, prompt=SHORT.prompt).text
        # Run again: everything is there, nothing is generated, the model is not even asked for.
        again = session.caption_many([root], SHORT)
        assert again.captioned == 0 and again.skipped == 5
    assert generations["loads"] == 1 and len(generations["captions"]) == 5
    assert progress[0].phase == "loading" and progress[-1].phase == "done"
    assert progress[-1].done == progress[-1].total == 6 and progress[-1].captioned == 5


def test_a_cancelled_job_resumes_with_the_rest(library, generations):
    settings, root, photos, _ = library
    cancel = threading.Event()
    written = []

    def after_two(path, result):
        written.append(path)
        if len(written) == 2:
            cancel.set()

    with LibraryService.open(settings) as session:
        first = session.caption_many(photos, SHORT, on_result=after_two, cancel=cancel)
        assert first.cancelled and first.captioned == 2
        second = session.caption_many(photos, SHORT, on_result=lambda p, r: written.append(p))
        assert not second.cancelled and second.captioned == 3 and second.skipped == 2
    assert sorted(written) == sorted(photos)  # each photo written exactly once over the two jobs
    assert len(generations["captions"]) == 5


def test_a_photo_stopped_mid_caption_is_captioned_again(library):
    settings, _, photos, _ = library
    cancel = threading.Event()
    with LibraryService.open(settings) as session:
        partial = session.caption(photos[0], CaptionSettings(max_tokens=20),
                                  on_token=lambda piece: cancel.set(), cancel=cancel)
        assert partial.stopped and partial.stored_at is not None
        report = session.caption_many(photos[:1], CaptionSettings(max_tokens=20))
        assert report.captioned == 1 and report.skipped == 0
        assert not session.stored_caption(photos[0]).stopped


def test_bad_settings_and_a_missing_model_fail_before_anything_is_written(library, tmp_path):
    settings, root, photos, _ = library
    with LibraryService.open(settings) as session:
        with pytest.raises(InvalidArgumentError) as caught:
            session.caption_many([root], CaptionSettings(max_tokens=0))
        assert caught.value.param == "max_tokens"
    missing = AppSettings.resolve(settings.data_dir, caption_model="google/paligemma-3b-mix-224")
    with LibraryService.open(missing) as session:
        with pytest.raises(ModelNotFoundError, match="licence"):
            session.caption_many(photos, SHORT)
        assert session.stored_caption(photos[0]) is None


def test_set_caption_model_switches_the_session_to_a_folder(library, model_dir):
    settings, _, photos, _ = library
    missing = AppSettings.resolve(settings.data_dir, caption_model="google/paligemma-3b-mix-224")
    with LibraryService.open(missing) as session:
        with pytest.raises(ModelNotFoundError):
            session.load_captioner()
        session.set_caption_model(str(model_dir))
        result = session.caption(photos[0], SHORT)
        assert result.text and result.model == str(model_dir.resolve())
        with pytest.raises(InvalidArgumentError):
            session.set_caption_model("  ")
