"""Captions kept in the catalog (table ``captions``, schema v4): one row per photo, caption model and prompt.

The rules:
- A caption is keyed by the photo's file id, so it follows the photo through renames and moves (the catalog keeps
  the id) and is deleted with it (ON DELETE CASCADE).
- A caption records the content version of the photo it describes. Once the photo's content changes, the caption
  is stale: it is not returned, and the next caption with the same model and prompt replaces it.
- A stopped generation (stop_reason "cancelled") is stored with its partial text, marked as stopped, so a
  Describe panel shows what it showed before; but a partial never replaces a finished caption of the same photo,
  model and prompt. Nothing is stored when not a single token was generated.
- ``files.caption`` mirrors the newest finished caption of a describing prompt ("caption ...", "cap ...",
  "describe ..."), for search hits; answers to questions and stopped partials stay here only.

Reads use ``Catalog.query`` (no write lock, so a busy indexer never delays them); writes use one transaction.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from vsearch_app.core.store.catalog import Catalog, path_key
from vsearch_app.core.types import CaptionResult, CaptionSettings

log = logging.getLogger(__name__)

STOPPED = "cancelled"  # the stop_reason of a generation stopped before the model finished
DESCRIBING_PROMPTS = ("caption", "cap", "describe")  # first words of the prompts whose answer is a caption


@dataclass(frozen=True)
class PhotoRef:
    """A photo in the library as a caption is filed against it: its id and the content version described."""

    file_id: int
    content_version: int


def find_photo(catalog: Catalog, path: str | os.PathLike[str]) -> PhotoRef | None:
    """The library's photo at ``path`` (None when it is not in a watched folder's catalog)."""
    rows = catalog.query("SELECT id, content_version FROM files WHERE path = ?", (path_key(path),))
    return PhotoRef(rows[0][0], rows[0][1]) if rows else None


def is_describing(prompt: str) -> bool:
    words = prompt.split()
    return bool(words) and words[0].lower() in DESCRIBING_PROMPTS


def save(catalog: Catalog, photo: PhotoRef, result: CaptionResult, *, now: float | None = None) -> CaptionResult:
    """Store ``result`` for ``photo`` by the rules above. Returns it with ``stored_at`` set, or unchanged (stored_at
    None) when it was not stored: no tokens, a partial beside a finished caption, or the photo left the library."""
    if result.token_count == 0 or not result.model:
        return result
    stopped = result.stop_reason == STOPPED
    stored_at = time.time() if now is None else now
    settings = json.dumps(dataclasses.asdict(result.settings)) if result.settings is not None else "{}"
    with catalog.transaction() as conn:
        row = conn.execute("SELECT content_version FROM files WHERE id = ?", (photo.file_id,)).fetchone()
        if row is None:  # removed from the library while the model was writing
            return result
        if stopped:
            finished = conn.execute(
                "SELECT 1 FROM captions WHERE file_id = ? AND model = ? AND prompt = ? AND content_version = ? "
                "AND stop_reason != ?",
                (photo.file_id, result.model, result.prompt, photo.content_version, STOPPED),
            ).fetchone()
            if finished:
                log.debug("a stopped caption does not replace the finished one of file %d", photo.file_id)
                return result
        conn.execute(
            """
            INSERT INTO captions (file_id, model, prompt, text, token_count, stop_reason, created_at, settings,
                                  content_version, prefill_s, decode_tokens_per_s)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (file_id, model, prompt) DO UPDATE SET
                text = excluded.text, token_count = excluded.token_count, stop_reason = excluded.stop_reason,
                created_at = excluded.created_at, settings = excluded.settings,
                content_version = excluded.content_version, prefill_s = excluded.prefill_s,
                decode_tokens_per_s = excluded.decode_tokens_per_s
            """,
            (
                photo.file_id, result.model, result.prompt, result.text, result.token_count, result.stop_reason,
                stored_at, settings, photo.content_version, result.prefill_s, result.decode_tokens_per_s,
            ),
        )  # fmt: skip
        if not stopped and is_describing(result.prompt):
            # Only while the file still has the content the caption describes.
            conn.execute(
                "UPDATE files SET caption = ? WHERE id = ? AND content_version = ?",
                (result.text, photo.file_id, photo.content_version),
            )
    return dataclasses.replace(result, stored_at=stored_at)


def load(
    catalog: Catalog, path: str | os.PathLike[str], *, model: str | None = None, prompt: str | None = None
) -> CaptionResult | None:
    """The stored caption of the photo at ``path`` for ``model`` and ``prompt`` (None: any), describing the photo's
    current content. When several match, a finished caption wins over a stopped one, then the newest."""
    sql = """
        SELECT c.model, c.prompt, c.text, c.token_count, c.stop_reason, c.created_at, c.settings, c.prefill_s,
               c.decode_tokens_per_s
        FROM captions c JOIN files f ON f.id = c.file_id
        WHERE f.path = ? AND c.content_version = f.content_version
    """
    params: list = [path_key(path)]
    sql += _model_and_prompt(params, model, prompt)
    sql += " ORDER BY c.stop_reason = ?, c.created_at DESC LIMIT 1"
    params.append(STOPPED)
    rows = catalog.query(sql, params)
    if not rows:
        return None
    model_name, prompt_text, text, token_count, stop_reason, created_at, settings, prefill_s, rate = rows[0]
    return CaptionResult(
        text=text,
        prompt=prompt_text,
        model=model_name,
        stop_reason=stop_reason,
        token_count=token_count,
        prefill_s=prefill_s,
        decode_tokens_per_s=rate,
        settings=_settings_from_json(settings),
        stored_at=created_at,
    )


def load_all(
    catalog: Catalog, *, model: str | None = None, prompt: str | None = None
) -> list[tuple[Path, CaptionResult]]:
    """Every stored caption that describes its photo's current content (for ``model`` and ``prompt``; None: any),
    with the photo's path, ordered by path, model and prompt."""
    sql = """
        SELECT f.path, c.model, c.prompt, c.text, c.token_count, c.stop_reason, c.created_at, c.settings,
               c.prefill_s, c.decode_tokens_per_s
        FROM captions c JOIN files f ON f.id = c.file_id
        WHERE c.content_version = f.content_version
    """
    params: list = []
    sql += _model_and_prompt(params, model, prompt)
    sql += " ORDER BY f.path, c.model, c.prompt"
    return [
        (Path(os.fsdecode(path)), CaptionResult(text=text, prompt=prompt_text, model=model_name,
                                                stop_reason=stop_reason, token_count=token_count, prefill_s=prefill_s,
                                                decode_tokens_per_s=rate, settings=_settings_from_json(settings),
                                                stored_at=created_at))
        for path, model_name, prompt_text, text, token_count, stop_reason, created_at, settings, prefill_s, rate
        in catalog.query(sql, params)
    ]


def _settings_from_json(text: str) -> CaptionSettings | None:
    """The stored generation settings; fields this version does not know are ignored, missing ones default."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not data:
        return None
    known = {f.name for f in dataclasses.fields(CaptionSettings)}
    return CaptionSettings(**{k: v for k, v in data.items() if k in known})


def _model_and_prompt(params: list, model: str | None, prompt: str | None) -> str:
    """The SQL condition (and its parameters, appended to ``params``) that keeps one caption model and prompt."""
    sql = ""
    for column, value in (("model", model), ("prompt", prompt)):
        if value is not None:
            sql += f" AND c.{column} = ?"
            params.append(value)
    return sql
