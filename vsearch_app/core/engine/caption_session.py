"""The session's captioner: loaded once and shared by every caller, and what it writes kept per photo.

``LibraryService`` (core/service.py) owns one ``CaptionSession``; its ``load_captioner``, ``caption`` and
``stored_caption`` methods land here. The rules a caller can count on:

- One model load per session. ``load`` is thread-safe: a second caller waits for the first caller's load and
  shares the result; once loaded, calls return at once. A load abandoned through ``cancel`` keeps nothing, and
  the next caller starts over. Cancelling takes effect between the load's steps (reading the weights is one step).
- One generation at a time (the model has one KV cache): a second ``caption`` waits for the first, and its own
  ``cancel`` still ends the wait.
- Mistakes fail before the model loads: the settings (InvalidArgumentError with ``param``), then the photo
  (ImageDecodeError). The photo is decoded only as large as the model's input (JPEG draft mode), so a 12 MP photo
  for a 224 px model is never decoded in full.
- A result is stored when the photo is in the library, by the rules of core/store/captions.py (a stopped
  generation is kept with its partial text, marked stopped, unless a finished caption exists).
- The model is prepacked for fast decoding in the background while it is idle (core/engine/idle_packer.py): after
  the first caption, or right after a ``load`` asked for ahead of time; a caption waits at most for one packing step.
- ``close`` stops a load or a generation in progress at its next step, waits for it to finish storing, stops the
  packing, and drops the model; later calls raise a VSearchError that says the session is closed.

Torch is imported only when a caption is asked for (core.service must import without it).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from vsearch_app.core.store import captions
from vsearch_app.core.store.catalog import Catalog
from vsearch_app.core.types import CaptionResult, CaptionSettings, ModelLoadProgress
from vsearch_app.errors import InvalidArgumentError, VSearchError
from vsearch_app.settings import AppSettings

if TYPE_CHECKING:
    from vsearch_app.core.engine.captioner import Captioner
    from vsearch_app.modeling.sampling import GenerationParams

log = logging.getLogger(__name__)

Cancel = threading.Event | Callable[[], bool] | None
LoadProgress = Callable[[ModelLoadProgress], None] | None
FolderResolver = Callable[[AppSettings, str], Path]  # (settings, caption model) -> its local checkpoint folder

SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.Generator.manual_seed accepts
_POLL_S = 0.05  # how often a waiting caller looks at its cancel flag


class _LoadAbandoned(Exception):
    """Raised inside Captioner.load's step callback to stop a cancelled load."""


# --- settings -------------------------------------------------------------------------------------------------------


def check_caption_settings(settings: CaptionSettings) -> None:
    """Raise InvalidArgumentError (``param`` = the field's name) for a value the model cannot use."""
    from vsearch_app.preprocessing.prompts import check_prompt

    if not isinstance(settings, CaptionSettings):
        raise InvalidArgumentError(f"caption settings must be a CaptionSettings, not {type(settings).__name__}")
    max_tokens = settings.max_tokens
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise InvalidArgumentError("max tokens must be a whole number", param="max_tokens")
    if max_tokens < 1:
        raise InvalidArgumentError(f"max tokens must be at least 1 (got {max_tokens})", param="max_tokens")
    if not _is_number(settings.top_p) or not 0.0 < settings.top_p <= 1.0:
        raise InvalidArgumentError(f"top-p must be in (0, 1] (got {settings.top_p})", param="top_p")
    if not _is_number(settings.temperature) or not math.isfinite(settings.temperature):
        raise InvalidArgumentError(f"temperature must be a number (got {settings.temperature})", param="temperature")
    if settings.sample and not settings.temperature > 0.0:
        raise InvalidArgumentError(
            f"temperature must be greater than 0 when sampling (got {settings.temperature})", param="temperature"
        )
    seed = settings.seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidArgumentError("the seed must be a whole number", param="seed")
    if seed is not None and not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise InvalidArgumentError(f"the seed must fit in 64 bits (got {seed})", param="seed")
    try:
        check_prompt(settings.prompt)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(str(exc), param="prompt") from exc


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def generation_params(settings: CaptionSettings) -> GenerationParams:
    from vsearch_app.modeling.sampling import GenerationParams

    return GenerationParams(max_new_tokens=settings.max_tokens, do_sample=settings.sample,
                            temperature=float(settings.temperature), top_p=float(settings.top_p), seed=settings.seed)


def caption_model_name(model: str) -> str:
    """How a caption model is recorded with its captions: its hub id, or the absolute folder of a local checkpoint
    (so a relative path given in one folder still matches from another)."""
    candidate = Path(model).expanduser()
    return str(candidate.resolve()) if candidate.is_dir() else model


# --- the session's captioner ----------------------------------------------------------------------------------------


