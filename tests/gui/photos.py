"""Generated photo-like JPEGs for the grid tests and screenshots: skies, a sun, hills; landscape and portrait."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from PIL import Image


def _rgb(hue: float, saturation: float, value: float) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(hue % 1.0, saturation, value)) * 255


def landscape(seed: int, width: int = 320, height: int = 240) -> Image.Image:
    """A small scene whose colours and shapes depend on ``seed``: a sky gradient, a sun, two rows of hills."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    sky_hue = rng.uniform(0.5, 0.7) if seed % 3 else rng.uniform(0.0, 0.12)  # day skies and some sunsets
    top, horizon = _rgb(sky_hue, 0.7, 0.55), _rgb(sky_hue + 0.05, 0.35, 0.98)
    t = (y / height)[..., None]
    pixels = top * (1 - t) + horizon * t
    sun_x, sun_y, sun_r = rng.uniform(0.2, 0.8) * width, rng.uniform(0.15, 0.4) * height, 0.08 * min(width, height)
    sun = (x - sun_x) ** 2 + (y - sun_y) ** 2 < sun_r**2
    pixels[sun] = _rgb(0.13, 0.25, 1.0)
    ground_hue = rng.uniform(0.2, 0.4) if seed % 4 else rng.uniform(0.05, 0.12)
    for layer, (level, amplitude, shade) in enumerate(((0.55, 0.08, 0.55), (0.7, 0.06, 0.35))):
        phase, frequency = rng.uniform(0, 6.28), rng.uniform(1.5, 4.0)
        ridge = height * (level + amplitude * np.sin(phase + frequency * x / width * 3.14))
        pixels[y > ridge] = _rgb(ground_hue + 0.03 * layer, 0.6, shade)
    noise = rng.normal(0, 4, pixels.shape)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")


def write_photos(folder: Path, count: int) -> list[Path]:
    """``count`` JPEGs in ``folder`` (every fifth one portrait), named like camera files."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        size = (240, 320) if i % 5 == 4 else (320, 240)
        path = folder / f"IMG_{2400 + i:04d}.jpg"
        landscape(i, *size).save(path, "JPEG", quality=88)
        paths.append(path)
    return paths
