"""What the CLI and the desktop app see of the engine: the small frozen dataclasses core.service returns, the file
states, and the device and dtype choices. Nothing heavy is imported here (the front ends import it at start-up)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
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


@dataclass(frozen=True)
class DownloadProgress:
    """Where a model download stands (core.service.download_model): bytes of the model's needed files already in the
    hub cache, of how many in all. ``current_file`` is the repo file being fetched, None before the first and after
    the last."""

    done_bytes: int
    total_bytes: int
    current_file: str | None = None


# --- the photo library (core.service.LibraryService) ----------------------------------------------------------------


@dataclass(frozen=True)
class FolderInfo:
    path: Path
    online: bool


@dataclass(frozen=True)
class SearchHit:
    """One search result, with what the catalog knows of the photo (read in the same lookup as its path)."""

    path: Path
    score: float  # cosine similarity of the photo to the query vector, in [-1, 1]
    file_id: int = -1  # the catalog's id of the photo (QueryTerm.of_photo(file_id) finds similar ones); -1: unknown
    size: int = 0  # bytes
    width: int | None = None  # pixels as the photo is shown (EXIF rotation applied); None when unknown
    height: int | None = None
    taken_at: str | None = None  # ISO 8601 local time without zone, "2021-05-03T14:22:01"; None when unknown
    taken_at_source: str | None = None  # "exif" (DateTimeOriginal) or "mtime" (the file's modification time)
    caption: str = ""  # the caption stored in the catalog, "" when there is none
    online: bool = True  # False when the photo's folder is not reachable now (unplugged drive, unmounted share)
    camera: str | None = None  # "Google Pixel 7" (EXIF make and model); None when unknown
    caption_matched: bool = False  # the query's words matched this photo's stored caption (caption fusion)
    good_match: bool = False  # above the query's calibrated good-match cut (see core/library/good_match.py)


@dataclass(frozen=True)
class SearchPage:
    """Hits ``offset`` .. ``offset + len(hits) - 1`` of a query's ranking (core.service.SearchResults.page).

    ``total_known`` is how many hits the ranking holds so far; while ``exhausted`` is False there may be more (the
    engine widens its search as later pages are asked for); once it is True, ``total_known`` is the final count."""

    hits: list[SearchHit]
    offset: int
    total_known: int
    exhausted: bool

    @property
    def has_more(self) -> bool:
        """Whether a page after this one may hold hits."""
        return not self.exhausted or self.offset + len(self.hits) < self.total_known


class SortOrder(StrEnum):
    """How a result list is ordered. SCORE: best match first (a query without terms falls back to DATE)."""

    SCORE = "score"
    DATE = "date"  # newest capture time first; ties by path, so the order is stable
    NAME = "name"  # file name, then folder


@dataclass(frozen=True)
class SearchFilter:
    """Which photos a search or a browse may return; None / empty means no limit on that fact. The engine applies
    the filter before the top-k cut, so a narrow filter still returns its best matches."""

    taken_after: str | None = None  # ISO 8601 local date or date-time; inclusive ("2019-01-01")
    taken_before: str | None = None  # ISO 8601 local date or date-time; exclusive ("2020-01-01")
    folders: tuple[Path, ...] = ()  # inside any of these folders (absolute paths)
    camera: str | None = None  # case-insensitive substring of "make model" ("pixel 7")
    min_pixels: int | None = None  # width x height at least this
    orientation: str | None = None  # "landscape", "portrait" or "square"

    @property
    def is_empty(self) -> bool:
        return self == SearchFilter()


@dataclass(frozen=True)
class DuplicateMember:
    path: Path
    file_id: int
    quality: float  # the best-shot score (sharpness, exposure, resolution); higher is better
    similarity: float  # cosine similarity to the group's keeper (1.0 for the keeper itself)
    size: int = 0
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class DuplicateGroup:
    """Photos of one scene. ``members[0]`` is the suggested keeper. kind "exact": byte-identical files (certain);
    "near": near-identical by their vectors (bursts, edits, resized exports)."""

    kind: str
    members: list[DuplicateMember]


# Caption fusion in search (core/library/search.py): how far a stored caption with the query's words raises its photo
# (1: a caption with every word of the query puts it first; 0 is off). Here so that the front ends can offer it.
DEFAULT_CAPTION_WEIGHT = 1.0
MAX_CAPTION_WEIGHT = 10.0

# The choices of ``settings.device`` and ``settings.dtype`` (core/engine/devices.py turns them into torch's), here
# so that the front ends can offer them without importing torch.
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")


class FileState(StrEnum):
    """Where a photo stands in the catalog (the values are what the database stores)."""

    PENDING = "pending"  # new or changed: waiting to be embedded
    INDEXED = "indexed"  # embedded (with the search model, when counts are a model's view)
    FAILED = "failed"  # could not be decoded; tried again once its size or mtime changes
    OFFLINE = "offline"  # its folder is not reachable now (an unplugged drive); kept, never deleted


@dataclass(frozen=True)
class FailedFile:
    path: Path
    reason: str


@dataclass(frozen=True)
class LibraryStatus:
    model: str
    roots: list[FolderInfo]
    counts: dict[str, int]  # photos per FileState value: "indexed", "failed", "offline", "pending"
    failed: list[FailedFile]
    index_path: Path | None  # the folder holding the model's index files (one graph per shard); None before a save
    index_bytes: int
    embedded_this_session: int = 0  # photos this process embedded (proves skipped work in tests and logs)
    model_problem: str | None = None  # why the search model cannot be used now (not downloaded, no weights...)
    other_models: dict[str, int] = field(default_factory=dict)  # other models' names -> photos they indexed
    catalog_notice: str | None = None  # the catalog was found damaged on open and restored or restarted: what
                                       # happened, in one line (core/store/catalog_recovery.py); show it to the user


# IndexProgress.phase, in the order a run goes
PHASES = ("scanning", "embedding", "rebuilding", "reading metadata", "saving", "idle")


@dataclass(frozen=True)
class IndexProgress:
    """Where an index run (or the watcher) is. ``done``/``total`` count the phase's own units:

    - "scanning": the folders are compared with the disk; ``done`` photos seen so far, ``total`` 0 (unknown until
      the scan ends), ``current`` the folder being read;
    - "embedding": photos embedded (or failed) of those waiting; ``current`` the last photo of the committed batch;
    - "rebuilding": the vector index is opened (0 of 0 while a saved one is loaded), or rebuilt from the catalog
      (vectors done of total);
    - "reading metadata": the EXIF facts of photos indexed before they were read (photos done of total; nothing is
      embedded);
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
    unreadable: tuple[tuple[str, str], ...] = ()  # (folder or file, reason) the scan could not read, so skipped


