"""Captioning many photos in one job (``LibraryService.caption_many``): the desktop app's "Generate caption" on a
selection or a folder, and later the CLI.

The rules a caller can count on:
- One model load for the whole job (the session keeps the captioner loaded), done only once a photo actually needs
  a caption: a job whose photos are all captioned already never loads the model.
- Resumable: a photo that already has a *finished* caption for the session's caption model and this prompt is
  skipped. A photo stopped mid-caption keeps its partial text (marked stopped, by the session's storing rules) and is
  captioned again by the next job, so cancel + run again writes every caption exactly once.
- A folder among ``paths`` stands for the library's photos inside it (not those that failed to decode or sit on an
  offline drive), in path order; a path given twice is captioned once.
- A photo that cannot be decoded is reported in ``failed`` and the job goes on; a missing caption model raises
  ModelNotFoundError before any photo is captioned; bad settings raise InvalidArgumentError first of all.
- ``cancel`` is looked at between photos and during a generation (it stops at the next token).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from vsearch_app.core.engine.caption_session import CaptionSession, check_caption_settings
from vsearch_app.core.store.catalog import Catalog
from vsearch_app.core.types import (
    CaptionBatchProgress,
    CaptionBatchReport,
    CaptionResult,
    CaptionSettings,
    FailedFile,
    FileState,
)
from vsearch_app.errors import ImageDecodeError

log = logging.getLogger(__name__)

OnResult = Callable[[Path, CaptionResult], None] | None
Progress = Callable[[CaptionBatchProgress], None] | None
_UNREADABLE = (FileState.FAILED, FileState.OFFLINE)


def photos_to_caption(catalog: Catalog, paths: Iterable[str | Path]) -> list[Path]:
    """The photos a job covers: files as given, folders expanded to the library's readable photos inside them."""
    photos: dict[Path, None] = {}
    for given in paths:
        path = Path(given).expanduser().absolute()
        if path.is_dir():
            for record in catalog.files_under(path):
                if record.state not in _UNREADABLE:
                    photos.setdefault(Path(record.path), None)
        else:
            photos.setdefault(path, None)
    return list(photos)


def caption_many(
    session: CaptionSession,
    catalog: Catalog,
    paths: Iterable[str | Path],
    settings: CaptionSettings,
    *,
    on_result: OnResult = None,
    progress: Progress = None,
    cancel: threading.Event | None = None,
) -> CaptionBatchReport:
    """Caption every photo of ``paths`` that has no finished caption for ``settings.prompt`` yet (module docstring).
    ``on_result(path, result)`` follows each caption written; ``progress`` gets a CaptionBatchProgress before each
    photo and once at the end. Both are called on the calling thread."""
    check_caption_settings(settings)
    started = time.monotonic()
    photos = photos_to_caption(catalog, paths)
    stop = cancel.is_set if cancel is not None else (lambda: False)
    captioned = skipped = 0
    failed: list[FailedFile] = []
    cancelled = False

    def report(done: int, phase: str, current: Path | None = None) -> None:
        if progress is not None:
            progress(CaptionBatchProgress(done, len(photos), captioned, skipped, len(failed), phase, current))

    for done, photo in enumerate(photos):
        if stop():
            cancelled = True
            break
        existing = session.stored(photo, prompt=settings.prompt, model=session.model)
        if existing is not None and not existing.stopped:
            skipped += 1
            report(done + 1, "captioning")
            continue
        if not session.loaded:
            report(done, "loading", photo)
            if not session.load(cancel=cancel):
                cancelled = True
                break
        report(done, "captioning", photo)
        try:
            result = session.caption(photo, settings, cancel=cancel)
        except ImageDecodeError as exc:
            failed.append(FailedFile(photo, str(exc)))
            continue
        if result.stopped:
            cancelled = True  # its partial text is stored, marked stopped: the next job captions it again
            break
        captioned += 1
        if on_result is not None:
            on_result(photo, result)
    handled = captioned + skipped + len(failed)
    report(handled, "done")
    seconds = time.monotonic() - started
    log.info("caption job: %d captioned, %d skipped, %d failed of %d%s in %.1f s", captioned, skipped, len(failed),
             len(photos), " (cancelled)" if cancelled else "", seconds)
    return CaptionBatchReport(total=len(photos), captioned=captioned, skipped=skipped, failed=failed,
                              cancelled=cancelled, seconds=seconds)
