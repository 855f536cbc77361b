"""The one API the CLI and the desktop app use.

Synchronous and thread-agnostic; it returns small frozen dataclasses (core.types) and numpy arrays, never tensors,
Qt objects or sqlite rows. Importing it does not import torch: the model code loads when a model is first needed, so
`vsearch --help` and the desktop app's first window do not wait for it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vsearch_app.core.engine import hub
from vsearch_app.core.engine.model_identity import ModelIdentity, display_name, identify
from vsearch_app.core.library import query as query_syntax
from vsearch_app.core.library.caption_match import DEFAULT_CAPTION_WEIGHT, check_caption_weight
from vsearch_app.core.library.duplicates import NEAR_THRESHOLD, find_duplicates
from vsearch_app.core.library.index_writer import IndexWriter
from vsearch_app.core.library.library import Library
from vsearch_app.core.library.phases import AnyEvent, check_cancel
from vsearch_app.core.library.search import (  # SearchResults: front ends annotate with it from here
    MAX_RESULTS,
    SearchResults,
)
from vsearch_app.core.store.data_dir import is_read_only, prepare_data_dir
from vsearch_app.core.types import (
    CaptionBatchProgress,
    CaptionBatchReport,
    CaptionResult,
    CaptionSettings,
    ChangeEvent,
    DownloadProgress,
    DuplicateGroup,
    EmbeddedItem,
    EmbedReport,
    FailedFile,
    FolderInfo,
    IndexProgress,
    IndexReport,
    LibraryStatus,
    ModelInfo,
    ModelLoadProgress,
    QueryTerm,
    SearchFilter,
    SearchHit,
    SearchPage,
    SortOrder,
    Thumbnail,
)
from vsearch_app.errors import InvalidArgumentError, ModelNotFoundError, OperationCancelled, VSearchError
from vsearch_app.settings import DEFAULT_MODEL, AppSettings

if TYPE_CHECKING:  # torch-heavy: imported where a model is loaded (see the module docstring)
    from vsearch_app.core.engine.embedder import Embedder

# --- models ---------------------------------------------------------------------------------------------------------


def model_dir(settings: AppSettings, model: str | None = None) -> Path:
    """Local folder of ``model`` (default: the settings' search model); never touches the network."""
    return hub.resolve_model_dir(model or settings.search_model, settings.hub_cache_dir)


def model_name(settings: AppSettings, model: str | None = None) -> str:
    """How a search model is remembered and shown: its hub id, or the resolved folder of a local checkpoint (so
    a relative path given in one folder still works from another)."""
    model = model or settings.search_model
    if Path(model).expanduser().is_dir():
        return str(model_dir(settings, model))
    return model


def model_identity(settings: AppSettings, model: str | None = None) -> ModelIdentity:
    """Name and weights fingerprint of a local search model, without loading it (ModelNotFoundError when it is
    not here, CheckpointError when the folder has no usable weights)."""
    return identify(model_name(settings, model), model_dir(settings, model))


def load_embedder(settings: AppSettings, model: str | None = None, *, model_id: str | None = None) -> Embedder:
    from vsearch_app.core.engine.embedder import Embedder

    return Embedder.load(model_dir(settings, model), device=settings.device, dtype=settings.dtype,
                         model_id=model_id or model_name(settings, model))


def list_models(settings: AppSettings) -> list[ModelInfo]:
    cached = hub.list_cached_models(settings.hub_cache_dir)
    return [ModelInfo(m.repo_id, m.kind, m.size_bytes, m.path) for m in cached]


def download_model(settings: AppSettings, repo_id: str, token: str | None = None,
                   progress: Callable[[DownloadProgress], None] | None = None,
                   cancel: threading.Event | None = None) -> Path:
    """Fetch a model into the hub cache (the only call that uses the network) and return its folder. ``progress``
    gets DownloadProgress a few times a second; setting ``cancel`` raises DownloadCancelled promptly, keeping the
    files already fetched for the next try. Offline, gated or unknown models raise DownloadError saying what to do."""
    return hub.download_model(repo_id, settings.hub_cache_dir, token=token, progress=progress, cancel=cancel)


# --- embedding ------------------------------------------------------------------------------------------------------


def embed_inputs(settings: AppSettings, inputs: Sequence[tuple[str, str]], *, batch_size: int = 16) -> EmbedReport:
    """Embed ("image", path) and ("text", sentence) inputs, keeping their order; unreadable images are reported in
    ``failures`` instead of raising."""
    for kind, _ in inputs:
        if kind not in ("image", "text"):
            raise InvalidArgumentError(f"unknown input kind {kind!r}")
    if not inputs:
        raise InvalidArgumentError("nothing to embed: give at least one image or text", param="inputs")
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


# --- query text <-> terms (the desktop app's chips) -----------------------------------------------------------------


def parse_query_terms(text: str, cwd: str | Path | None = None) -> list[QueryTerm]:
    """The terms of a query in the search syntax (what ``search`` accepts); relative image paths are resolved
    against ``cwd`` (default: the working directory). Raises InvalidArgumentError (param "query") with a one-line
    reason."""
    return query_syntax.parse_query(text, cwd=cwd)


def format_query(terms: Sequence[QueryTerm]) -> str:
    """Query text that ``parse_query_terms`` reads back as ``terms``; raises InvalidArgumentError for a term the
    syntax cannot express (zero weight, empty value, a path containing both kinds of quote, a "photo" term)."""
    return query_syntax.format_query(terms)


# --- captions -------------------------------------------------------------------------------------------------------


def caption_model_dir(settings: AppSettings, model: str | None = None) -> Path:
    """Local folder of the caption model; a missing PaliGemma gets the gated-repo how-to."""
    model = model or settings.caption_model
    try:
        return hub.resolve_model_dir(model, settings.hub_cache_dir, param="caption_model")
    except ModelNotFoundError as exc:
        if Path(model).expanduser().exists() or "/" not in model or model.startswith((".", "~", "/")):
            raise
        raise ModelNotFoundError(
            f"caption model {model} is not downloaded yet. PaliGemma models are gated: accept the licence at "
            f"https://huggingface.co/{model} while logged in to huggingface.co, then run "
            f"`vsearch models download {model}` with a token (set HF_TOKEN, or run `hf auth login` first). "
            "Or use a local checkpoint folder as the caption model.", param="caption_model"
        ) from exc


def caption(
    settings: AppSettings,
    image: str | Path,
    caption_settings: CaptionSettings | None = None,
    *,
    on_token: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> CaptionResult:
    """Caption (or answer a prompt about) one photo in a short-lived session: ``LibraryService.caption`` with one
    model load, storing the result when the photo is in the library. A long-lived caller keeps a LibraryService."""
    with LibraryService.open(settings) as session:
        return session.caption(image, caption_settings or CaptionSettings(), on_token=on_token, cancel=cancel)


# --- the photo library ----------------------------------------------------------------------------------------------


DUPLICATE_THRESHOLD = NEAR_THRESHOLD  # `vsearch duplicates`' default --threshold (core/library/duplicates.py)
MODEL_SETTING = "model"  # the library's remembered search model (catalog setting)
CAPTION_WEIGHT_SETTING = "caption_weight"  # how much a matching caption raises a photo (catalog setting)

Query = str | Sequence[str] | Sequence[QueryTerm]  # query text, command-line words, or structured terms


class LibraryService:
    """Watched folders, indexing, watching and search over one data directory: a session that a desktop app keeps
    open for weeks and a CLI command for one call. Open with ``LibraryService.open``; ``close`` stops and joins every
    thread it started, saves what was embedded and releases the data folder; afterwards calls raise
    LibraryClosedError. The model is loaded once, when something first needs it (or by ``prepare``), and shared.

    One writer (core/library/index_writer.py): ``index()`` runs on a thread of the session's and its caller waits; a
    second ``index()`` meanwhile joins the same run, and ``index()`` while the session watches (``start_watching``) asks
    the watcher for a full pass and waits for it; no photo is ever embedded twice. ``pause_indexing()`` holds the
    embedding of either between batches. Searches never wait for an index save.

    The search model is the one chosen for this run (``settings.model``: flag or VSEARCH_MODEL), else the one the
    library remembers, else the default. An index run that succeeds remembers its model, so later commands use it
    without being told; ``set_model`` changes it. Vectors are filed under the model's identity (name + weights
    fingerprint): a retrained checkpoint is a new model, and no model's vectors are ever discarded by another."""

    def __init__(self, settings: AppSettings, library: Library) -> None:
        self.settings = settings
        self._library = library
        self._identity: ModelIdentity | None = None
        self._page_lock = threading.Lock()  # guards the ranking search_page keeps for the next page
        self._last_results_key: tuple | None = None
        self._last_results: SearchResults | None = None
        library.on_index_done = self._remember_model
        self._writer = IndexWriter(library)  # every thread this session starts is one of its

    @classmethod
    def open(cls, settings: AppSettings) -> LibraryService:
        # DataDirError, one line, for a file, /proc/x...; a folder it may only read opens read-only (search works)
        folder = prepare_data_dir(settings.data_dir, read_only_ok=True)
        service: LibraryService | None = None

        def model_key() -> str:
            return service.model_identity().key

        def embedder() -> Embedder:
            from vsearch_app.core.engine.embedder import Embedder

            identity = service.model_identity()
            # The library decodes users' files in worker processes: a decoder crash or hang fails one file only.
            return Embedder.load(identity.folder, device=settings.device, dtype=settings.dtype, model_id=identity.key,
                                 isolate_decoding=True)

        library = Library(folder, model_id=model_key, embedder_factory=embedder, read_only=is_read_only(folder))
        service = cls(settings, library)
        return service

    def close(self) -> None:
        """Cancel an index run, stop the watcher, wait for calls in progress (a ``prepare``), join every thread the
        session started (its model streams too), stop captioning (what was generated is stored), commit and save
        what was embedded, release the writer lock and close the catalog. Safe to call twice. Not from the
        session's own callbacks (LibraryBusyError)."""
        self._writer.close()
        self._close_captions()
        self._library.close()

    def prepare(
        self,
        progress: Callable[[IndexProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> bool:
        """Get ready so that the first search is fast: load the search model and run its text tower once (torch
        sets itself up on the first call), then open the vector index, rebuilding it from the catalog if its files
        are missing or damaged (``progress``: "rebuilding"). Returns False when ``cancel`` or ``close()`` stopped
        it; the checks come between the steps and during a rebuild (reading the weights, a few seconds, is not
        interrupted). Raises ModelNotFoundError or CheckpointError when the model cannot be used."""
        with self._writer.operation():
            stop = AnyEvent(cancel, self._writer.closing)
            try:
                self._library.model_id  # noqa: B018 - looks the model up (a missing one raises here)
                check_cancel(stop, "loading the search model")
                embedder = self._library.embedder()
                check_cancel(stop, "warming up the search model")
                embedder.embed_texts(["a photo"])
                self._library.vector_index(create=False, progress=progress, cancel=stop)
            except OperationCancelled:
                return False
        return True

    def __enter__(self) -> LibraryService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the search model ---------------------------------------------------------------------------------------

    @property
    def model_choice(self) -> str:
        """The search model as chosen (before it is looked up): this run's choice, the remembered one, the default."""
        return self.settings.model or self.remembered_model() or DEFAULT_MODEL

    def remembered_model(self) -> str | None:
        return self._library.catalog.get_setting(MODEL_SETTING)

    def model_identity(self) -> ModelIdentity:
        """The search model's identity (looked up once; raises ModelNotFoundError or CheckpointError)."""
        if self._identity is None:
            self._identity = model_identity(self.settings, self.model_choice)
        return self._identity

    def set_model(self, model: str | None) -> str | None:
        """Remember ``model`` as this library's search model (None: forget it, back to the default). A local folder
        must be a checkpoint and is stored as its absolute path; a hub id may still have to be downloaded.
        Returns what is stored."""
        if model is None:
            stored = None
        elif Path(model).expanduser().exists():
            stored = model_identity(self.settings, model).name
        elif hub.looks_like_repo_id(model):
            stored = model
        else:
            raise ModelNotFoundError(f"model folder {model!r} does not exist, and it is not a Hugging Face model id")
        self._library.catalog.set_setting(MODEL_SETTING, stored)
        self._identity = None
        return stored

    def _remember_model(self) -> None:
        name = display_name(self._library.model_id)
        if self.remembered_model() != name:
            self._library.catalog.set_setting(MODEL_SETTING, name)

    # --- folders ------------------------------------------------------------------------------------------------

    def add_folder(self, path: str | Path) -> FolderInfo:
        root = self._library.add_folder(path)
        return FolderInfo(root.path, root.path.is_dir())

    def remove_folder(self, path: str | Path) -> int:
        """Stop watching ``path``; returns how many catalog entries were dropped (no file is touched)."""
        return self._library.remove_folder(path)

    def folders(self) -> list[FolderInfo]:
        return [FolderInfo(root.path, online) for root, online in self._library.roots_online()]

    def folder_counts(self) -> dict[Path, int]:
        """Photos known in each watched folder (indexed, pending, failed or offline alike), for a folder list."""
        return self._library.catalog.files_per_root()

    def index(
        self,
        progress: Callable[[IndexProgress], None] | None = None,
        cancel: threading.Event | None = None,
        pause: threading.Event | None = None,
    ) -> IndexReport:
        """Scan the folders and embed what has no current vector of the search model; blocks until done (the work
        runs on a session thread). ``progress`` gets phases: "scanning", "rebuilding", "embedding", "reading
        metadata" (the EXIF facts of photos indexed before they were read, core/library/metadata_backfill.py;
        nothing is embedded), "saving".
        A model that cannot be found or read raises before anything changes; a run that completes makes it the
        library's model. Another process writing the same data folder makes this raise LibraryBusyError (the data
        folder's writer lock, core/store/writer_lock.py, is held for the whole run; readers never take it).

        In this process nothing is embedded twice: a call while another ``index()`` runs joins that run (same
        report; its ``cancel`` cancels the shared run, its ``pause`` pauses it); a call while the session watches
        asks the watcher for a full pass now and returns that pass's report (its ``cancel`` only stops waiting).
        A read-only data folder raises DataDirError; a full disk DiskFullError (nothing embedded is lost)."""
        self._library.check_writable()
        return self._writer.index(progress, cancel, pause)

    def watch(
        self,
        stop: threading.Event,
        progress: Callable[[IndexProgress], None] | None = None,
        *,
        initial_index: bool = True,
        **options: float | bool,
    ) -> None:
        """Index, then keep the library current until ``stop`` is set: ``start_watching``, wait, ``stop_watching``
        (what `vsearch index --watch` does). Blocks; raises what made the watcher stop early."""
        self.start_watching(progress, initial_index=initial_index, **options)
        try:
            while not stop.wait(0.1) and self.is_watching:
                pass
        finally:
            self.stop_watching()
        if self.watch_error is not None:
            raise self.watch_error

    def start_watching(
        self,
        progress: Callable[[IndexProgress], None] | None = None,
        on_change: Callable[[ChangeEvent], None] | None = None,
        *,
        initial_index: bool = True,
        **options: float | bool,
    ) -> None:
        """Keep the library current on a session thread: index first (unless ``initial_index`` is False), then
        follow file-system events until ``stop_watching`` or ``close``. ``progress`` gets every phase ("idle" when
        caught up); ``on_change(ChangeEvent)`` is called after the watcher recorded changes on disk (new photos are
        embedded by then, unless paused). Both are called on the watcher's thread. The writer lock is held while it
        watches (LibraryBusyError, raised here, when another process writes); a model that cannot be used raises
        here too. A second start while watching raises LibraryBusyError. ``options``: see core.library.watcher."""
        self._library.model_id  # noqa: B018 - looks the model up: a wrong one fails here, before anything changes
        self._library.check_writable()
        self._writer.start_watching(progress, on_change, initial_index, options)

    def stop_watching(self, timeout: float | None = None) -> bool:
        """Stop watching after the batch in flight (committed and saved) and wait up to ``timeout`` seconds for the
        watcher's thread to end; True once it has. Nothing happens when not watching."""
        return self._writer.stop_watching(timeout)

    @property
    def is_watching(self) -> bool:
        return self._writer.is_watching

    @property
    def watch_error(self) -> BaseException | None:
        """The error that stopped the last watcher on its own (e.g. the model went missing), else None."""
        return self._writer.watch_error

    def pause_indexing(self) -> None:
        """Hold embedding between batches (an index run waits; the watcher keeps recording changes and embeds them
        after ``resume_indexing``)."""
        self._writer.pause()

    def resume_indexing(self) -> None:
        self._writer.resume()

    @property
    def indexing_paused(self) -> bool:
        return self._writer.paused.is_set()

    # --- search -------------------------------------------------------------------------------------------------
    #
    # A query is text in the query syntax (core.library.query), command-line words, or a list of QueryTerm (the desktop
    # app's chips, dropped files, and "Find similar": QueryTerm.of_photo(hit.file_id), which uses the photo's stored
    # vector). Hits carry what the catalog knows of each photo (core.types.SearchHit). Errors say which argument
    # they concern (VSearchError.param: "query", "limit", "threshold", "folder", "offset", "count").

    def search(
        self,
        query: Query,
        limit: int = 20,
        threshold: float | None = None,
        folder: str | Path | None = None,
        *,
        filters: SearchFilter | None = None,
        sort: SortOrder = SortOrder.SCORE,
        caption_weight: float | None = None,
    ) -> list[SearchHit]:
        """The best ``limit`` hits at once (what the CLI prints). An empty query with or without ``filters``
        browses: every photo the filter allows, in ``sort`` order (SCORE: newest first), score 0.
        ``caption_weight``: as in ``search_results``."""
        return self._library.search(query, limit=limit, threshold=threshold, folder=folder, filters=filters,
                                    sort=sort, caption_weight=self._caption_weight_for(caption_weight))

    def search_results(
        self,
        query: Query,
        *,
        threshold: float | None = None,
        folder: str | Path | None = None,
        limit: int = MAX_RESULTS,
        filters: SearchFilter | None = None,
        sort: SortOrder = SortOrder.SCORE,
        caption_weight: float | None = None,
    ) -> SearchResults:
        """The query's ranking, to read a page at a time: ``results.page(offset, count)`` -> SearchPage, or
        ``results.hits(offset, count)`` -> list[SearchHit]; ``results.max_total`` bounds the number of hits.
        The query vector is made here (a text or new image query runs the model: call it off the GUI thread);
        pages are cheap (ranked ids are kept as arrays, a page's rows are read in one batched lookup), and a page
        beyond the candidates ranked so far widens the search without reordering earlier pages.

        ``filters`` (SearchFilter: dates, folders, camera, size, orientation) apply before the top-k cut, so a
        narrow filter still returns its best matches; an empty query browses what the filter allows. ``sort``:
        SCORE (best first), DATE (newest first, ties by path) or NAME re-order the best 1,000 hits of a query, or
        every photo of a browse. Hits above the query's calibrated cut have ``good_match`` set.

        Stored captions that match the query's words raise their photos (``SearchHit.caption_matched``), by the
        library's ``caption_weight()``, or by ``caption_weight`` for this query (0: vectors alone)."""
        return self._library.search_results(query, limit=limit, threshold=threshold, folder=folder, filters=filters,
                                            sort=sort, caption_weight=self._caption_weight_for(caption_weight))

    def caption_weight(self) -> float:
        """How far a caption that matches a query's words raises its photo (the library's setting, 0 to 10; 0 is
        off, 1 the default: a caption with every word of the query ranks first; core/library/search.py explains)."""
        stored = self._library.catalog.get_setting(CAPTION_WEIGHT_SETTING)
        if stored is None:
            return DEFAULT_CAPTION_WEIGHT
        try:
            return check_caption_weight(stored)
        except VSearchError:  # edited by hand or by a newer version: the default, rather than no search at all
            return DEFAULT_CAPTION_WEIGHT

    def caption_weight_is_set(self) -> bool:
        """Whether this library has its own caption weight (else ``caption_weight()`` is the default)."""
        return self._library.catalog.get_setting(CAPTION_WEIGHT_SETTING) is not None

    def set_caption_weight(self, weight: float | None) -> float:
        """Remember ``weight`` (0 to 10) as this library's caption weight; None forgets it (back to the default).
        Returns the weight now in use. InvalidArgumentError (param "caption_weight") for a value out of range."""
        value = None if weight is None else repr(check_caption_weight(weight))
        self._library.catalog.set_setting(CAPTION_WEIGHT_SETTING, value)
        return self.caption_weight()

    def _caption_weight_for(self, override: float | None) -> float:
        return self.caption_weight() if override is None else check_caption_weight(override)

    def search_page(
        self,
        query: Query,
        offset: int,
        count: int,
        *,
        threshold: float | None = None,
        folder: str | Path | None = None,
        filters: SearchFilter | None = None,
        sort: SortOrder = SortOrder.SCORE,
        caption_weight: float | None = None,
    ) -> SearchPage:
        """One page of a query's hits, for callers that keep no state between pages. Offset 0 always searches
        afresh; a later offset of the same query (same terms, threshold, folder, filters and sort) reuses the
        ranking that offset 0 made, so paging costs no new model run and pages stay consistent with each other."""
        terms = () if query_syntax.is_empty_query(query) else tuple(query_syntax.as_terms(query))
        key = (terms, threshold, None if folder is None else str(folder), filters, str(sort), caption_weight)
        with self._page_lock:
            cached = self._last_results if offset > 0 and self._last_results_key == key else None
        if cached is None:
            cached = self.search_results(list(terms), threshold=threshold, folder=folder, filters=filters,
                                         sort=sort, caption_weight=caption_weight)
            with self._page_lock:
                self._last_results_key, self._last_results = key, cached
        return cached.page(offset, count)

    @property
    def catalog_notice(self) -> str | None:
        """One line for the user when opening found the catalog damaged and restored or restarted it (else None);
        LibraryStatus.catalog_notice carries it too."""
        recovery = self._library.recovery
        return recovery.message if recovery is not None else None

    def photo_months(self, filters: SearchFilter | None = None) -> list[tuple[str, int]]:
        """("2019-06", n) per capture month, oldest first, of the indexed photos ``filters`` allows (pass a filter
        without its date range for a date histogram)."""
        return self._library.photo_months(filters)

    def cameras(self) -> list[tuple[str, int]]:
        """The library's cameras as "Make Model" with their photo counts, most photos first."""
        return self._library.cameras()

    def duplicates(
        self,
        *,
        folder: str | Path | None = None,
        threshold: float | None = None,
        progress: Callable[[IndexProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> list[DuplicateGroup]:
        """Groups of duplicate photos (core/library/duplicates.py): "exact" groups of byte-identical files, then
        "near" groups of near-identical photos by their vectors (cosine >= ``threshold``, default
        DUPLICATE_THRESHOLD); each group's keeper (best shot: sharpness, exposure, resolution) first. ``progress`` gets
        phases "grouping" and "rating"; ``cancel`` raises OperationCancelled. Nothing is ever deleted."""
        return find_duplicates(self._library, folder=folder, threshold=threshold, progress=progress, cancel=cancel)

    def status(self) -> LibraryStatus:
        """Folders, counts and failures. Counts are the search model's view ('indexed': has its vector); when the
        model is not available, ``model_problem`` says why and the counts are the files' own states."""
        lib = self._library
        problem = None
        try:
            key = self.model_identity().key
            counts = lib.catalog.counts(key)
        except VSearchError as exc:
            key, problem = None, str(exc)
            counts = lib.catalog.counts()
        others = {display_name(m): n for m, n in lib.catalog.models().items() if m != key and n}
        index_path, index_bytes = lib.index_file() if key is not None else (None, 0)
        return LibraryStatus(
            model=self._identity.name if self._identity is not None else self.model_choice,
            roots=self.folders(),
            counts=counts,
            failed=[FailedFile(r.path, r.fail_reason or "") for r in lib.catalog.failed()],
            index_path=index_path,
            index_bytes=index_bytes,
            embedded_this_session=lib.indexer.embedded_total,
            model_problem=problem,
            other_models=others,
            catalog_notice=self.catalog_notice,
        )

    # Thumbnails: the cache is made on first use, in the user's cache folder (a class-level lock guards only that).
    _thumbnail_cache = None  # a core.library.thumbnails.ThumbnailCache once thumbnail() has been called
    _thumbnail_cache_lock = threading.Lock()

    def thumbnail(self, path: str | Path, max_side: int = 256) -> Thumbnail:
        """The upright RGB thumbnail of the photo at ``path`` (longest side <= ``max_side``), from a disk cache in
        ``settings.cache_dir / "thumbs"``, so a photo is decoded once. Thread-safe; a missing or undecodable file
        gives a Thumbnail with ``reason`` set, never an exception."""
        from vsearch_app.core.library.thumbnails import ThumbnailCache

        with self._thumbnail_cache_lock:
            if self._thumbnail_cache is None:
                self._thumbnail_cache = ThumbnailCache(self.settings.cache_dir / "thumbs")
            cache = self._thumbnail_cache
        return cache.get(path, max_side)

    # --- captions (core/engine/caption_session.py): one captioner per session, results stored per photo -------------

    _captions = None  # the session's CaptionSession, made on first use (the class-level lock guards only that)
    _captions_closed = False
    _captions_guard = threading.Lock()

    def _caption_session(self):
        from vsearch_app.core.engine.caption_session import CaptionSession

        with self._captions_guard:
            if self._captions is None:
                self._captions = CaptionSession(self.settings, self._library.catalog, caption_model_dir)
                if self._captions_closed:
                    self._captions.close()  # so its calls say the session is closed
            return self._captions

    def load_captioner(
        self,
        progress: Callable[[ModelLoadProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> bool:
        """Load the caption model (``settings.caption_model``) once for this session, e.g. in the background when
        the app starts; later calls return at once, concurrent ones share one load. True when it is ready, False
        when ``cancel`` stopped it. A missing model raises ModelNotFoundError with the gated-model steps."""
        return self._caption_session().load(progress, cancel)

    def caption(
        self,
        path: str | Path,
        settings: CaptionSettings = CaptionSettings(),  # noqa: B008 - frozen, so one shared default is safe
        on_token: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> CaptionResult:
        """Caption the photo at ``path`` (or answer ``settings.prompt`` about it), streaming text pieces to
        ``on_token`` from the calling thread. The settings and the photo are checked before the model loads
        (InvalidArgumentError with ``param``, ImageDecodeError). When the photo is in the library the result is
        stored for it, its caption model and prompt (``stored_at`` is set); a generation stopped by ``cancel``
        keeps its partial text, marked stopped (``stop_reason`` "cancelled"), unless a finished caption exists."""
        return self._caption_session().caption(path, settings, on_token=on_token, cancel=cancel)

    def stored_captions(self, model: str | None = None, prompt: str | None = None) -> list[tuple[Path, CaptionResult]]:
        """Every caption stored in the library for its photo's current content (for caption ``model`` and
        ``prompt``; None: any), with the photo's path, ordered by path, model and prompt. Loads no model."""
        from vsearch_app.core.store import captions

        return captions.load_all(self._library.catalog, model=model, prompt=prompt)

    def stored_caption(
        self, path: str | Path, prompt: str | None = None, model: str | None = None
    ) -> CaptionResult | None:
        """The caption stored for the photo at ``path`` with ``prompt`` and caption ``model`` (None: any), without
        loading a model; None when there is none for the photo's current content. A finished caption wins over a
        stopped one, then the newest."""
        return self._caption_session().stored(path, prompt=prompt, model=model)

    def caption_many(
        self,
        paths: Sequence[str | Path],
        settings: CaptionSettings = CaptionSettings(),  # noqa: B008 - frozen, so one shared default is safe
        *,
        on_result: Callable[[Path, CaptionResult], None] | None = None,
        progress: Callable[[CaptionBatchProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> CaptionBatchReport:
        """Caption many photos with one model load (core/engine/caption_batch.py): photos, or folders standing for
        the library's photos inside them. Photos that already have a finished caption for the caption model and
        ``settings.prompt`` are skipped, so a cancelled job run again writes only the rest; undecodable photos are
        listed in the report's ``failed``. ``on_result``, ``progress`` run on the calling thread."""
        from vsearch_app.core.engine.caption_batch import caption_many

        return caption_many(self._caption_session(), self._library.catalog, paths, settings, on_result=on_result,
                            progress=progress, cancel=cancel)

    def set_caption_model(self, model: str) -> None:
        """Caption with ``model`` (hub id or checkpoint folder) from the next call on, e.g. a folder the user chose
        after the caption model was found missing. A loaded captioner is released (a caption in progress stops)."""
        if not str(model).strip():
            raise InvalidArgumentError("the caption model cannot be empty", param="caption_model")
        with self._captions_guard:
            captions, self._captions = self._captions, None
            self.settings = dataclasses.replace(self.settings, caption_model=str(model))
        if captions is not None:
            captions.close()

    def _close_captions(self) -> None:
        """Stop a caption in progress, wait for it to be stored and release the caption model (called by close)."""
        with self._captions_guard:
            self._captions_closed = True
            captions = self._captions
        if captions is not None:
            captions.close()
