"""The app's icons: our own SVG line icons, recoloured to the palette and kept vector.

Why not ``QIcon.fromTheme``: desktop themes draw some of these and not others, in their own styles, so a toolbar
would mix looks; offscreen it gives null icons. Our set is drawn with ``currentColor`` and painted here in the
palette's colour for the icon's mode (normal, disabled, selected), so it matches light and dark themes.

Why an icon engine rather than pixmaps: the engine renders the SVG at the exact device pixel size Qt asks for, so
icons stay crisp at any size and at devicePixelRatio 2; and it reads the application palette each time it renders,
so after a palette change (dark mode switched on) every widget repaints its icons in the new colour.
"""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QByteArray, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QIconEngine, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

from vsearch_app.resources import icon_names, resource_path

_MAX_CACHED_PIXMAPS = 48  # per icon; sizes x modes x palettes in use stay far below this


def icon(name: str, role: QPalette.ColorRole = QPalette.ColorRole.WindowText) -> QIcon:
    """Our line icon ``name`` (see ``available_icons``) drawn in the palette colour ``role``.

    Disabled mode uses the role's Disabled colour; Selected mode uses HighlightedText, as item views expect.
    Raises FileNotFoundError for an unknown name, so a typo fails loudly rather than showing nothing."""
    return QIcon(_PaletteSvgEngine(_svg_source(name), role))


def app_icon() -> QIcon:
    """The full-colour application icon, vector (Qt's SVG icon engine renders it at any size)."""
    return QIcon(str(resource_path("app.svg")))


def available_icons() -> list[str]:
    return icon_names()


def icon_color(mode: QIcon.Mode, role: QPalette.ColorRole = QPalette.ColorRole.WindowText,
               palette: QPalette | None = None) -> QColor:
    """The colour an icon of ``role`` is drawn in for ``mode`` under ``palette`` (default: the application's)."""
    palette = palette if palette is not None else QGuiApplication.palette()
    if mode == QIcon.Mode.Disabled:
        return palette.color(QPalette.ColorGroup.Disabled, role)
    if mode == QIcon.Mode.Selected and role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
                                                QPalette.ColorRole.ButtonText):
        return palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.HighlightedText)
    return palette.color(QPalette.ColorGroup.Active, role)


@cache
def _svg_source(name: str) -> str:
    return resource_path("icons", f"{name}.svg").read_text(encoding="utf-8")


class _PaletteSvgEngine(QIconEngine):
    """Renders one SVG, with ``currentColor`` replaced by the palette colour of the requested mode."""

    def __init__(self, svg: str, role: QPalette.ColorRole) -> None:
        super().__init__()
        self._svg = svg
        self._role = role
        self._pixmaps: dict[tuple[int, int, int, float], QPixmap] = {}

    def _renderer(self, color: QColor) -> QSvgRenderer:
        # SVG colours carry no alpha here; the alpha (e.g. a translucent disabled colour) goes on the painter.
        rgb = color.name(QColor.NameFormat.HexRgb)
        return QSvgRenderer(QByteArray(self._svg.replace("currentColor", rgb).encode("utf-8")))

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        color = icon_color(mode, self._role)
        painter.save()
        painter.setOpacity(painter.opacity() * color.alphaF())
        self._renderer(color).render(painter, QRectF(rect))
        painter.restore()

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        return self.scaledPixmap(size, mode, state, 1.0)

    def scaledPixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State, scale: float) -> QPixmap:
        color = icon_color(mode, self._role)
        key = (size.width(), size.height(), color.rgba(), float(scale))
        cached = self._pixmaps.get(key)
        if cached is not None:
            return cached
        pixmap = QPixmap(max(1, round(size.width() * scale)), max(1, round(size.height() * scale)))
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setOpacity(color.alphaF())
        self._renderer(color).render(painter, QRectF(0, 0, pixmap.width(), pixmap.height()))
        painter.end()
        pixmap.setDevicePixelRatio(scale)
        if len(self._pixmaps) >= _MAX_CACHED_PIXMAPS:
            self._pixmaps.clear()
        self._pixmaps[key] = pixmap
        return pixmap

    def actualSize(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QSize:
        return size  # vector: any size is exact

    def clone(self) -> QIconEngine:
        return _PaletteSvgEngine(self._svg, self._role)

    def key(self) -> str:
        return "vsearch-palette-svg"

    def isNull(self) -> bool:
        return False
