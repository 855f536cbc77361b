"""Reading the captions' full-text index (``captions_fts``, schema v5) for search: which captions contain a word,
which of them describe their photo's current content, and the texts of chosen captions.

A caption is current when its ``content_version`` equals its file's: a stale caption stays in the table until it is
replaced, but it no longer says anything about the photo, so a match counts only through ``current_rows``.

Every word reaches FTS5 as one double-quoted string (a phrase of one token), so no query text can be read as FTS5
syntax: quotes are doubled inside it, and ``AND``, ``NEAR(``, ``*`` or ``^`` are plain text there.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from vsearch_app.core.store.catalog import Catalog


def fts_phrase(word: str) -> str:
    """``word`` as an FTS5 string: matched literally, whatever characters it holds (FTS5 reads a NUL as the end of
    the query, so NULs become spaces, which separate words anyway)."""
    return '"' + word.replace("\x00", " ").replace('"', '""') + '"'


def caption_count(catalog: Catalog) -> int:
    """How many captions are stored (the N of the word weights). Stale ones count too: telling them apart costs a
    join with every photo (tens of milliseconds on a big library, for each search), and they are few: a caption is
    stale only from the edit of its photo until the photo is captioned again."""
    return catalog.query("SELECT count(*) FROM captions")[0][0]


def rows_with_word(catalog: Catalog, word: str) -> np.ndarray:
    """Caption rowids (int64) of the stored captions that contain ``word`` (one token of the index's tokenizer; case
    and accents do not matter), stale ones included. The index alone answers this: no caption row is read."""
    rows = catalog.query("SELECT rowid FROM captions_fts WHERE captions_fts MATCH ?", (fts_phrase(word),))
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


def current_rows(catalog: Catalog, rowids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    """(rowids, file ids) of those of ``rowids`` whose caption describes its photo's current content."""
    wanted = sorted({int(r) for r in rowids})
    rows = catalog.query_in("SELECT c.rowid, c.file_id FROM captions c JOIN files f ON f.id = c.file_id "
                            "WHERE c.rowid IN ({marks}) AND c.content_version = f.content_version", wanted)
    found = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    file_ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    return found, file_ids


def caption_texts(catalog: Catalog, rowids: Iterable[int]) -> dict[int, str]:
    """The text of each caption row in ``rowids`` that still exists, by rowid."""
    return dict(catalog.query_in("SELECT rowid, text FROM captions WHERE rowid IN ({marks})", (int(r) for r in rowids)))