# --- queries (core.service.parse_query_terms / format_query) --------------------------------------------------------


TERM_KINDS = ("text", "image", "photo")


@dataclass(frozen=True)
class QueryTerm:
    """One term of a search: some text, an example image file, or an indexed photo, with a signed weight.

    The query vector is the weighted sum of the terms' unit vectors, so a negative weight pulls results away from
    the term ("exclude"); its magnitude says how strongly. Kinds:

    - "text": ``value`` is the text;
    - "image": ``value`` is the path of an image file (an indexed, unchanged photo reuses its stored vector; any
      other image is embedded by the model);
    - "photo": ``value`` is a catalog file id as text (``SearchHit.file_id``): that photo's stored vector, no model
      run ("Find similar"). The query text syntax cannot write this kind (format_query refuses it)."""

    kind: str  # one of TERM_KINDS
    value: str
    weight: float = 1.0  # signed; never 0

    @classmethod
    def of_photo(cls, file_id: int, weight: float = 1.0) -> QueryTerm:
        """The "photo" term of an indexed photo (e.g. a hit's ``file_id``)."""
        return cls("photo", str(int(file_id)), weight)

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    @property
    def is_photo(self) -> bool:
        return self.kind == "photo"

    @property
    def excluded(self) -> bool:
        return self.weight < 0


# --- thumbnails (core.library.thumbnails.ThumbnailCache, LibraryService.thumbnail) -----------------------------------


@dataclass(frozen=True)
class Thumbnail:
    """A photo made small for display: exactly one of ``image`` and ``reason`` is set."""

    path: Path
    image: np.ndarray | None  # H x W x 3 uint8 RGB, upright (EXIF applied), longest side <= the max_side asked for
    reason: str | None = None  # why there is no image, in words: "file is missing", "cannot decode: ..."


# --- captions (LibraryService.caption / stored_caption / load_captioner) --------------------------------------------


@dataclass(frozen=True)
class CaptionSettings:
    """What to ask the caption model and how to choose its words; the service checks the values
    (InvalidArgumentError with ``param`` set to the field's name)."""

    prompt: str = "caption en"  # "caption en", "describe en", "question: what is this?", or a sentence start
    max_tokens: int = 100  # longest answer, in tokens
    sample: bool = False  # False: greedy (the most likely words); True: temperature + top-p sampling
    temperature: float = 0.8  # used when sampling; must be > 0
    top_p: float = 0.9  # nucleus size, in (0, 1]
    seed: int | None = None  # makes sampling repeatable


@dataclass(frozen=True)
class CaptionResult:
    """Text a caption model wrote about one photo: fresh from the model, or as stored in the library."""

    text: str
    prompt: str
    model: str  # the caption model's hub id, or the absolute folder of a local checkpoint
    stop_reason: str  # "stop_token" (the model finished), "max_tokens" or "cancelled" (stopped early: partial text)
    token_count: int = 0  # tokens generated, the stop token included
    token_ids: list[int] = field(default_factory=list)  # the generated ids (empty for a stored caption)
    prefill_s: float = 0.0  # image encoding + prompt prefill + first token
    decode_s: float = 0.0
    decode_tokens_per_s: float = 0.0
    settings: CaptionSettings | None = None  # the generation settings used (None when not known)
    stored_at: float | None = None  # when the library stored it (seconds since the epoch); None: not stored

    @property
    def stopped(self) -> bool:
        """True when the generation was stopped before the model finished (the text is partial)."""
        return self.stop_reason == "cancelled"


@dataclass(frozen=True)
class ModelLoadProgress:
    """A model being loaded, step by step (each step is a phase; weights are read in one step)."""

    model: str
    phase: str  # "locating", "reading weights", "preparing", "ready"
    done: int  # steps finished
    total: int


@dataclass(frozen=True)
class CaptionBatchProgress:
    """Where a batch caption job (LibraryService.caption_many) stands: ``done`` photos handled (captioned, skipped
    or failed) of ``total``. ``phase``: "loading" (the caption model, once per session), "captioning" (``current``
    is the photo being written about), "done"."""

    done: int
    total: int
    captioned: int = 0
    skipped: int = 0
    failed: int = 0
    phase: str = "captioning"
    current: Path | None = None


@dataclass(frozen=True)
class CaptionBatchReport:
    """What a batch caption job did. ``skipped``: photos that already had a finished caption for the caption model
    and prompt (so a cancelled job run again writes only the rest); ``cancelled``: stopped before the end (a photo
    stopped mid-caption keeps its partial text, marked stopped, and is captioned again next time)."""

    total: int = 0
    captioned: int = 0
    skipped: int = 0
    failed: list[FailedFile] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0
