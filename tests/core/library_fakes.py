"""Test doubles shared by the library tests: an embedder that needs no model and counts its work."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np

from vsearch_app.core.embedder import ImageEmbeddings

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
