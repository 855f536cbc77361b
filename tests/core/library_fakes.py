"""Helpers shared by the library tests: an embedder that needs no model and counts its work, generated photos, and
a driver for the real CLI in a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from vsearch_app.core.engine.embedder import ImageEmbeddings
from vsearch_app.core.engine.model_identity import identify
from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog

DIM = 8


def content_vector(data: bytes, dim: int = DIM) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


class FakeEmbedder:
    """Deterministic vectors from file content (or text); files starting with b"BAD" fail to decode."""

    model_id = "fake-model"
    dim = DIM

    def __init__(self) -> None:
        self.embedded_paths: list[str] = []
        self.image_calls = 0
        self.text_calls = 0
        self.lock = threading.Lock()
        self.before_batch = None  # optional hook(paths) for tests that act mid-run

    def embed_images(self, sources, *, batch_size=16, should_stop=None, on_batch=None):
        if self.before_batch is not None:
            self.before_batch(list(sources))
        vectors, indices, failures = [], [], []
        for start in range(0, len(sources), batch_size):
            if should_stop is not None and should_stop():
                break
            for i in range(start, min(start + batch_size, len(sources))):
                try:
                    data = Path(sources[i]).read_bytes()
                except OSError as exc:
                    failures.append((i, f"cannot read {sources[i]}: {exc.strerror}"))
                    continue
                if data.startswith(b"BAD"):
                    failures.append((i, f"cannot decode {sources[i]}: not an image"))
                    continue
                vectors.append(content_vector(data))
                indices.append(i)
                with self.lock:
                    self.embedded_paths.append(str(sources[i]))
            self.image_calls += 1
        stacked = np.stack(vectors) if vectors else np.zeros((0, DIM), np.float32)
        return ImageEmbeddings(stacked, indices, failures)

    def embed_texts(self, texts, *, batch_size=32):
        self.text_calls += 1
        return np.stack([content_vector(t.encode()) for t in texts])


TIMEOUT = 90.0


def make_photo(path: Path, seed: int, size=(64, 48)) -> Path:
    """A distinct picture: a few coloured rectangles on a coloured background."""
    rng = np.random.default_rng(seed)
    pixels = np.empty((size[1], size[0], 3), np.uint8)
    pixels[:] = rng.integers(0, 256, 3)
    for _ in range(4):
        x0, y0 = rng.integers(0, size[0] - 8), rng.integers(0, size[1] - 8)
        pixels[y0:y0 + rng.integers(6, 24), x0:x0 + rng.integers(6, 30)] = rng.integers(0, 256, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


class Cli:
    def __init__(self, tmp_path: Path, model_dir: Path) -> None:
        self.data_dir = tmp_path / "vsearch-data"
        self.model_dir = model_dir
        self.env = {**os.environ, "VSEARCH_DATA_DIR": str(self.data_dir), "HF_HUB_CACHE": str(tmp_path / "hub"),
                    "VSEARCH_LOG_LEVEL": "INFO", "HF_HUB_OFFLINE": "1"}

    def args(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "vsearch_app", *args, "--model", str(self.model_dir)]

    def run(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.args(*args), env=self.env, capture_output=True, text=True, timeout=TIMEOUT)
        assert proc.returncode == expect, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        return proc

    def json(self, *args: str):
        return json.loads(self.run(*args, "--json").stdout)

    def catalog(self) -> Catalog:
        return Catalog.open(self.data_dir / CATALOG_FILENAME)

    @property
    def model_key(self) -> str:
        """The id the catalog files this model's vectors under (its name and weights fingerprint)."""
        return identify(str(self.model_dir), self.model_dir).key


def embedded_count(log_text: str) -> int:
    return sum(int(n) for n in re.findall(r"embedded (\d+) photo\(s\)", log_text))
