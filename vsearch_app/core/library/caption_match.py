"""Which photos' stored captions match a query's words, and how well: the caption half of search's fusion.

The words: the query's positive text terms, split and folded as the full-text index does (``unicode61`` with
diacritics removed: runs of letters and digits, lower case, accents dropped), less a short list of words that say
nothing about a photo ("a", "of", "photo", ...) and less every word of a negative term, so an excluded word never
raises a photo. Image and photo terms have no words: a query made only of them matches no caption.

How well a caption matches, in [0, 1]: the BM25 weights (IDF) of the query's words that the caption contains,
divided by those of all the query's words. A word's weight is ``ln(1 + (N - n + 0.5) / (n + 0.5))``, N the stored
captions and n those containing the word (stale ones count in both: the word statistics need no join): a word that
few captions contain counts for much, one that nearly every caption contains ("red" on a library of red things) for
almost nothing, and a query word that no caption contains still counts in the total (a caption that does not say it
matched less of the query). Term frequency and length normalisation, BM25's other parts, are left out: a caption is
one sentence. Each word is multiplied by the largest weight of the terms it comes from ("2:zorblax + beach"). Unlike
raw BM25 scores, which grow with the library, this means the same on any library, so one fusion weight suits them
all. A photo with several matching captions (other models or prompts) takes its best one, and that caption's text
goes with the hit.

Only current captions count, and only photos with a vector of the search model (what the vector index holds) are
returned; at most MAX_MATCHES of them, the best matches.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from vsearch_app.core.store import caption_text_index
from vsearch_app.core.store.catalog import Catalog
from vsearch_app.core.types import DEFAULT_CAPTION_WEIGHT, MAX_CAPTION_WEIGHT, QueryTerm
from vsearch_app.errors import InvalidArgumentError

__all__ = ["DEFAULT_CAPTION_WEIGHT", "MAX_CAPTION_WEIGHT", "CaptionMatches", "VectorCache", "caption_texts",
           "check_caption_weight", "find_matches", "query_words", "word_weight", "words"]

MAX_MATCHES = 10_000  # photos scored from their captions per query, the best matches first

# Words that match nearly any caption or query and describe no photo. English only: other languages' common words
# get a low weight from the word statistics anyway.
STOP_WORDS = frozenset("""
    a an the this that these those of in on at to into onto from by with without for and or but not no as is are was
    were be been being it its there here some any very
    photo photos photograph photographs picture pictures pic pics image images shot shots snapshot
""".split())

_WORD = re.compile(r"[^\W_]+")  # letters and digits (unicode61's token characters); "_" and punctuation split


def words(text: str) -> list[str]:
    """``text`` split and folded as the full-text index does: lower case, accents removed ("Café" -> "cafe")."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _WORD.findall(stripped.casefold())


def query_words(terms: Sequence[QueryTerm]) -> dict[str, float]:
    """The words a caption is matched against, each with the largest weight of the positive text terms it comes
    from; words of negative terms and stop words are left out. Empty when the query has no such word."""
    excluded = {w for t in terms if t.kind == "text" and t.weight < 0 for w in words(t.value)}
    weights: dict[str, float] = {}
    for term in terms:
        if term.kind != "text" or term.weight <= 0:
            continue
        for word in words(term.value):
            if word not in STOP_WORDS and word not in excluded:
                weights[word] = max(weights.get(word, 0.0), float(term.weight))
    return weights


def check_caption_weight(weight: float) -> float:
    """The fusion weight, checked: a number from 0 (captions do not affect the ranking) to MAX_CAPTION_WEIGHT."""
    try:
        value = float(weight)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 <= value <= MAX_CAPTION_WEIGHT:  # NaN fails too
        raise InvalidArgumentError(f"the caption weight is a number from 0 (off) to {MAX_CAPTION_WEIGHT:g}, got "
                                   f"{weight}", param="caption_weight")
    return value


def word_weight(total: int, containing: int) -> float:
    """BM25's IDF (the form that is never negative)."""
    return math.log(1.0 + (total - containing + 0.5) / (containing + 0.5))


@dataclass(frozen=True)
class CaptionMatches:
    """Photos whose current captions match a query: ``file_ids`` (int64), ``match`` (float32 in (0, 1], best
    first), the rowid of each photo's best matching caption, and the photos' vectors of the search model (rows as
    file_ids). The captions' texts are read when hits are shown (``texts``), not for every match."""

    file_ids: np.ndarray
    match: np.ndarray
    caption_rows: np.ndarray
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.file_ids)


