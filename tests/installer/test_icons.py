"""installer/make_icons.py renders the one SVG into the icon files the spec, Inno Setup and the DMG use: every size
each format needs, drawn (not blank), with a transparent outside (the icon's rounded corners)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "installer"))
import app_info  # noqa: E402
import make_icons  # noqa: E402


def test_png_ico_and_icns_are_rendered_from_the_svg_at_every_size(tmp_path, qapp):
    written = make_icons.make_icons(REPO / app_info.ICON_SVG, tmp_path)
    assert {path.name for path in written.values()} == {app_info.ICON_PNG.name, app_info.ICON_ICO.name,
                                                       app_info.ICON_ICNS.name}
    with Image.open(written["png"]) as png:
        assert png.size == (make_icons.PNG_SIZE, make_icons.PNG_SIZE) and png.mode == "RGBA"
        assert png.getpixel((0, 0))[3] == 0  # transparent corner
        center = png.getpixel((png.width // 2, png.height // 2))
        assert center[3] == 255  # the drawing fills the middle
    with Image.open(written["ico"]) as ico:
        assert ico.info["sizes"] == {(s, s) for s in make_icons.ICO_SIZES}
        ico.size = (16, 16)
        small = ico.convert("RGBA")
        assert small.getextrema()[3][1] == 255, "the 16 px icon is empty"
    with Image.open(written["icns"]) as icns:
        assert (512, 512, 2) in icns.info["sizes"] and (16, 16, 1) in {s[:2] + (1,) for s in icns.info["sizes"]}


def test_a_broken_svg_is_refused(tmp_path, qapp):
    bad = tmp_path / "bad.svg"
    bad.write_text("<svg this is not")
    with pytest.raises(ValueError, match="not a valid SVG"):
        make_icons.render(bad, 16)
