"""A generated set of near-duplicate photos, and an embedder of pixel content, for the duplicate finder's tests.

Each *scene* is a sharp picture (gradient sky, textured ground, random shapes with hard edges) saved as an original
JPEG, plus copies as a photo library collects them: a resized export, a heavily re-compressed copy, a slight crop
and a blurred (shaken) shot. Other scenes are single photos. ``PixelEmbedder`` embeds the pixels themselves
(a 24 x 24 colour thumbnail, mean removed, L2-normalised): deterministic, no model, and near-identical pictures get
near-identical vectors, as they do with SigLIP.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from vsearch_app.core.engine.embedder import ImageEmbeddings

THUMB = 24
VARIANTS = ("original", "resized", "recompressed", "cropped", "blurred")


def scene(seed: int, size=(480, 360)) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, h)[:, None, None]
    pixels = (top * (1 - ramp) + bottom * ramp).repeat(w, axis=1)
    pixels += rng.normal(0, 12, (h, w, 3))  # texture: what sharpness is measured on
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 9))):
        x0, y0 = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
        box = (x0, y0, x0 + int(rng.integers(30, 200)), y0 + int(rng.integers(30, 160)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour, outline=(0, 0, 0), width=2)
    return image


def variant(image: Image.Image, kind: str) -> tuple[Image.Image, int]:
    """The copy of ``kind`` and the JPEG quality to save it with."""
    w, h = image.size
    if kind == "resized":
        return image.resize((w // 2, h // 2), Image.Resampling.LANCZOS), 90
    if kind == "recompressed":
        return image, 35
    if kind == "cropped":
        dx, dy = w // 25, h // 25  # 4 % off each side
        return image.crop((dx, dy, w - dx, h - dy)), 90
    if kind == "blurred":
        return image.filter(ImageFilter.GaussianBlur(2.5)), 90
    return image, 95


def write_library(root, scenes: int = 12, singles: int = 24, seed: int = 0) -> dict[str, list]:
    """Files under ``root``: per duplicated scene one file per VARIANTS, plus ``singles`` unrelated photos.
    Returns {"groups": [[path of each variant, original first], ...], "singles": [paths]}."""
    groups, alone = [], []
    for s in range(scenes):
        picture = scene(seed * 1000 + s)
        paths = []
        for kind in VARIANTS:
            copy, quality = variant(picture, kind)
            path = root / f"scene{s:02d}" / f"{kind}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            copy.save(path, quality=quality)
            paths.append(path)
        groups.append(paths)
    for s in range(singles):
        path = root / "singles" / f"single{s:02d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        scene(seed * 1000 + 500 + s).save(path, quality=92)
        alone.append(path)
    return {"groups": groups, "singles": alone}


def pixel_vector(path) -> np.ndarray:
    with Image.open(path) as image:
        thumb = ImageOps.exif_transpose(image).convert("RGB").resize((THUMB, THUMB), Image.Resampling.BOX)
    v = np.asarray(thumb, dtype=np.float32).reshape(-1)
    v -= v.mean()
    return v / max(float(np.linalg.norm(v)), 1e-6)


class PixelEmbedder:
    """An embedder (the Indexer's protocol) whose vectors are the photos' pixel thumbnails."""

    model_id = "pixels"
    dim = THUMB * THUMB * 3

    def embed_images(self, sources, *, batch_size=16, should_stop=None, on_batch=None):
        vectors = [pixel_vector(s) for s in sources]
        stacked = np.stack(vectors) if vectors else np.zeros((0, self.dim), np.float32)
        return ImageEmbeddings(stacked, list(range(len(vectors))), [])

    def embed_texts(self, texts, *, batch_size=32):
        rng = np.random.default_rng(len(texts))
        v = rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)
