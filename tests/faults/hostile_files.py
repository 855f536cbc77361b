"""Hostile photo files, generated at test time (nothing large is kept in git), each with the outcome it must have.

``write_hostile_folder(root, outside)`` fills ``root`` with every hostile case that lives in one folder and returns
the cases; ``outside`` receives the targets of links that point out of the root. Each ``Case`` says what indexing
must leave in the catalog: ``state`` ("indexed", "failed", or None for "never listed") and, for a failure, the
exact reason. Everything is made in well under a second except the 200-megapixel JPEG (about a second and 200 MB
while it is encoded), which ``big_jpeg`` makes once per test session.

The crafted files (the bomb PNG, the 10,000-frame GIF) are written byte by byte: a real bomb would take the memory
it is meant to guard against, and Pillow takes seconds to encode ten thousand frames.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

TRUNCATED = "truncated or corrupt image data"
BOMB = "image too large (possible decompression bomb)"
EMPTY = "empty file"
NOT_AN_IMAGE = "not an image or unsupported format"

BIG_JPEG_SIZE = (20_000, 10_000)  # 200 megapixels: over Pillow's 179 MP refusal limit
GIF_FRAMES = 10_000


@dataclass(frozen=True)
class Case:
    name: str  # what the case is, for assertion messages
    path: Path  # the path the catalog must (or must not) hold
    state: str | None  # "indexed", "failed", or None: never listed (not a photo name, or not reachable)
    reason: str | None = None  # the exact failure reason, for "failed"


def photo_bytes(seed: int, size: tuple[int, int] = (64, 48), fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    """A distinct small picture: coloured blocks on a coloured background."""
    rng = np.random.default_rng(seed)
    pixels = np.empty((size[1], size[0], 3), np.uint8)
    pixels[:] = rng.integers(0, 256, 3)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, size[0] - 8)), int(rng.integers(0, size[1] - 8))
        pixels[y0:y0 + 12, x0:x0 + 16] = rng.integers(0, 256, 3)
    image = Image.fromarray(pixels)
    if mode != "RGB":
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming width x height (10 gigapixels by default) with a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def many_frame_gif(frames: int = GIF_FRAMES, side: int = 4) -> bytes:
    """An animated GIF of ``frames`` frames, side x side pixels each, frame 0 red and the others blue."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", side, side, 0x80, 0, 0))  # global table of 2 colours
    out += bytes((255, 0, 0, 0, 0, 255))  # 0: red, 1: blue
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    pixel_count = side * side
    for index in range(frames):
        colour = 0 if index == 0 else 1
        out += b"\x21\xf9\x04\x00\x01\x00\x00\x00"  # graphic control: 1/100 s
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, side, side, 0)
        out += bytes((2,)) + _lzw_block(colour, pixel_count) + b"\x00"
    out += b"\x3b"
    return bytes(out)


def _lzw_block(colour: int, count: int) -> bytes:
    """GIF LZW data (minimum code size 2) of ``count`` pixels of ``colour``: a clear code before every pixel keeps
    the code width at 3 bits, so no dictionary has to be tracked."""
    clear, end = 4, 5
    codes = []
    for _ in range(count):
        codes += [clear, colour]
    codes.append(end)
    bits = value = 0
    data = bytearray()
    for code in codes:
        value |= code << bits
        bits += 3
        while bits >= 8:
            data.append(value & 0xFF)
            value >>= 8
            bits -= 8
    if bits:
        data.append(value & 0xFF)
    blocks = bytearray()
    for start in range(0, len(data), 255):
        part = data[start:start + 255]
        blocks += bytes((len(part),)) + part
    return bytes(blocks)


def write_big_jpeg(path: Path, size: tuple[int, int] = BIG_JPEG_SIZE) -> Path:
    """A 200-megapixel greyscale JPEG (a panorama's pixel count; grey keeps encoding it at 200 MB)."""
    width, height = size
    ramp = np.linspace(40, 220, width, dtype=np.float32).astype(np.uint8)
    Image.fromarray(np.broadcast_to(ramp, (height, width)).copy(), "L").save(path, quality=60)
    return path


