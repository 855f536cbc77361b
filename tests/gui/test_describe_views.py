"""The Describe panel's parts without an engine: the photo (upright, fitted, 100% within a decode cap, a file Qt
cannot read), the facts, the generation settings the controls make, and the batch job's words."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSize

from vsearch_app.core.types import (
    CaptionBatchProgress,
    CaptionBatchReport,
    CaptionResult,
    CaptionSettings,
    FailedFile,
    SearchHit,
    Thumbnail,
)
from vsearch_app.gui.engine.caption_lane import CaptionLane
from vsearch_app.gui.engine.query_lane import ServiceGate
from vsearch_app.gui.views import photo_view
from vsearch_app.gui.views.caption_jobs import progress_text, report_text
from vsearch_app.gui.views.describe_panel import DescribePanel, photo_facts, settings_text
from vsearch_app.gui.views.photo_view import PhotoView


def save_photo(path: Path, size=(300, 200), orientation: int | None = None) -> Path:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", exif=exif.tobytes())
    return path


def decoded(qtbot, view: PhotoView):
    qtbot.waitUntil(lambda: not view.pending, timeout=5_000)
    return view.canvas.pixmap


@pytest.fixture
def panel(qtbot):
    captions = CaptionLane(ServiceGate())  # never started: the panel's own logic only
    reads = []

    def stored_caption(path, prompt, on_done):
        reads.append((path, prompt))
        on_done(CaptionResult("a stored caption", prompt or "caption en", "m", "stop_token", token_count=4,
                              prefill_s=1.25, decode_tokens_per_s=12.5, stored_at=1_700_000_000.0))

    controller = SimpleNamespace(captions=captions, stored_caption=stored_caption,
                                 thumbnail=lambda path, side: Thumbnail(path, None, "cannot decode"))
    widget = DescribePanel(controller)
    widget.reads = reads
    qtbot.addWidget(widget)
    yield widget
    captions.shutdown()


def test_an_exif_turned_photo_is_shown_upright(qtbot, tmp_path):
    view = PhotoView()
    qtbot.addWidget(view)
    view.set_photo(save_photo(tmp_path / "turned.jpg", (300, 200), orientation=6))
    assert view.full_size == QSize(200, 300)  # known from the header at once
    pixmap = decoded(qtbot, view)
    assert (pixmap.width(), pixmap.height()) == (200, 300)


def test_100_percent_decodes_at_most_the_cap(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(photo_view, "FULL_SIZE_MAX_PIXELS", 120 * 80)
    view = PhotoView()
    qtbot.addWidget(view)
    view.set_photo(save_photo(tmp_path / "big.jpg", (600, 400)))
    assert decoded(qtbot, view).width() == 600  # fitted: within FIT_DECODE_SIDE, the photo as it is
    view.set_actual_size(True)
    pixmap = view.canvas.pixmap
    assert pixmap.width() * pixmap.height() <= 120 * 80 and pixmap.width() > pixmap.height()
    assert view.canvas.size() == pixmap.deviceIndependentSize().toSize()  # scrolls rather than shrinks
    view.set_actual_size(False)
    assert view.canvas.pixmap.width() == 600


def test_a_file_qt_cannot_read_says_so(qtbot, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    view = PhotoView(fallback=lambda path, side: Thumbnail(path, None, "cannot decode"))
    qtbot.addWidget(view)
    view.set_photo(broken)
    assert decoded(qtbot, view) is None
    assert view.full_size is None


def test_the_facts_come_from_the_hit_or_the_file(tmp_path):
    photo = save_photo(tmp_path / "Trip" / "a.jpg")
    hit = SearchHit(photo, 0.3, size=3_200_000, width=4032, height=3024, taken_at="2021-05-03T14:22:01",
                    taken_at_source="exif", camera="Google Pixel 7")
    assert photo_facts(photo, hit, None) == [str(photo.parent), "4,032 × 3,024 · 3.2 MB", "Taken 3 May 2021, 14:22",
                                             "Google Pixel 7"]
    facts = photo_facts(photo, None, QSize(300, 200))
    assert facts[0] == str(photo.parent) and facts[1].startswith("300 × 200 · ") and facts[2].startswith("Modified ")


def test_the_controls_make_the_cli_defaults_and_sampling_settings(panel):
    assert panel.caption_settings() == CaptionSettings()
    panel.prompt.setCurrentIndex(1)
    panel.mode.setCurrentIndex(1)
    panel.temperature.setValue(0.5)
    panel.top_p.setValue(0.75)
    panel.seed.setValue(7)
    panel.max_tokens.setValue(30)
    assert panel.caption_settings() == CaptionSettings(prompt="describe en", max_tokens=30, sample=True,
                                                       temperature=0.5, top_p=0.75, seed=7)
    panel.prompt.setEditText("this building is")
    assert panel.caption_settings().prompt == "this building is"
    panel.set_defaults()
    assert panel.caption_settings().max_tokens == 100 and not panel.temperature.isEnabled()


def test_a_photo_shows_its_stored_caption(panel, qtbot, tmp_path):
    assert panel.name.text() == "No photo selected" and not panel.generate_button.isEnabled()
    photo = save_photo(tmp_path / "a.jpg")
    panel.show_photo(photo)
    assert panel.reads == [(photo, "caption en")]
    assert panel.caption_text == "a stored caption" and "Stored caption" in panel.status.text()
    assert panel.stats.text() == "first word after 1.2 s · 12.5 tokens/s · 4 tokens"
    assert panel.generate_button.text() == "Generate Again" and panel.generate_button.isEnabled()
    assert not panel.stop_button.isVisible()
    panel.show_photo(None)
    assert not panel.generate_button.isEnabled() and panel.caption_text == ""


def test_the_batch_job_words():
    assert progress_text(CaptionBatchProgress(0, 12, phase="loading")) == "Loading the caption model…"
    assert progress_text(CaptionBatchProgress(3, 1200), queued=1) == "Describing photos 3 / 1,200 · 1 more job waiting"
    assert report_text(CaptionBatchReport(total=5, captioned=3, skipped=2)) == \
        "Described 3 photos · 2 already had a caption"
    stopped = CaptionBatchReport(total=9, captioned=1, failed=[FailedFile(Path("x.jpg"), "bad")], cancelled=True)
    assert report_text(stopped) == ("Stopped after 1 photo · 1 could not be read · the rest is described when you run "
                                    "it again")
    assert report_text(CaptionBatchReport()).startswith("No photos to describe")


def test_settings_text_for_a_fast_start():
    result = CaptionResult("x", "caption en", "m", "stop_token", token_count=1, prefill_s=0.04)
    assert settings_text(result) == "first word after 40 ms · 1 token"
