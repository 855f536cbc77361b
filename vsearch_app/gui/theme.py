"""The app's look: widget style, light/dark colour scheme, and a dark palette for platforms that give none.

- Style: Fusion on Windows and Linux (one consistent, palette-driven look that handles dark palettes well); the
  native style on macOS, where users expect it and it follows the system appearance by itself.
- Scheme: "system" follows ``QStyleHints.colorScheme`` and its ``colorSchemeChanged`` signal (Qt 6.5+); "light" and
  "dark" are the user's override, passed to ``QStyleHints.setColorScheme`` where Qt has it (6.8+) so native parts
  (title bars, dialogs) follow too.
- Fallback: when the palette the platform gives does not match the wanted scheme (offscreen and some Linux
  desktops report no scheme and ignore ``setColorScheme``), we set our own dark palette, or Fusion's light one.

Colours live in the palette only; the widgets paint with palette roles, so no stylesheet is needed for the scheme.
"""

from __future__ import annotations

import logging
import sys

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

from vsearch_app.errors import InvalidArgumentError

log = logging.getLogger(__name__)

SCHEMES = ("system", "light", "dark")

_Role = QPalette.ColorRole
_Group = QPalette.ColorGroup

# A neutral dark grey scheme with a blue accent; disabled text stays readable but clearly inactive.
_DARK_ACTIVE = {
    _Role.Window: "#2a2b2f",
    _Role.WindowText: "#e6e7e9",
    _Role.Base: "#1d1e21",
    _Role.AlternateBase: "#2a2c30",
    _Role.ToolTipBase: "#303236",
    _Role.ToolTipText: "#e6e7e9",
    _Role.PlaceholderText: "#8b8e94",
    _Role.Text: "#e6e7e9",
    _Role.Button: "#2e3034",
    _Role.ButtonText: "#e6e7e9",
    _Role.BrightText: "#ff7b72",
    _Role.Light: "#44474d",
    _Role.Midlight: "#383a3f",
    _Role.Mid: "#2b2d31",
    _Role.Dark: "#161719",
    _Role.Shadow: "#0b0b0c",
    _Role.Highlight: "#2f6bd3",
    _Role.HighlightedText: "#ffffff",
    _Role.Link: "#79aaff",
    _Role.LinkVisited: "#b69cff",
    _Role.Accent: "#2f6bd3",
}
_DARK_DISABLED = {
    _Role.WindowText: "#6f7278",
    _Role.Text: "#6f7278",
    _Role.ButtonText: "#6f7278",
    _Role.PlaceholderText: "#5c5f64",
    _Role.Highlight: "#3a3c41",
    _Role.HighlightedText: "#9a9da3",
    _Role.Base: "#212225",
    _Role.Button: "#2a2c30",
}


def dark_palette() -> QPalette:
    """Our dark palette, used when the platform does not provide one."""
    palette = QPalette()
    for group in (_Group.Active, _Group.Inactive, _Group.Disabled):
        for role, color in _DARK_ACTIVE.items():
            palette.setColor(group, role, QColor(color))
    for role, color in _DARK_DISABLED.items():
        palette.setColor(_Group.Disabled, role, QColor(color))
    return palette


def is_dark(palette: QPalette) -> bool:
    """Whether ``palette`` reads as dark: its window is darker than its text."""
    return palette.color(_Role.Window).lightnessF() < palette.color(_Role.WindowText).lightnessF()


def style_name_for(platform: str = sys.platform) -> str | None:
    """The widget style to set, or None to keep the platform's native one (macOS)."""
    return None if platform == "darwin" else "Fusion"


class ThemeController(QObject):
    """Applies a scheme preference ("system", "light" or "dark") to the application and keeps following the
    system while the preference is "system". Emits ``darkChanged`` when the effective scheme flips."""

    darkChanged = Signal(bool)

    def __init__(self, app: QApplication, preference: str = "system", *, platform: str = sys.platform) -> None:
        super().__init__(app)
        self._app = app
        self._preference = "system"
        self._dark: bool | None = None
        style = style_name_for(platform)
        if style is not None and app.style().name().lower() != style.lower():
            app.setStyle(QStyleFactory.create(style))
        app.styleHints().colorSchemeChanged.connect(self._on_system_scheme_changed)
        self.set_preference(preference)

    @property
    def preference(self) -> str:
        return self._preference

    @property
    def dark(self) -> bool:
        return bool(self._dark)

    def set_preference(self, preference: str) -> None:
        if preference not in SCHEMES:
            raise InvalidArgumentError(f"colour scheme {preference!r} is not one of {', '.join(SCHEMES)}")
        self._preference = preference
        self._request_scheme_from_qt(preference)
        self._apply()

    def _on_system_scheme_changed(self, scheme: Qt.ColorScheme) -> None:
        if self._preference == "system":
            log.debug("system colour scheme changed to %s", scheme)
            self._apply()

    def _request_scheme_from_qt(self, preference: str) -> None:
        hints = self._app.styleHints()
        if not hasattr(hints, "setColorScheme"):  # Qt < 6.8: only our palette can override
            return
        if preference == "system":
            hints.unsetColorScheme()
        else:
            hints.setColorScheme(Qt.ColorScheme.Dark if preference == "dark" else Qt.ColorScheme.Light)

    def _wanted_dark(self) -> bool | None:
        """True/False for a definite wish; None when following a system that states no scheme."""
        if self._preference != "system":
            return self._preference == "dark"
        scheme = self._app.styleHints().colorScheme()
        if scheme == Qt.ColorScheme.Unknown:
            return None
        return scheme == Qt.ColorScheme.Dark

    def _light_palette(self) -> QPalette:
        standard = self._app.style().standardPalette()
        # Qt builds a whole palette from one button colour; used when even the style's standard palette is dark.
        return standard if not is_dark(standard) else QPalette(QColor("#efeff1"))

    def _apply(self) -> None:
        wanted = self._wanted_dark()
        # Start from the platform's own palette (an empty palette resets to it), then correct it if it disagrees.
        self._app.setPalette(QPalette())
        platform_dark = is_dark(QGuiApplication.palette())
        if wanted is True and not platform_dark:
            self._app.setPalette(dark_palette())
        elif wanted is False and platform_dark:
            self._app.setPalette(self._light_palette())
        dark = is_dark(QGuiApplication.palette())
        if dark != self._dark:
            self._dark = dark
            self.darkChanged.emit(dark)
