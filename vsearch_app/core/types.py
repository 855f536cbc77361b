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


# --- the photo library (core.service.LibraryService) ----------------------------------------------------------------


@dataclass(frozen=True)
class FolderInfo:
    path: Path
    online: bool


@dataclass(frozen=True)
class SearchHit:
    path: Path
    score: float  # cosine similarity of the photo to the query vector, in [-1, 1]


@dataclass(frozen=True)
class FailedFile:
    path: Path
    reason: str


@dataclass(frozen=True)
class LibraryStatus:
    model: str
    roots: list[FolderInfo]
    counts: dict[str, int]  # "indexed", "failed", "offline", "pending"
    failed: list[FailedFile]
    index_path: Path | None  # the folder holding the model's index files (one graph per shard); None before a save
    index_bytes: int
    embedded_this_session: int = 0  # photos this process embedded (proves skipped work in tests and logs)
    model_problem: str | None = None  # why the search model cannot be used now (not downloaded, no weights...)
    other_models: dict[str, int] = field(default_factory=dict)  # other models' names -> photos they indexed


PHASES = ("scanning", "embedding", "rebuilding", "saving", "idle")  # IndexProgress.phase, in the order a run goes


@dataclass(frozen=True)
class IndexProgress:
    """Where an index run (or the watcher) is. ``done``/``total`` count the phase's own units:

    - "scanning": the folders are compared with the disk; ``done`` photos seen so far, ``total`` 0 (unknown until
      the scan ends), ``current`` the folder being read;
    - "embedding": photos embedded (or failed) of those waiting; ``current`` the last photo of the committed batch;
    - "rebuilding": the vector index is opened (0 of 0 while a saved one is loaded), or rebuilt from the catalog
      (vectors done of total);
    - "saving": the vector index is written; the counters of the run it follows are kept, so a bar stays put;
    - "idle": the watcher has caught up and waits for changes (the counters of its last run, else 0 of 0).
    """

    done: int
    total: int
    failed: int
    rate: float  # files per second so far (embedding; 0.0 in the other phases)
    eta_s: float | None  # None until the rate is known
    phase: str = "embedding"  # one of PHASES
    current: Path | None = None


@dataclass(frozen=True)
class ChangeEvent:
    """What the watcher found changed on disk since its last report (LibraryService.start_watching's on_change),
    after the new photos were embedded (unless indexing is paused): a GUI can offer "3 new photos: refresh"."""

    new: int = 0
    changed: int = 0
    gone: int = 0
    moved: int = 0
    offline: int = 0
    returned: int = 0

    @property
    def any(self) -> bool:
        return bool(self.new or self.changed or self.gone or self.moved or self.offline or self.returned)


@dataclass(frozen=True)
class IndexReport:
    embedded: int = 0
    failed: int = 0
    skipped: int = 0  # vanished or still changing while read; left pending
    cancelled: bool = False
    seconds: float = 0.0


# --- queries (core.service.parse_query_terms / format_query) --------------------------------------------------------


@dataclass(frozen=True)
class QueryTerm:
    """One term of a search: some text, or an example photo, with a signed weight.

    The query vector is the weighted sum of the terms' unit vectors, so a negative weight pulls results away from
    the term ("exclude"); its magnitude says how strongly."""

    kind: str  # "text" or "image"
    value: str  # the text, or the image's path as a string
    weight: float = 1.0  # signed; never 0

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    @property
    def excluded(self) -> bool:
        return self.weight < 0


# --- thumbnails (core.thumbnails.ThumbnailCache, LibraryService.thumbnail) ------------------------------------------


@dataclass(frozen=True)
class Thumbnail:
    """A photo made small for display: exactly one of ``image`` and ``reason`` is set."""

    path: Path
    image: np.ndarray | None  # H x W x 3 uint8 RGB, upright (EXIF applied), longest side <= the max_side asked for
    reason: str | None = None  # why there is no image, in words: "file is missing", "cannot decode: ..."
