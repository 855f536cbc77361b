"""Render the app icon files (.png, .ico, .icns) from the one SVG, vsearch_app/resources/app.svg.

Why at build time rather than committed: the SVG stays the only source, so an edited icon can never ship beside
stale .ico/.icns copies. build.py runs this in the build venv before PyInstaller; the spec, the Inno Setup script
and the DMG read the files from build/icons/.

Each size is rendered from the vector (Qt's SVG renderer) rather than scaled down from one bitmap, so the small
sizes stay crisp; Pillow writes the containers. Usage: ``python installer/make_icons.py [OUT_DIR]``.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_info import ICON_DIR, ICON_ICNS, ICON_ICO, ICON_PNG, ICON_SVG, REPO_ROOT  # noqa: E402

PNG_SIZE = 512                                   # Linux desktop entries and the README
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)       # what Explorer, the taskbar and the Start menu ask for
ICNS_SIZES = (16, 32, 64, 128, 256, 512, 1024)   # the ICNS slots, 1x and 2x


def render(svg: Path, size: int):
    """The SVG drawn into a transparent size x size image, as a Pillow RGBA image."""
    from PIL import Image
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # a build machine may have no display
    _app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - QPainter needs one alive
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg}: not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return Image.open(io.BytesIO(bytes(data))).convert("RGBA")


def make_icons(svg: Path, out_dir: Path) -> dict[str, Path]:
    """Write app.png, app.ico and app.icns into ``out_dir``; returns them by suffix."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png, ico, icns = out_dir / ICON_PNG.name, out_dir / ICON_ICO.name, out_dir / ICON_ICNS.name
    render(svg, PNG_SIZE).save(png, format="PNG")
    ico_images = [render(svg, size) for size in ICO_SIZES]
    ico_images[-1].save(ico, format="ICO", sizes=[(s, s) for s in ICO_SIZES], append_images=ico_images[:-1])
    icns_images = [render(svg, size) for size in ICNS_SIZES]
    icns_images[-1].save(icns, format="ICNS", append_images=icns_images[:-1])
    return {"png": png, "ico": ico, "icns": icns}


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else REPO_ROOT / ICON_DIR
    written = make_icons(REPO_ROOT / ICON_SVG, out_dir)
    for path in written.values():
        print(f"icon: {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
