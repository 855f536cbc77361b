"""Which of a group of near-identical photos is the best shot, from their pixels (no model, nothing downloaded).

Three measures, each in [0, 1], then ``quality = 0.6 * sharpness + 0.2 * exposure + 0.2 * resolution``:

- **sharpness**: the variance of the Laplacian of the grey image (a blurred or shaken shot has weak edges, so low
  variance), relative to the sharpest photo of the group. Every member is measured at the *same* size, the group's
  smallest longest side (at most ``RATE_SIDE`` pixels), because shrinking an image raises its Laplacian variance:
  a small export would otherwise look sharper than its original.
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
SHARPNESS_WEIGHT, EXPOSURE_WEIGHT, RESOLUTION_WEIGHT = 0.6, 0.2, 0.2


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
    sizes = []
    for path in paths:
        try:
            with Image.open(path) as image:
                sizes.append(max(image.size))
        except Exception:
            sizes.append(0)
    side = min([s for s in sizes if s] or [RATE_SIDE])
    side = max(8, min(side, RATE_SIDE))
    loaded = [load_grey(path, side) for path in paths]
    sharp = [laplacian_variance(g[0]) if g else 0.0 for g in loaded]
    pixels = [g[1] if g else 0 for g in loaded]
    best_sharp, most_pixels = max(sharp) or 1.0, max(pixels) or 1
    qualities = []
    for g, s, p in zip(loaded, sharp, pixels, strict=True):
        if g is None:
            qualities.append(0.0)
            continue
        qualities.append(SHARPNESS_WEIGHT * s / best_sharp + EXPOSURE_WEIGHT * exposure_score(g[0])
                         + RESOLUTION_WEIGHT * p / most_pixels)
    return qualities
