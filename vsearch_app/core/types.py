"""Small frozen dataclasses returned by core.service: what the CLI and the desktop app see of the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class EmbeddedItem:
    kind: str  # "image" or "text"
    input: str
    vector: np.ndarray


@dataclass(frozen=True)
class EmbedReport:
    model: str
    dim: int
    items: list[EmbeddedItem]
    failures: list[tuple[str, str]] = field(default_factory=list)  # (input, reason)


@dataclass(frozen=True)
class ModelInfo:
    repo_id: str
    kind: str  # "search", "caption" or "other"
    size_bytes: int
    path: Path
