"""The one API the CLI and the desktop app use.

Synchronous and thread-agnostic; it returns small frozen dataclasses (core.types) and numpy arrays, never tensors,
Qt objects or sqlite rows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from vsearch_app.core import models
from vsearch_app.core.captioner import Captioner, CaptionResult
from vsearch_app.core.data_dir import prepare_data_dir
from vsearch_app.core.embedder import Embedder
from vsearch_app.core.library import Library
from vsearch_app.core.types import (
    EmbeddedItem,
    EmbedReport,
    FailedFile,
    FolderInfo,
    IndexProgress,
    IndexReport,
    LibraryStatus,
    ModelInfo,
    SearchHit,
)
from vsearch_app.core.writer_lock import WriterLock
from vsearch_app.errors import InvalidArgumentError, ModelNotFoundError
from vsearch_app.modeling.sampling import GenerationParams
from vsearch_app.preprocessing.image import open_image
from vsearch_app.preprocessing.prompts import DEFAULT_PROMPT, check_prompt
from vsearch_app.settings import AppSettings

# --- models ---------------------------------------------------------------------------------------------------------


def model_dir(settings: AppSettings, model: str | None = None) -> Path:
    """Local folder of ``model`` (default: the settings' search model); never touches the network."""
    return models.resolve_model_dir(model or settings.model, settings.hub_cache_dir)


def load_embedder(settings: AppSettings) -> Embedder:
    return Embedder.load(model_dir(settings), device=settings.device, dtype=settings.dtype,
                         model_id=library_model_id(settings))


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


# --- captions -------------------------------------------------------------------------------------------------------


def caption_model_dir(settings: AppSettings, model: str | None = None) -> Path:
    """Local folder of the caption model; a missing PaliGemma gets the gated-repo how-to."""
    model = model or settings.caption_model
    try:
        return models.resolve_model_dir(model, settings.hub_cache_dir)
    except ModelNotFoundError as exc:
        if Path(model).expanduser().exists() or "/" not in model or model.startswith((".", "~", "/")):
            raise
        raise ModelNotFoundError(
            f"caption model {model} is not downloaded yet. PaliGemma models are gated: accept the licence at "
            f"https://huggingface.co/{model} while logged in to huggingface.co, then run "
            f"`vsearch models download {model}` with a token (set HF_TOKEN, or run `hf auth login` first). "
            "Or pass --caption-model with a local checkpoint folder."
        ) from exc


def load_captioner(settings: AppSettings, model: str | None = None) -> Captioner:
    model = model or settings.caption_model
    folder = caption_model_dir(settings, model)
    model_id = model if not Path(model).expanduser().is_dir() else str(folder)
    return Captioner.load(folder, device=settings.device, dtype=settings.dtype, model_id=model_id)


def caption_params(
    *, max_tokens: int = 100, sample: bool = False, temperature: float = 0.8, top_p: float = 0.9,
    seed: int | None = None,
) -> GenerationParams:
    """Validated generation settings (InvalidArgumentError says which value is wrong)."""
    return GenerationParams(max_new_tokens=max_tokens, do_sample=sample, temperature=temperature, top_p=top_p,
                            seed=seed)


def caption(
    settings: AppSettings,
    image: str | Path,
    *,
    prompt: str = DEFAULT_PROMPT,
    params: GenerationParams | None = None,
    on_token: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    captioner: Captioner | None = None,
) -> CaptionResult:
    """Caption (or answer ``prompt`` about) one image. Arguments and the image are checked before the model is
    loaded, so mistakes fail fast; pass ``captioner`` to reuse a loaded model."""
    params = params or GenerationParams()
    check_prompt(prompt)
    picture = open_image(image)
    captioner = captioner or load_captioner(settings)
    return captioner.caption(picture, prompt, params, on_token=on_token, cancel=cancel)


# --- the photo library ----------------------------------------------------------------------------------------------


def library_model_id(settings: AppSettings) -> str:
    """The id the catalog files embeddings under: the hub id, or the resolved folder of a local checkpoint (the
    same id load_embedder gives the Embedder)."""
    if Path(settings.model).expanduser().is_dir():
        return str(model_dir(settings))
    return settings.model


class LibraryService:
    """Watched folders, indexing, watching and search over one data directory. Open with ``LibraryService.open``;
    ``close`` saves the index and joins every thread. The model is loaded only when something needs it."""

    def __init__(self, settings: AppSettings, library: Library) -> None:
        self.settings = settings
        self._library = library

    @classmethod
    def open(cls, settings: AppSettings) -> LibraryService:
        prepare_data_dir(settings.data_dir)  # DataDirError, one line, for a file, /proc/x, no permission...
        library = Library(settings.data_dir, model_id=library_model_id(settings),
                          embedder_factory=lambda: load_embedder(settings))
        return cls(settings, library)

    def close(self) -> None:
        self._library.close()

    def __enter__(self) -> LibraryService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_folder(self, path: str | Path) -> FolderInfo:
        root = self._library.add_folder(path)
        return FolderInfo(root.path, root.path.is_dir())

    def remove_folder(self, path: str | Path) -> int:
        """Stop watching ``path``; returns how many catalog entries were dropped (no file is touched)."""
        return self._library.remove_folder(path)

    def folders(self) -> list[FolderInfo]:
        return [FolderInfo(root.path, online) for root, online in self._library.roots_online()]

    def index(
        self,
        progress: Callable[[IndexProgress], None] | None = None,
        cancel: threading.Event | None = None,
        pause: threading.Event | None = None,
    ) -> IndexReport:
        with self._writer("indexing"):
            return self._library.index(progress=progress, cancel=cancel, pause=pause)

    def watch(
        self,
        stop: threading.Event,
        progress: Callable[[IndexProgress], None] | None = None,
        *,
        initial_index: bool = True,
        **options: float | bool,
    ) -> None:
        """Index, then keep the library current until ``stop`` is set (blocks; see core.watcher for options)."""
        from vsearch_app.core.watcher import LibraryWatcher

        with self._writer("watching"):
            LibraryWatcher(self._library, progress=progress, **options).run(stop, initial_index=initial_index)

    def _writer(self, purpose: str) -> WriterLock:
        """The data folder's writer lock (core/writer_lock.py), held for a whole index or watch run: a second
        indexer is refused at once (LibraryBusyError) rather than embedding everything again. Readers never take it."""
        return WriterLock(self._library.data_dir, purpose)

    def search(
        self,
        query: str | Sequence[str],
        limit: int = 20,
        threshold: float | None = None,
        folder: str | Path | None = None,
    ) -> list[SearchHit]:
        hits = self._library.search(query, limit=limit, threshold=threshold, folder=folder)
        return [SearchHit(hit.path, hit.score) for hit in hits]

    def status(self) -> LibraryStatus:
        lib = self._library
        index_path, index_bytes = lib.index_file()
        return LibraryStatus(
            model=lib.model_id,
            roots=self.folders(),
            counts=lib.catalog.counts(),
            failed=[FailedFile(r.path, r.fail_reason or "") for r in lib.catalog.failed()],
            index_path=index_path,
            index_bytes=index_bytes,
            embedded_this_session=lib.indexer.embedded_total,
        )
