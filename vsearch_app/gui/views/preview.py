"""Space on a result: the photo large, in a window of its own. Space or Esc closes it, Enter opens the file.

The photo is decoded already scaled to the window (QImageReader.setScaledSize: Qt refuses images over 256 MB
unscaled, and a 12 MP decode at full size would cost the GUI thread far more); EXIF orientation is applied. When Qt
cannot read the format (HEIC on most builds) the engine's thumbnail is shown instead, through ``fallback``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QGuiApplication, QImage, QImageReader, QKeyEvent, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QSizePolicy, QVBoxLayout, QWidget

from vsearch_app.gui.thumbs.loader import numpy_to_qimage

SCREEN_FRACTION = 0.8

Fallback = Callable[[Path, int], object]  # (path, max_side) -> core.types.Thumbnail


def read_scaled(path: Path, box: QSize) -> QImage:
    """``path`` decoded to fit ``box`` (device pixels), upright; a null QImage when Qt cannot read it."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and (size.width() > box.width() or size.height() > box.height()):
        # EXIF rotation swaps the sides after decoding; fitting both orientations' box keeps it inside either way.
        reader.setScaledSize(size.scaled(box, Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()


class PhotoPreview(QDialog):
    openRequested = Signal(object)  # Path

    def __init__(self, path: Path, fallback: Fallback | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.setWindowTitle(self.path.name)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        screen = (parent.screen() if parent is not None else None) or QGuiApplication.primaryScreen()
        area = screen.availableGeometry().size() * SCREEN_FRACTION
        ratio = self.devicePixelRatioF()
        image = read_scaled(self.path, area * ratio)
        if image.isNull() and fallback is not None:
            thumbnail = fallback(self.path, round(max(area.width(), area.height()) * ratio))
            if getattr(thumbnail, "image", None) is not None:
                image = numpy_to_qimage(thumbnail.image)
        self._photo = QLabel(self)
        self._photo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._photo.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        if image.isNull():
            self._photo.setText(f"VSearch cannot show {self.path.name}.")
            self.loaded = False
            shown = QSize(480, 320)
        else:
            pixmap = QPixmap.fromImage(image)
            pixmap.setDevicePixelRatio(ratio)
            self._photo.setPixmap(pixmap)
            self.loaded = True
            shown = (pixmap.size() / ratio).boundedTo(area)
        caption = QLabel(str(self.path), self)
        caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 8)
        layout.addWidget(self._photo, 1)
        layout.addWidget(caption)
        self.resize(shown.width(), shown.height() + caption.sizeHint().height() + 8)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Escape):
            self.close()
        elif event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.openRequested.emit(self.path)
            self.close()
        else:
            super().keyPressEvent(event)
