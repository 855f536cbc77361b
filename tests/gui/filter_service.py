"""A small stand-in for LibraryService's filter, sort, facet and duplicate calls (issue 16's contract), over real
generated JPEGs with known dates, cameras and folders, so the filter bar and the Duplicates view can be tested
exactly (which photo must show, in which order) without a model. The end-to-end tests run the real service.

Scores are made up but fixed per photo and query (a text query "best:NAME" puts NAME first), and hits with a score
above GOOD_CUT are marked good matches, as the engine's calibration would.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QThread

from tests.gui.photos import landscape
from vsearch_app.core.types import (
    DuplicateGroup,
    DuplicateMember,
    FolderInfo,
    IndexProgress,
    LibraryStatus,
    SearchFilter,
    SearchHit,
    SortOrder,
    Thumbnail,
)

GOOD_CUT = 0.8


@dataclass(frozen=True)
class Photo:
    path: Path
    taken: str  # ISO date-time
    camera: str | None
    file_id: int


def make_library(root: Path) -> list[Photo]:
    """24 photos in two folders (Holidays/2019 and Phone), 2018-2021, three cameras (and some with none)."""
    cameras = ["Google Pixel 7", "Canon EOS 80D", None]
    photos = []
    for i in range(24):
        folder = root / ("Holidays/2019" if i % 3 == 0 else "Phone")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"IMG_{1000 + i}.jpg"
        landscape(i, 240, 180).save(path, "JPEG", quality=85)
        year, month = 2018 + i % 4, 1 + (i * 5) % 12
        photos.append(Photo(path, f"{year}-{month:02d}-{1 + i % 27:02d}T10:{i:02d}:00", cameras[i % 3], i + 1))
    return photos


class FakeResults:
    def __init__(self, hits: list[SearchHit]) -> None:
        self._hits = hits
        self.max_total = len(hits)

    def hits(self, offset: int, count: int) -> list[SearchHit]:
        return self._hits[offset:offset + count]


class FilterService:
    def __init__(self, root: Path, photos: list[Photo]) -> None:
        self.root = root
        self.photos = photos
        self.calls: list[tuple] = []
        self.duplicate_groups: list[DuplicateGroup] = []
        self.duplicates_gate: threading.Event | None = None  # when set, duplicates() waits on it (cancel tests)
        self.duplicates_started = threading.Event()
        self.closed = False
        self.facet_threads: set[str] = set()  # the threads photo_months ran on

    # --- session life ---------------------------------------------------------------------------------------------

    def prepare(self, progress=None, cancel=None):
        return True

    def start_watching(self, progress=None, on_change=None, **options):
        pass

    def stop_watching(self, timeout=None):
        return True

    is_watching = False
    watch_error = None

    def close(self):
        self.closed = True

    def status(self):
        roots = [FolderInfo(self.root / "Holidays", True), FolderInfo(self.root / "Phone", True)]
        return LibraryStatus("fake", roots, {"indexed": len(self.photos)}, [], None, 0)

    def folder_counts(self):
        return {}

    def thumbnail(self, path, max_side=256):
        with Image.open(path) as image:
            image.thumbnail((max_side, max_side))
            return Thumbnail(Path(path), np.asarray(image.convert("RGB")))

    # --- search, filters, facets ----------------------------------------------------------------------------------

    def search_results(self, terms, threshold=None, folder=None, limit=None, filters=None, sort=SortOrder.SCORE):
        self.calls.append(("search", tuple(terms), filters, sort))
        chosen = [p for p in self.photos if _inside(p, filters)]
        words = " ".join(t.value for t in terms)
        hits = [SearchHit(p.path, _score(p, words), file_id=p.file_id, taken_at=p.taken, taken_at_source="exif",
                          camera=p.camera, good_match=bool(terms) and _score(p, words) > GOOD_CUT) for p in chosen]
        if sort == SortOrder.NAME:
            hits.sort(key=lambda h: (h.path.name, str(h.path.parent)))
        elif sort == SortOrder.DATE or not terms:
            hits.sort(key=lambda h: (h.taken_at or "", str(h.path)), reverse=True)
        else:
            hits.sort(key=lambda h: -h.score)
        return FakeResults(hits)

    def photo_months(self, filters=None):
        self.facet_threads.add(QThread.currentThread().objectName())
        counts: dict[str, int] = {}
        for p in self.photos:
            if _inside(p, filters):
                counts[p.taken[:7]] = counts.get(p.taken[:7], 0) + 1
        return sorted(counts.items())

    def cameras(self):
        counts: dict[str, int] = {}
        for p in self.photos:
            if p.camera:
                counts[p.camera] = counts.get(p.camera, 0) + 1
        return sorted(counts.items(), key=lambda item: -item[1])

    def duplicates(self, *, folder=None, threshold=None, progress=None, cancel=None):
        self.calls.append(("duplicates", folder, threshold))
        self.duplicates_started.set()
        if progress is not None:
            progress(IndexProgress(5, 10, 0, 0.0, None, phase="comparing"))
        if self.duplicates_gate is not None:
            while not self.duplicates_gate.wait(0.02):
                if cancel is not None and cancel.is_set():
                    return []
        return list(self.duplicate_groups)


def _inside(photo: Photo, filters: SearchFilter | None) -> bool:
    if filters is None:
        return True
    if filters.taken_after and photo.taken < filters.taken_after:
        return False
    if filters.taken_before and photo.taken >= filters.taken_before:
        return False
    if filters.folders and not any(photo.path.is_relative_to(f) for f in filters.folders):
        return False
    if filters.camera and filters.camera.lower() not in (photo.camera or "").lower():
        return False
    return True


def _score(photo: Photo, words: str) -> float:
    if words.startswith("best:"):
        return 0.95 if photo.path.name == words[5:] else 0.3
    return round(0.2 + (photo.file_id * 37 % 23) / 30, 3)


def duplicate_group(kind: str, paths: list[Path], qualities: list[float]) -> DuplicateGroup:
    members = [DuplicateMember(p, i + 1, q, 1.0 if i == 0 else 0.97, size=p.stat().st_size, width=240, height=180)
               for i, (p, q) in enumerate(zip(paths, qualities, strict=True))]
    return DuplicateGroup(kind, members)