def write_hostile_folder(root: Path, outside: Path, *, big_jpeg: Path | None = None) -> list[Case]:
    """Write the single-folder hostile cases under ``root`` (links out of it point into ``outside``)."""
    root.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def put(name: str, data: bytes, state: str | None, reason: str | None = None, *, what: str | None = None) -> None:
        path = root / name
        path.write_bytes(data)
        cases.append(Case(what or name, path, state, reason))

    for i in range(4):
        put(f"clean-{i}.jpg", photo_bytes(i), "indexed")
    jpeg, png = photo_bytes(10, (256, 192)), photo_bytes(11, (256, 192), "PNG")
    put("truncated.jpg", jpeg[: len(jpeg) // 2], "failed", TRUNCATED)
    put("truncated.png", png[: len(png) // 2], "failed", TRUNCATED)
    heic = heic_bytes(12)
    if heic is not None:
        put("truncated.heic", heic[: len(heic) // 2], "failed", TRUNCATED)
    put("zero-bytes.jpg", b"", "failed", EMPTY)
    put("text-named.jpg", b"this is a note, not a photo\n" * 20, "failed", NOT_AN_IMAGE)
    put("png-named.jpg", photo_bytes(13, fmt="PNG"), "indexed", what="a PNG named .jpg")
    put("jpeg-named.png", photo_bytes(14), "indexed", what="a JPEG named .png")
    put("jpeg-named.txt", photo_bytes(15), None, what="a JPEG named .txt (not a photo name: never listed)")
    put("bomb.png", bomb_png(), "failed", BOMB)
    put("cmyk.jpg", photo_bytes(16, mode="CMYK"), "indexed")
    put("grey16.png", _grey16_png(), "indexed")
    put("palette-alpha.png", _palette_alpha_png(), "indexed")
    put("frames-10000.gif", many_frame_gif(), "indexed")
    put("a" * 251 + ".jpg", photo_bytes(17), "indexed", what="a 255-byte file name")
    if sys.platform.startswith("linux"):  # macOS and Windows file systems refuse names that are not valid UTF-8
        name = os.fsdecode(b"caf\xe9-latin1.jpg")
        put(name, photo_bytes(18), "indexed", what="a file name that is not UTF-8")
    if big_jpeg is not None:
        path = root / "panorama-200mp.jpg"
        if _same_device(big_jpeg, root):
            os.link(big_jpeg, path)  # 3 MB, but one copy per test is still a copy
        else:
            path.write_bytes(big_jpeg.read_bytes())
        cases.append(Case("a 200-megapixel JPEG", path, "indexed"))

    # Links: a loop back to the root (walked once), and a photo outside every root (listed under the link).
    (root / "loop").mkdir()
    (root / "loop" / "back-to-root").symlink_to(root, target_is_directory=True)
    target = outside / "outside.jpg"
    target.write_bytes(photo_bytes(19))
    (root / "link-to-outside.jpg").symlink_to(target)
    cases.append(Case("a symlink to a photo outside the roots", root / "link-to-outside.jpg", "indexed"))
    cases.append(Case("the link's target itself", target, None))
    cases.append(Case("the root again through the loop", root / "loop" / "back-to-root" / "clean-0.jpg", None))
    return cases


def heic_bytes(seed: int) -> bytes | None:
    """A small HEIC photo, or None when pillow-heif (or its encoder) is not installed."""
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        out = io.BytesIO()
        Image.open(io.BytesIO(photo_bytes(seed, (128, 96)))).save(out, "HEIF", quality=60)
        return out.getvalue()
    except Exception:  # noqa: BLE001 - no HEIF encoder here: the case is left out
        return None


def _grey16_png() -> bytes:
    ramp = np.linspace(0, 65535, 64 * 48, dtype=np.float64).reshape(48, 64).astype(np.uint16)
    out = io.BytesIO()
    Image.fromarray(ramp).save(out, "PNG")  # uint16 -> mode I;16
    return out.getvalue()


def _palette_alpha_png() -> bytes:
    image = Image.new("P", (64, 48), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    image.paste(1, (16, 12, 48, 36))
    out = io.BytesIO()
    image.save(out, "PNG", transparency=0)
    return out.getvalue()


def _same_device(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False
