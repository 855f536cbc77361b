"""Reading the captions' full-text index (``captions_fts``, schema v5) for search: which current captions contain a
word, and the texts of chosen captions.

Only captions that describe their photo's current content count (``captions.content_version`` equal to the file's):
a stale caption stays in the table until it is replaced, but it no longer says anything about the photo.

Every word reaches FTS5 as one double-quoted string (a phrase of one token), so no query text can be read as FTS5
syntax: quotes are doubled inside it, and ``AND``, ``NEAR(``, ``*`` or ``^`` are plain text there.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from vsearch_app.core.store.catalog import Catalog

_CHUNK = 500  # ids per IN (...) list, under SQLite's bound-parameter limit


def fts_phrase(word: str) -> str:
    """``word`` as an FTS5 string: matched literally, whatever characters it holds (FTS5 reads a NUL as the end of
    the query, so NULs become spaces, which separate words anyway)."""
    return '"' + word.replace("\x00", " ").replace('"', '""') + '"'


def current_caption_count(catalog: Catalog) -> int:
    """How many stored captions describe their photo's current content (the N of the word weights)."""
    return catalog.query(
        "SELECT count(*) FROM captions c JOIN files f ON f.id = c.file_id WHERE c.content_version = f.content_version"
    )[0][0]


def captions_with_word(catalog: Catalog, word: str) -> tuple[np.ndarray, np.ndarray]:
    """(caption rowids, their file ids) of the current captions that contain ``word`` (one token of the index's
    tokenizer; case and accents do not matter)."""
    rows = catalog.query(
        """
        SELECT c.rowid, c.file_id FROM captions_fts JOIN captions c ON c.rowid = captions_fts.rowid
        JOIN files f ON f.id = c.file_id
        WHERE captions_fts MATCH ? AND c.content_version = f.content_version
        """,
        (fts_phrase(word),),
    )
    rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    file_ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    return rowids, file_ids


def caption_texts(catalog: Catalog, rowids: Iterable[int]) -> dict[int, str]:
    """The text of each caption row in ``rowids`` that still exists, by rowid."""
    wanted = [int(r) for r in rowids]
    found: dict[int, str] = {}
    for start in range(0, len(wanted), _CHUNK):
        part = wanted[start:start + _CHUNK]
        marks = ",".join("?" * len(part))
        found.update(catalog.query(f"SELECT rowid, text FROM captions WHERE rowid IN ({marks})", part))
    return found
