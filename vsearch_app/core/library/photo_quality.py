"""Which of a group of near-identical photos is the best shot, from their pixels (no model, nothing downloaded).

Four measures, each in [0, 1], then
``quality = 0.5 * sharpness + 0.1 * detail + 0.15 * exposure + 0.25 * resolution``:

- **sharpness**: the variance of the Laplacian of the grey image (a blurred or shaken shot has weak edges, so low
  variance), relative to the sharpest photo of the group; within 10 % of it counts as sharpest. Every member is
  measured at the *same* size, the group's smallest longest side (at most ``RATE_SIDE`` pixels), because resizing
  changes the Laplacian variance: a small export would otherwise not compare with its original. (A slight crop is
  then measured slightly magnified, hence the 10 %.)
- **detail**: the same variance at (nearly) full resolution, compared only between copies of equal pixel size: a
  re-compressed copy loses the fine detail that the downscaled comparison cannot see.
- **exposure**: half for not clipping (the share of pixels within 2 % of black or white; 25 % clipped scores 0),
  half for mid-tones (how close the median grey is to middle grey).
- **resolution**: pixel count relative to the group's largest.

Sharpness weighs most because it is what a burst's shots differ in; resolution breaks the tie between an original
and its smaller export. A file that cannot be decoded scores 0.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps

from vsearch_app.preprocessing.decoder_messages import decoding
from vsearch_app.preprocessing.image import register_optional_plugins

log = logging.getLogger(__name__)

RATE_SIDE = 512  # the most pixels on the longest side that sharpness is measured at
SHARPNESS_WEIGHT, DETAIL_WEIGHT, EXPOSURE_WEIGHT, RESOLUTION_WEIGHT = 0.5, 0.1, 0.15, 0.25
DETAIL_SIDE = 1024  # fine detail is compared with the group's largest photo scaled to this
SHARPNESS_TOLERANCE = 0.9  # within 10 % of the sharpest counts as sharpest (a crop is measured slightly magnified)


def load_grey(path: str | os.PathLike[str], max_side: int = RATE_SIDE) -> tuple[np.ndarray, int] | None:
    """The upright grey image with its longest side at most ``max_side`` (float32 in [0, 1]), and the original's
    pixel count; None when it cannot be decoded."""
    try:
        register_optional_plugins()
        with decoding(os.fspath(path)), Image.open(path) as image:
            pixels = image.size[0] * image.size[1]
            image.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale, much faster
            grey = ImageOps.exif_transpose(image).convert("L")
            grey.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            return np.asarray(grey, dtype=np.float32) / 255.0, pixels
    except Exception as exc:  # a file gone or damaged since it was indexed
        log.debug("cannot rate %s: %s", path, exc)
        return None


def laplacian_variance(grey: np.ndarray) -> float:
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    lap = (4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:])
    return float(lap.var())


def exposure_score(grey: np.ndarray) -> float:
    if grey.size == 0:
        return 0.0
    clipped = float(np.mean((grey <= 0.02) | (grey >= 0.98)))
    balance = 1.0 - 2.0 * abs(float(np.median(grey)) - 0.5)
    return 0.5 * max(0.0, 1.0 - 4.0 * clipped) + 0.5 * max(0.0, balance)


def rate_group(paths: Sequence[str | os.PathLike[str]]) -> list[float]:
    """The quality (see the module docstring) of each photo of one group, comparable within the group only."""
    sizes = [_pixel_size(path) for path in paths]
    sides = [max(size) for size in sizes if size]
    side = max(8, min(min(sides or [RATE_SIDE]), RATE_SIDE))
    loaded = [load_grey(path, side) for path in paths]
    sharp = [laplacian_variance(g[0]) if g else 0.0 for g in loaded]
    detail = _detail(paths, sizes, max(sides or [DETAIL_SIDE]))
    pixels = [g[1] if g else 0 for g in loaded]
    best_sharp, most_pixels = max(sharp) or 1.0, max(pixels) or 1
    qualities = []
    for g, s, d, p in zip(loaded, sharp, detail, pixels, strict=True):
        if g is None:
            qualities.append(0.0)
            continue
        sharpness = min(1.0, s / (SHARPNESS_TOLERANCE * best_sharp))
        qualities.append(SHARPNESS_WEIGHT * sharpness + DETAIL_WEIGHT * d + EXPOSURE_WEIGHT * exposure_score(g[0])
                         + RESOLUTION_WEIGHT * p / most_pixels)
    return qualities


def _detail(paths: Sequence[str | os.PathLike[str]], sizes: list[tuple[int, int] | None],
            largest_side: int) -> list[float]:
    """Fine detail relative to the members of the same pixel size (1.0 for a member without one): the Laplacian
    variance with every member scaled by one factor (the largest down to DETAIL_SIDE), so copies of equal size are
    compared pixel for pixel; a re-compressed copy has lost fine detail its original still has."""
    scale = min(1.0, DETAIL_SIDE / max(largest_side, 1))
    values = []
    for path, size in zip(paths, sizes, strict=True):
        loaded = load_grey(path, max(8, round(max(size) * scale))) if size else None
        values.append(laplacian_variance(loaded[0]) if loaded else 0.0)
    best: dict[tuple[int, int], float] = {}
    for size, value in zip(sizes, values, strict=True):
        if size:
            best[size] = max(best.get(size, 0.0), value)
    return [value / best[size] if size and best[size] > 0 else 0.0 for size, value in zip(sizes, values, strict=True)]


def _pixel_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        with Image.open(path) as image:
            return image.size
    except Exception:
        return None