class VectorCache:
    """The search model's vectors of photos that captions matched, kept between searches: typing a query searches
    again at every pause, and the same captioned photos match again and again (reading a few thousand vectors from
    the catalog costs tens of milliseconds). Any change to the catalog's embeddings (its change counter) empties
    it; it holds at most ``capacity`` vectors. Thread-safe: a search reads a snapshot, a miss replaces it."""

    def __init__(self, capacity: int = MAX_MATCHES * 4) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._key: tuple[str, int] | None = None
        self._ids = np.zeros(0, dtype=np.int64)  # sorted
        self._matrix = np.zeros((0, 0), dtype=np.float32)  # rows as _ids
        self._absent: frozenset[int] = frozenset()  # ids known to have no vector of the model

    def vectors(self, catalog: Catalog, file_ids: np.ndarray, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors), ordered by id, of those of ``file_ids`` that have a vector of ``model_id``."""
        key = (model_id, catalog.embedding_seq())
        wanted = np.unique(np.asarray(file_ids, dtype=np.int64))
        with self._lock:
            if key != self._key or len(self._ids) > self.capacity:
                self._key, self._ids, self._matrix, self._absent = key, self._ids[:0], self._matrix[:0], frozenset()
            ids, matrix, absent = self._ids, self._matrix, self._absent
        missing = wanted[~np.isin(wanted, ids)]
        missing = missing[~np.isin(missing, np.fromiter(absent, dtype=np.int64, count=len(absent)))]
        if len(missing):
            found, rows = catalog.embeddings_of(missing, model_id)
            if not len(ids):
                matrix = np.zeros((0, rows.shape[1]), dtype=np.float32)
            ids = np.concatenate([ids, found])
            order = np.argsort(ids, kind="stable")
            ids, matrix = ids[order], np.concatenate([matrix, rows])[order]
            absent = absent | (set(missing.tolist()) - set(found.tolist()))
            with self._lock:
                if self._key == key:
                    self._ids, self._matrix, self._absent = ids, matrix, absent
        at = np.searchsorted(ids, wanted)
        present = at < len(ids)
        present[present] = ids[at[present]] == wanted[present]
        return wanted[present], matrix[at[present]] if len(ids) else np.zeros((0, 0), dtype=np.float32)


def caption_texts(catalog: Catalog, caption_rows: Iterable[int]) -> dict[int, str]:
    """The texts of captions by rowid (the hits of a page that matched)."""
    return caption_text_index.caption_texts(catalog, caption_rows)


def find_matches(
    catalog: Catalog,
    terms: Sequence[QueryTerm],
    model_id: str,
    *,
    allowed_ids: np.ndarray | None = None,
    limit: int = MAX_MATCHES,
    cache: VectorCache | None = None,
) -> CaptionMatches | None:
    """The photos whose captions match the words of ``terms`` (see the module docstring), restricted to
    ``allowed_ids`` when given; None when nothing matches (or the query has no words). ``cache`` keeps the matched
    photos' vectors for the next search."""
    wanted = query_words(terms)
    if not wanted:
        return None
    total = caption_text_index.caption_count(catalog)
    if total == 0:
        return None
    rows_by_word = {word: caption_text_index.rows_with_word(catalog, word) for word in wanted}
    weights = {word: wanted[word] * word_weight(total, len(rows)) for word, rows in rows_by_word.items()}
    query_weight = sum(weights.values())
    rows, file_ids = caption_text_index.current_rows(catalog, np.concatenate(list(rows_by_word.values())))
    if not len(rows):
        return None
    scores = np.zeros(len(rows), dtype=np.float64)
    for word, word_rows in rows_by_word.items():
        scores += weights[word] * np.isin(rows, word_rows)
    # Each photo's best caption: sorted by photo, then score, then rowid, the last row of each photo wins.
    order = np.lexsort((rows, scores, file_ids))
    rows, file_ids, scores = rows[order], file_ids[order], scores[order]
    last = np.r_[file_ids[1:] != file_ids[:-1], True]
    rows, file_ids, scores = rows[last], file_ids[last], scores[last]
    if allowed_ids is not None:
        keep = np.isin(file_ids, allowed_ids)
        rows, file_ids, scores = rows[keep], file_ids[keep], scores[keep]
    # Only photos the vector index can return, with the vectors their cosines are computed from.
    cache = cache if cache is not None else VectorCache()
    with_vector, vectors = cache.vectors(catalog, file_ids, model_id)
    if not len(with_vector):
        return None
    keep = np.isin(file_ids, with_vector)  # both ordered by file id
    rows, file_ids, scores = rows[keep], file_ids[keep], scores[keep]
    match = np.minimum(scores / query_weight, 1.0).astype(np.float32)
    best = np.lexsort((file_ids, -match))[:limit]  # best match first; ties by id, so the result is repeatable
    return CaptionMatches(file_ids[best], match[best], rows[best], vectors[best])
