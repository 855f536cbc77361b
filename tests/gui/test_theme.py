"""Theme: Fusion except on macOS, light/dark override, and our dark palette where the platform gives none."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette

from vsearch_app.errors import InvalidArgumentError
from vsearch_app.gui import theme


@pytest.fixture
def controller(qapp):
    made = []

    def make(preference: str = "system") -> theme.ThemeController:
        made.append(theme.ThemeController(qapp, preference))
        return made[-1]

    yield make
    for c in made:
        qapp.styleHints().colorSchemeChanged.disconnect(c._on_system_scheme_changed)
        c.setParent(None)
    if hasattr(qapp.styleHints(), "unsetColorScheme"):
        qapp.styleHints().unsetColorScheme()
    qapp.setPalette(QPalette())


def test_dark_preference_gives_a_dark_palette(controller, qtbot):
    c = controller("light")
    with qtbot.waitSignal(c.darkChanged) as blocker:
        c.set_preference("dark")
    assert blocker.args == [True]
    palette = QGuiApplication.palette()
    assert theme.is_dark(palette) and c.dark
    # Text stays readable everywhere it is drawn (WCAG AA: a contrast ratio of at least 4.5).
    for background, text in [(QPalette.ColorRole.Window, QPalette.ColorRole.WindowText),
                             (QPalette.ColorRole.Base, QPalette.ColorRole.Text),
                             (QPalette.ColorRole.Button, QPalette.ColorRole.ButtonText),
                             (QPalette.ColorRole.Highlight, QPalette.ColorRole.HighlightedText),
                             (QPalette.ColorRole.ToolTipBase, QPalette.ColorRole.ToolTipText)]:
        assert _contrast(palette.color(text), palette.color(background)) >= 4.5, (background, text)


def _contrast(a: QColor, b: QColor) -> float:
    def luminance(c: QColor) -> float:
        channels = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in (c.redF(), c.greenF(),
                                                                                            c.blueF())]
        return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_light_preference_after_dark_restores_a_light_palette(controller):
    c = controller("dark")
    c.set_preference("light")
    assert not theme.is_dark(QGuiApplication.palette()) and not c.dark


def test_system_preference_follows_the_platform(controller, qapp):
    c = controller("dark")
    c.set_preference("system")
    scheme = qapp.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Unknown:  # offscreen: no scheme stated, so the platform's own (light) palette
        assert not c.dark
    else:
        assert c.dark == (scheme == Qt.ColorScheme.Dark)


def test_a_system_scheme_change_is_followed_only_in_system_mode(controller, qapp, monkeypatch):
    c = controller("system")
    monkeypatch.setattr(c, "_wanted_dark", lambda: True)  # what a platform switching to dark would report
    c._on_system_scheme_changed(Qt.ColorScheme.Dark)
    assert c.dark
    monkeypatch.undo()
    c.set_preference("light")
    monkeypatch.setattr(c, "_wanted_dark", lambda: True)
    c._on_system_scheme_changed(Qt.ColorScheme.Dark)  # ignored: the user asked for light
    assert not c.dark and not theme.is_dark(QGuiApplication.palette())


def test_unknown_preference_is_refused(controller):
    c = controller()
    with pytest.raises(InvalidArgumentError, match="sepia"):
        c.set_preference("sepia")


def test_style_is_fusion_except_on_macos(controller, qapp):
    assert theme.style_name_for("linux") == "Fusion"
    assert theme.style_name_for("win32") == "Fusion"
    assert theme.style_name_for("darwin") is None
    controller()
    assert qapp.style().name().lower() == "fusion"