class CaptionSession:
    """One lazily loaded Captioner for a LibraryService, and the captions it stores; see the module docstring."""

    def __init__(self, settings: AppSettings, catalog: Catalog, resolve_folder: FolderResolver) -> None:
        self.settings = settings
        self.model = caption_model_name(settings.caption_model)
        self._catalog = catalog
        self._resolve_folder = resolve_folder
        self._captioner: Captioner | None = None
        self._load_lock = threading.Lock()  # one load at a time; the others wait and share it
        self._lane = threading.Lock()  # one generation (and its storing) at a time
        self._closed = threading.Event()

    @property
    def loaded(self) -> bool:
        return self._captioner is not None

    # -- loading --

    def load(self, progress: LoadProgress = None, cancel: Cancel = None, *, pack_now: bool = True) -> bool:
        """Load the caption model unless it is loaded. Returns True when it is ready, False when ``cancel`` stopped
        the load (nothing is kept). Raises ModelNotFoundError / CheckpointError for a model that is missing or
        unusable (the message explains the gated-model steps for PaliGemma). ``pack_now``: start prepacking in the
        background at once (a load ahead of time); a caption passes False and packing starts after it."""
        ready = self._load(progress, cancel)
        captioner = self._captioner
        if ready and pack_now and captioner is not None:
            captioner.start_packing()
        return ready

    def _load(self, progress: LoadProgress, cancel: Cancel) -> bool:
        if self._captioner is not None:
            return True
        self._check_open()
        stop = _stopper(cancel, self._closed)
        if not _acquire(self._load_lock, stop):
            return self._cancelled_or_closed()
        try:
            if self._captioner is not None:  # another caller loaded it while this one waited
                return True
            return self._load_locked(progress, stop)
        finally:
            self._load_lock.release()

    def _load_locked(self, progress: LoadProgress, stop: Callable[[], bool]) -> bool:
        from vsearch_app.core.engine.captioner import LOAD_STEPS, Captioner

        total = len(LOAD_STEPS) + 1
        phases = iter(range(1, total))

        def report(phase: str, done: int) -> None:
            if progress is not None:
                progress(ModelLoadProgress(self.model, phase, done, total))

        def step(phase: str) -> None:
            if stop():
                raise _LoadAbandoned
            report(phase, next(phases))

        report("locating", 0)
        folder = self._resolve_folder(self.settings, self.settings.caption_model)
        try:
            captioner = Captioner.load(folder, device=self.settings.device, dtype=self.settings.dtype,
                                       model_id=self.model, on_step=step)
        except _LoadAbandoned:
            log.info("loading the caption model %s was cancelled", self.model)
            return self._cancelled_or_closed()
        if stop():  # cancelled during the last step: keep nothing, as promised
            return self._cancelled_or_closed()
        self._captioner = captioner
        log.info("caption model %s loaded", self.model)
        report("ready", total)
        return True

    def _cancelled_or_closed(self) -> bool:
        self._check_open()
        return False

    # -- captioning --

    def caption(
        self,
        path: str | os.PathLike[str],
        settings: CaptionSettings,
        on_token: Callable[[str], None] | None = None,
        cancel: Cancel = None,
    ) -> CaptionResult:
        """Caption the photo at ``path`` (loading the model if needed), streaming text pieces to ``on_token``, and
        store the result when the photo is in the library. A ``cancel`` before the first token returns an empty
        result with stop_reason "cancelled" (not stored); after it, the partial text."""
        check_caption_settings(settings)
        params = generation_params(settings)
        self._check_open()
        photo = captions.find_photo(self._catalog, path)  # before decoding: the content the caption describes
        picture = self._decode(path)
        stop = _stopper(cancel, self._closed)
        if not self.load(cancel=stop, pack_now=False):
            return self._nothing(settings)
        if not _acquire(self._lane, stop):
            self._check_open()
            return self._nothing(settings)
        try:
            captioner = self._captioner
            if captioner is None or stop():  # closed (or cancelled) while waiting for the lane
                self._check_open()
                return self._nothing(settings)
            result = captioner.caption(picture, settings.prompt, params, on_token=on_token, cancel=stop)
            result = dataclasses.replace(result, settings=settings)
            if photo is not None:
                result = captions.save(self._catalog, photo, result)
            return result
        finally:
            self._lane.release()

    def _decode(self, path: str | os.PathLike[str]):
        """The photo as upright RGB, decoded only as large as the model's input needs (ImageDecodeError if not)."""
        from vsearch_app.preprocessing.image import open_image

        return open_image(path, target_size=self._input_size())

    def _input_size(self) -> tuple[int, int] | None:
        """The model's input (height, width): from the loaded model, else from the checkpoint's preprocessor
        config (a small JSON file). None when the model cannot be found: the load reports that, after the photo
        was checked, and the photo is decoded in full meanwhile."""
        captioner = self._captioner
        if captioner is not None:
            return captioner.transform.size
        from vsearch_app.preprocessing.image import ImageTransform

        try:
            return ImageTransform.from_folder(self._resolve_folder(self.settings, self.settings.caption_model)).size
        except VSearchError:
            return None

    def _nothing(self, settings: CaptionSettings) -> CaptionResult:
        return CaptionResult(text="", prompt=settings.prompt, model=self.model, stop_reason=captions.STOPPED,
                             settings=settings)

    # -- the library's captions --

    def stored(
        self, path: str | os.PathLike[str], prompt: str | None = None, model: str | None = None
    ) -> CaptionResult | None:
        """The stored caption of the photo at ``path`` (any prompt / any model when None), without the model."""
        self._check_open()
        return captions.load(self._catalog, path, model=caption_model_name(model) if model else None,
                                  prompt=prompt)

    # -- closing --

    def close(self) -> None:
        """Stop a load or generation in progress at its next step, wait for it (and its storing), drop the model.
        Idempotent."""
        self._closed.set()
        with self._load_lock, self._lane:
            if self._captioner is not None:
                log.debug("releasing the caption model %s", self.model)
                self._captioner.close()  # joins the packing thread (after the step in progress)
            self._captioner = None

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise VSearchError("the library session is closed; open it again to caption photos")


def _stopper(cancel: Cancel, closed: threading.Event) -> Callable[[], bool]:
    """One should-stop flag from the caller's cancel (an Event or a callable) and the session closing."""
    if cancel is None:
        return closed.is_set
    asked = cancel.is_set if isinstance(cancel, threading.Event) else cancel
    return lambda: closed.is_set() or bool(asked())


def _acquire(lock: threading.Lock, stop: Callable[[], bool]) -> bool:
    """Take ``lock``, giving up (False) as soon as ``stop()`` is true while waiting."""
    while not lock.acquire(timeout=_POLL_S):
        if stop():
            return False
    return True
