"""The Describe panel's photo: fitted to the panel (aspect kept, never enlarged), or at 100% in a scroll area.

The photo is decoded already scaled (QImageReader.setScaledSize; Qt refuses images over 256 MB unscaled) and upright
(EXIF). Fitted, it is decoded at most FIT_DECODE_SIDE and scaled when painted, so resizing the panel decodes
nothing; "100%" decodes it at full size up to FULL_SIZE_MAX_PIXELS, so a 108 MP photo still opens. A format Qt
cannot read (HEIC on most builds) falls back to the engine's thumbnail. The decode waits DECODE_DELAY_MS after
``set_photo``, so arrowing through the grid decodes only the photo the user stops on.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QImageIOHandler, QImageReader, QPainter, QPaintEvent, QPalette, QPixmap
from PySide6.QtWidgets import QScrollArea, QSizePolicy, QWidget

from vsearch_app.gui.thumbs.loader import numpy_to_qimage
from vsearch_app.gui.views.preview import read_scaled

DECODE_DELAY_MS = 40  # a photo is decoded once the selection has rested this long (arrowing through the grid)
FIT_DECODE_SIDE = 1600  # device pixels: the fitted photo is decoded this large at most and scaled when painted
FULL_SIZE_MAX_PIXELS = 40_000_000  # "100%" decodes at most this many pixels (Qt's 256 MB image limit, with room)


class PhotoCanvas(QWidget):
    """Paints one image: fitted to the widget (aspect kept, never enlarged past 100%), or at 100% (the widget
    takes the image's size and sits in a scroll area)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._text = ""
        self.actual_size = False
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

    @property
    def pixmap(self) -> QPixmap | None:
        return self._pixmap

    def set_pixmap(self, pixmap: QPixmap | None, text: str = "") -> None:
        self._pixmap, self._text = pixmap, text
        if self.actual_size and pixmap is not None:
            self.setFixedSize(pixmap.deviceIndependentSize().toSize())
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        if self._pixmap is None or self._pixmap.isNull():
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._text)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        size = self._pixmap.deviceIndependentSize()
        if self.actual_size:
            painter.drawPixmap(0, 0, self._pixmap)
            return
        shown = size.scaled(self.size().toSizeF(), Qt.AspectRatioMode.KeepAspectRatio)
        if shown.width() > size.width():  # a small photo is not blown up
            shown = size
        box = QRectF((self.width() - shown.width()) / 2, (self.height() - shown.height()) / 2, shown.width(),
                     shown.height())
        painter.drawPixmap(box, self._pixmap, QRectF(self._pixmap.rect()))


class PhotoView(QScrollArea):
    """The photo, fitted (default) or at 100%."""

    def __init__(self, fallback=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fallback = fallback  # (path, max_side) -> core.types.Thumbnail, for formats Qt cannot read
        self.canvas = PhotoCanvas(self)
        self.setWidget(self.canvas)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setBackgroundRole(QPalette.ColorRole.Base)
        self.setMinimumHeight(160)
        self.path: Path | None = None
        self.full_size: QSize | None = None  # pixels of the photo as shown upright (None: unknown)
        self._decode_timer = QTimer(self)
        self._decode_timer.setSingleShot(True)
        self._decode_timer.setInterval(DECODE_DELAY_MS)
        self._decode_timer.timeout.connect(self._show)

    @property
    def actual_size(self) -> bool:
        return self.canvas.actual_size

    def set_photo(self, path: Path | None) -> None:
        """Show ``path``. Its pixel size (read from the header) is known at once; the decode follows after
        DECODE_DELAY_MS, so arrowing through the grid decodes only the photo the user stops on."""
        self.path = Path(path) if path is not None else None
        self.full_size = None
        if self.path is not None:
            reader = QImageReader(str(self.path))
            raw = reader.size()
            if raw.isValid():
                self.full_size = raw.transposed() if _swaps_sides(reader) else raw
        self._decode_timer.start()

    @property
    def pending(self) -> bool:
        """A decode is scheduled (tests wait for it)."""
        return self._decode_timer.isActive()

    def set_actual_size(self, actual: bool) -> None:
        if actual == self.canvas.actual_size:
            return
        self.canvas.actual_size = actual
        self.setWidgetResizable(not actual)
        if not actual:
            self.canvas.setMinimumSize(0, 0)
            self.canvas.setMaximumSize(16_777_215, 16_777_215)
        self._show()

    def _show(self) -> None:
        if self.path is None:
            self.canvas.set_pixmap(None, "")
            return
        ratio = self.devicePixelRatioF()
        raw = QImageReader(str(self.path)).size()  # as stored (before the EXIF turn)
        if self.canvas.actual_size:
            side = max(raw.width(), raw.height()) if raw.isValid() else FIT_DECODE_SIDE
            pixels = raw.width() * raw.height() if raw.isValid() else 0
            if pixels > FULL_SIZE_MAX_PIXELS:
                side = int(side * (FULL_SIZE_MAX_PIXELS / pixels) ** 0.5)
            image = read_scaled(self.path, QSize(side, side))
        else:
            image = read_scaled(self.path, QSize(FIT_DECODE_SIDE, FIT_DECODE_SIDE))
        if image.isNull() and self._fallback is not None:
            thumbnail = self._fallback(self.path, FIT_DECODE_SIDE)
            if getattr(thumbnail, "image", None) is not None:
                image = numpy_to_qimage(thumbnail.image)
        if image.isNull():
            self.canvas.set_pixmap(None, f"VSearch cannot show {self.path.name}.")
            return
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(ratio)  # so 100% is one photo pixel per screen pixel on a HiDPI screen too
        self.canvas.set_pixmap(pixmap)


def _swaps_sides(reader: QImageReader) -> bool:
    """Whether the photo's EXIF orientation turns it a quarter (its shown width is its stored height)."""
    return bool(reader.transformation() & QImageIOHandler.Transformation.TransformationRotate90)
