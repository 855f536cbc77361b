"""Every icon renders, recoloured to the palette, crisp at devicePixelRatio 1 and 2, in light and dark palettes."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QImage, QPalette

from vsearch_app.gui import icons
from vsearch_app.gui.theme import dark_palette


@pytest.fixture(params=["light", "dark"])
def palette(request, qapp):
    original = QGuiApplication.palette()
    palette = dark_palette() if request.param == "dark" else QPalette(QColor("#efeff1"))
    qapp.setPalette(palette)
    yield palette
    qapp.setPalette(original)


def _ink(image: QImage) -> tuple[int, QColor | None]:
    """How many pixels are drawn, and the colour of the most opaque one."""
    drawn, best, best_alpha = 0, None, 0
    for y in range(image.height()):
        for x in range(image.width()):
            color = image.pixelColor(x, y)
            if color.alpha() > 0:
                drawn += 1
                if color.alpha() > best_alpha:
                    best, best_alpha = color, color.alpha()
    return drawn, best


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_every_icon_renders_in_the_palette_colour(palette, ratio):
    expected = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText)
    assert icons.available_icons()
    for name in icons.available_icons():
        pixmap = icons.icon(name).pixmap(QSize(24, 24), ratio)
        assert pixmap.devicePixelRatio() == ratio
        image = pixmap.toImage()
        assert (image.width(), image.height()) == (round(24 * ratio), round(24 * ratio)), name  # vector, not upscaled
        drawn, color = _ink(image)
        assert drawn > 20 * ratio * ratio, f"{name} is (nearly) empty"
        assert drawn < image.width() * image.height() * 0.6, f"{name} is a filled blob"
        assert color.rgb() == expected.rgb(), f"{name} is drawn in {color.name()}, not {expected.name()}"


def test_disabled_and_selected_modes_use_their_palette_colours(palette):
    icon = icons.icon("search")
    disabled = _ink(icon.pixmap(QSize(24, 24), 1.0, QIcon.Mode.Disabled).toImage())[1]
    selected = _ink(icon.pixmap(QSize(24, 24), 1.0, QIcon.Mode.Selected).toImage())[1]
    assert disabled.rgb() == palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText).rgb()
    assert selected.rgb() == palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.HighlightedText).rgb()


def test_icons_follow_a_palette_change(qapp):
    original = QGuiApplication.palette()
    icon = icons.icon("close")  # one QIcon, kept across the change, as a button keeps it
    try:
        qapp.setPalette(QPalette(QColor("#efeff1")))
        light = _ink(icon.pixmap(QSize(16, 16), 1.0).toImage())[1]
        qapp.setPalette(dark_palette())
        dark = _ink(icon.pixmap(QSize(16, 16), 1.0).toImage())[1]
    finally:
        qapp.setPalette(original)
    assert light.lightnessF() < 0.3 < 0.7 < dark.lightnessF()


def test_a_role_other_than_window_text(palette):
    icon = icons.icon("search", QPalette.ColorRole.PlaceholderText)
    color = _ink(icon.pixmap(QSize(24, 24), 1.0).toImage())[1]
    assert color.rgb() == palette.color(QPalette.ColorRole.PlaceholderText).rgb()


def test_unknown_icon_fails_loudly():
    with pytest.raises(FileNotFoundError, match="no-such-icon"):
        icons.icon("no-such-icon")


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_app_icon_is_a_full_colour_vector_image(qapp, ratio):
    image = icons.app_icon().pixmap(QSize(64, 64), ratio).toImage()
    assert image.width() == round(64 * ratio)
    colours = {image.pixelColor(x, y).name() for y in range(0, image.height(), 4) for x in range(0, image.width(), 4)
               if image.pixelColor(x, y).alpha() == 255}
    assert len(colours) > 20  # gradients, photo, magnifier: not a flat single-colour glyph
