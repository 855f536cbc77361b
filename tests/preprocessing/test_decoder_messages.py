"""Decoder chatter (Pillow's warnings, libtiff's C messages) goes to the debug log, never to stderr."""

from __future__ import annotations

import logging
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image, features

from tests.support.noisy_images import corrupt_deflate_tiff, png_with_a_broken_animation_chunk
from vsearch_app.errors import ImageDecodeError
from vsearch_app.preprocessing.decoder_messages import install, is_decoder_warning
from vsearch_app.preprocessing.image import open_image

LOGGER = "vsearch_app.preprocessing.decoder_messages"


def test_a_pillow_warning_is_logged_at_debug_with_the_file_not_printed(tmp_path, caplog, capfd):
    path = tmp_path / "odd.png"
    png_with_a_broken_animation_chunk(path)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # the default filter shows a message once per place; show every time
        assert open_image(path).getpixel((0, 0)) == (10, 200, 30)
    assert capfd.readouterr().err == ""
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(str(path) in m and "Invalid APNG" in m for m in messages), messages


def test_decompression_bomb_warnings_from_decode_threads_stay_off_stderr(tmp_path, caplog, capfd, monkeypatch):
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"big{i}.png")
        Image.new("RGB", (8, 8), (i, i, i)).save(paths[-1])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # 64 pixels: above the limit, below twice it (a warning)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with ThreadPoolExecutor(3) as pool:
            sizes = list(pool.map(lambda p: open_image(p).size, paths))
    assert sizes == [(8, 8)] * 6
    assert capfd.readouterr().err == ""
    bombs = [r.getMessage() for r in caplog.records if "DecompressionBombWarning" in r.getMessage()]
    for path in paths:
        assert any(str(path) in m for m in bombs), (path, bombs)


def test_other_warnings_still_reach_the_previous_handler(tmp_path):
    Image.new("RGB", (2, 2)).save(tmp_path / "x.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        open_image(tmp_path / "x.png")  # installs the hook over catch_warnings' handler
        warnings.warn("not about an image", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["not about an image"]


def test_warnings_are_told_apart_by_where_they_come_from():
    assert is_decoder_warning(UserWarning, Image.__file__)
    assert is_decoder_warning(Image.DecompressionBombWarning, __file__)
    assert not is_decoder_warning(UserWarning, __file__)


@pytest.mark.skipif(not features.check("libtiff"), reason="Pillow built without libtiff")
@pytest.mark.skipif(sys.platform == "win32", reason="Windows wheels link libtiff into Pillow, out of reach")
def test_libtiff_errors_go_to_the_debug_log_not_to_file_descriptor_2(tmp_path, caplog, capfd):
    path = tmp_path / "damaged.tif"
    corrupt_deflate_tiff(path)
    install()
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        open_image(path)
    # capfd captures the real fd 2, where libtiff's default handler writes with fprintf.
    assert capfd.readouterr().err == ""
    messages = [r.getMessage() for r in caplog.records]
    assert any(str(path) in m and "libtiff" in m and "ZIPDecode" in m for m in messages), messages
