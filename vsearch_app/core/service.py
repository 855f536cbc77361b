"""The one API the CLI and the desktop app use.

Synchronous and thread-agnostic; it returns small frozen dataclasses (core.types) and numpy arrays, never tensors,
Qt objects or sqlite rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vsearch_app.core import models
from vsearch_app.core.embedder import Embedder
from vsearch_app.core.types import EmbeddedItem, EmbedReport, ModelInfo
from vsearch_app.errors import InvalidArgumentError
from vsearch_app.settings import AppSettings

# --- models ---------------------------------------------------------------------------------------------------------


def model_dir(settings: AppSettings, model: str | None = None) -> Path:
    """Local folder of ``model`` (default: the settings' search model); never touches the network."""
    return models.resolve_model_dir(model or settings.model, settings.hub_cache_dir)


def load_embedder(settings: AppSettings) -> Embedder:
    folder = model_dir(settings)
    model_id = settings.model if not Path(settings.model).expanduser().is_dir() else str(folder)
    return Embedder.load(folder, device=settings.device, dtype=settings.dtype, model_id=model_id)


def list_models(settings: AppSettings) -> list[ModelInfo]:
    cached = models.list_cached_models(settings.hub_cache_dir)
    return [ModelInfo(m.repo_id, m.kind, m.size_bytes, m.path) for m in cached]


def download_model(settings: AppSettings, repo_id: str, token: str | None = None) -> Path:
    return models.download_model(repo_id, settings.hub_cache_dir, token=token)


# --- embedding ------------------------------------------------------------------------------------------------------


def embed_inputs(settings: AppSettings, inputs: Sequence[tuple[str, str]], *, batch_size: int = 16) -> EmbedReport:
    """Embed ("image", path) and ("text", sentence) inputs, keeping their order; unreadable images are reported in
    ``failures`` instead of raising."""
    for kind, _ in inputs:
        if kind not in ("image", "text"):
            raise InvalidArgumentError(f"unknown input kind {kind!r}")
    if not inputs:
        raise InvalidArgumentError("nothing to embed: give at least one --image or --text")
    embedder = load_embedder(settings)
    image_positions = [i for i, (kind, _) in enumerate(inputs) if kind == "image"]
    text_positions = [i for i, (kind, _) in enumerate(inputs) if kind == "text"]
    vectors = {}
    failures = []
    if image_positions:
        result = embedder.embed_images([inputs[i][1] for i in image_positions], batch_size=batch_size)
        for row, local in enumerate(result.indices):
            vectors[image_positions[local]] = result.vectors[row]
        failures = [(inputs[image_positions[local]][1], reason) for local, reason in result.failures]
    if text_positions:
        text_vectors = embedder.embed_texts([inputs[i][1] for i in text_positions])
        vectors.update(zip(text_positions, text_vectors, strict=True))
    items = [EmbeddedItem(kind, value, vectors[i]) for i, (kind, value) in enumerate(inputs) if i in vectors]
    return EmbedReport(model=embedder.model_id, dim=embedder.dim, items=items, failures=failures)
