"""Image files that make decoders talk: a Pillow warning, or a libtiff error written from C to stderr."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_a_broken_animation_chunk(path: Path, colour=(10, 200, 30)) -> Path:
    """A good 4x4 PNG carrying an acTL chunk that claims 0 frames: Pillow warns "Invalid APNG" (a UserWarning) and
    shows the still image."""
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), colour).save(buffer, "PNG")
    data = buffer.getvalue()
    after_header = 8 + 25  # signature, then the IHDR chunk
    path.write_bytes(data[:after_header] + _chunk(b"acTL", struct.pack(">II", 0, 0)) + data[after_header:])
    return path


def corrupt_deflate_tiff(path: Path) -> Path:
    """A deflate-compressed TIFF with damaged strip data: libtiff prints "ZIPDecode: Decoding error ..." to fd 2 by
    default, and Pillow raises "decoder error -2"."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "TIFF", compression="tiff_adobe_deflate")
    data = bytearray(buffer.getvalue())
    for i in range(20, 200):  # inside the compressed strip, which starts right after the 8-byte header
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path
