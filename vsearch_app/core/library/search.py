"""Search results: a query's ranking is computed once, as cheap arrays; hits are built a page at a time.

``Library.search_results`` turns the query into one vector and a *ranker*: ``ranker(k)`` returns the best ``k``
candidates (file ids and scores, best first) and whether that is all there are. ``SearchResults`` asks it for as
many candidates as the pages requested so far need, and builds SearchHit rows only for the page asked for, from one
batched catalog lookup. So the desktop app can page through 100,000 results without ever holding 100,000 rows, and
``vsearch search --limit 20`` does the same work as before (one ranking of 20, one page of 20).

Paging rules:

- a page past the candidates known so far widens the search (``k`` times WIDEN) and keeps the order of everything
  ranked before, so pages never repeat or skip a hit even though a wider approximate search may order its
  neighbours slightly differently;
- photos that are offline or failed when the results are made are left out (as search always did); a photo deleted
  since is skipped when its page is built, and the hits after it move up;
- ``threshold`` ends the ranking at the first candidate scoring below it; ``limit`` caps the number of hits.

Caption fusion (issue 13). A text query's ranking also uses the photos' stored captions (core.library.caption_match
says which captions match the query's words, with a match score m in [0, 1]: the share of the query's word weight
that the caption holds). The fusion moves a matched photo part of the way from its cosine to the top::

    lift  = min(1, w * m)                             (w: the library's caption_weight; m = 0: no match)
    fused = cosine + lift * (summit - cosine)
    summit = best + spread                            (just above the query's best photo)

``best`` is the query's best cosine and ``spread`` its gap from the best photo to the 100th (SPREAD_RANK; the last one
in a smaller library). With the default w = 1 a caption that holds every word of the query puts its photo first
(among such photos, by cosine), one that holds half of the query's word weight moves it halfway to the top, and a
caption that only shares a common word moves it a little; w = 2 lifts a half match to the top too, and so on (at
most 10). The lift is measured in the query's own cosines, so it means the same for any model (a large model's
text-to-photo cosines sit in a narrow band, a small one's can spread over most of [-1, 1]).

Why this and not reciprocal-rank fusion: the fused score of an unmatched photo is its cosine, so photos without a
matching caption keep exactly their order among themselves (a library without captions ranks exactly as without
fusion), and a matched photo's place depends on its own cosine, not on ranks the approximate index cannot know
beyond its top k. The matched photos (a few hundred or thousand, where the ranking holds up to 100,000) are scored
exactly from their stored vectors, so a photo whose caption matched enters the ranking even when the index's top k
did not hold it; they are merged into the index's candidates by fused score (``CaptionFusion``), so paging stays
consistent: a matched photo is placed only once every candidate above it is known. The hit's ``score`` stays the
cosine (``threshold`` applies to it: a matched photo below the threshold is left out); ``caption_matched`` marks the
raised hits and ``caption`` is the caption that matched. With w = 0, with no words in the query (image and photo
terms only), or when no caption matches, the ranker is the plain one: the order is exactly what it is without
captions.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np

from vsearch_app.core.engine.model_identity import display_name
from vsearch_app.core.library.caption_match import CaptionMatches, caption_texts
from vsearch_app.core.library.photo_metadata import camera_display
from vsearch_app.core.store.catalog import Catalog, FileRecord
from vsearch_app.core.types import FileState, SearchHit, SearchPage, SortOrder
from vsearch_app.errors import InvalidArgumentError, NothingToSearchError

MAX_RESULTS = 100_000  # the most hits one query gives (what the desktop app shows)
WIDEN = 4  # how much further a search looks when the candidates so far do not fill the page asked for
SPREAD_RANK = 100  # caption fusion: a full lift puts a photo above the best by the cosine gap from rank 1 to this

Ranker = Callable[[int], tuple[np.ndarray, np.ndarray, bool]]


def check_limit(limit: int) -> int:
    if not isinstance(limit, int) or limit < 1:
        raise InvalidArgumentError(f"the number of results must be at least 1, got {limit}", param="limit")
    return limit


def check_threshold(threshold: float | None) -> float | None:
    if threshold is not None and not -1.0 <= threshold <= 1.0:
        raise InvalidArgumentError(f"the score threshold is a cosine similarity between -1 and 1, got {threshold}",
                                   param="threshold")
    return threshold


def check_sort(sort: SortOrder | str) -> SortOrder:
    try:
        return SortOrder(sort)
    except ValueError:
        raise InvalidArgumentError(f"unknown sort order {sort!r}; use one of "
                                   f"{', '.join(o.value for o in SortOrder)}", param="sort") from None


def index_ranker(index, vector: np.ndarray, filter_ids: np.ndarray | None = None) -> Ranker:
    """Candidates from the vector index (core.store.sharded_index.ShardedIndex), ``k`` at a time."""

    def rank(k: int) -> tuple[np.ndarray, np.ndarray, bool]:
        ids, scores = index.search(vector, k=k, filter_ids=filter_ids)
        return np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float32), len(ids) < k

    return rank


def exact_ranker(ids: np.ndarray, vectors: np.ndarray, vector: np.ndarray) -> Ranker:
    """Every candidate scored exactly (cosine similarity) and sorted once; ``k`` does not matter."""
    scores = vectors @ (vector / max(float(np.linalg.norm(vector)), 1e-12))
    scores = scores / np.maximum(np.linalg.norm(vectors, axis=1), 1e-12)
    order = np.argsort(-scores, kind="stable")
    ranked_ids, ranked_scores = ids[order].astype(np.int64), scores[order].astype(np.float32)
    return lambda k: (ranked_ids, ranked_scores, True)


def fixed_ranker(ids: np.ndarray, scores: np.ndarray) -> Ranker:
    """Candidates already in their final order (a browse, or hits re-sorted by date or name)."""
    ids, scores = np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float32)
    return lambda k: (ids, scores, True)


class CaptionFusion:
    """A ranker with caption matches folded in (see the module docstring): ``fusion(k)`` gives the base ranker's
    ``k`` candidates and the matched photos that belong among them, by fused score, best first."""

    def __init__(self, base: Ranker, matches: CaptionMatches, vector: np.ndarray, weight: float,
                 threshold: float | None = None) -> None:
        unit = vector / max(float(np.linalg.norm(vector)), 1e-12)
        norms = np.maximum(np.linalg.norm(matches.vectors, axis=1), 1e-12)
        # einsum, not BLAS: a matrix-vector product this small waits for BLAS's threads on a busy machine (ms).
        cosines = (np.einsum("ij,j->i", matches.vectors, unit) / norms).astype(np.float32)
        ids = matches.file_ids
        keep = np.ones(len(ids), dtype=bool) if threshold is None else cosines >= threshold
        ids, cosines, match = ids[keep], cosines[keep], matches.match[keep]
        top_ids, top_scores, _ = self._top = base(SPREAD_RANK)  # kept: the first page needs no second search
        best = max(float(top_scores[0]) if len(top_scores) else -1.0, float(cosines.max(initial=-1.0)))
        # (An exact ranker returns every candidate whatever k is asked: the 100th is then not the last.)
        self.spread = float(best - top_scores[:SPREAD_RANK][-1]) if len(top_scores) else 0.0
        self.summit = best + self.spread  # where a full lift puts a photo: above the best one, by the spread
        lift = np.minimum(1.0, weight * match.astype(np.float64))
        fused = cosines + lift * (self.summit - cosines)
        order = np.lexsort((ids, -cosines, -fused))  # best fused first, then best cosine; then id: repeatable
        self._base = base
        self._ids, self._fused = ids[order], fused[order]
        self._all_matched = matches.file_ids  # base candidates that matched are placed by fused score, not cosine
        by_id = np.argsort(ids)  # for annotate's lookups
        self._lookup_ids, self._lookup_cosines = ids[by_id], cosines[by_id]
        self._lookup_rows = matches.caption_rows[keep][by_id]

    def __call__(self, k: int) -> tuple[np.ndarray, np.ndarray, bool]:
        ids, scores, complete = self._candidates(k)
        others = ~np.isin(ids, self._all_matched)
        ids, scores = ids[others], scores[others]
        # Matched photos placed before each candidate: those with a higher fused score (the candidates come best
        # first; the running maximum keeps their own order even if an approximate search returned one out of place).
        before = np.searchsorted(-self._fused, -scores, side="left")
        before = np.maximum.accumulate(before) if len(before) else before
        # Past the last candidate a matched photo may still belong after candidates not ranked yet: wait for them.
        placed = len(self._ids) if complete else (int(before[-1]) if len(before) else 0)
        total = len(ids) + placed
        out_ids = np.empty(total, dtype=np.int64)
        out_scores = np.empty(total, dtype=np.float32)
        is_candidate = np.zeros(total, dtype=bool)
        positions = np.arange(len(ids)) + before
        is_candidate[positions] = True
        out_ids[positions], out_scores[positions] = ids, scores
        out_ids[~is_candidate], out_scores[~is_candidate] = self._ids[:placed], self._fused[:placed]
        return out_ids, out_scores, complete

    def _candidates(self, k: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """The base ranker's best ``k``; up to SPREAD_RANK from the search the spread was measured with."""
        top_ids, top_scores, _ = self._top
        if k > SPREAD_RANK:
            return self._base(k)
        return top_ids[:k], top_scores[:k], len(top_ids) < k

    def annotate(self, hits: list[SearchHit], catalog: Catalog) -> list[SearchHit]:
        """Matched hits get their cosine back as ``score``, ``caption_matched`` and the caption that matched."""
        ids = np.fromiter((hit.file_id for hit in hits), dtype=np.int64, count=len(hits))
        at = np.minimum(np.searchsorted(self._lookup_ids, ids), max(len(self._lookup_ids) - 1, 0))
        matched = (self._lookup_ids[at] == ids) if len(self._lookup_ids) else np.zeros(len(ids), dtype=bool)
        if not matched.any():
            return hits
        texts = caption_texts(catalog, self._lookup_rows[at[matched]].tolist())
        out = list(hits)
        for i in np.flatnonzero(matched).tolist():
            out[i] = dataclasses.replace(hits[i], score=float(self._lookup_cosines[at[i]]), caption_matched=True,
                                         caption=texts.get(int(self._lookup_rows[at[i]])) or hits[i].caption)
        return out


def no_folders_yet() -> NothingToSearchError:
    """Said before the model is looked up: a new user's first search may come before any model is downloaded."""
    return NothingToSearchError("no photo folders are watched yet: add a folder of photos, then index it",
                                reason="no_folders", model="")


def nothing_to_search(catalog: Catalog, model_id: str) -> NothingToSearchError:
    """Why the model ``model_id`` has nothing to search, for the user (raised instead of returning no hits)."""
    if not catalog.roots():
        return no_folders_yet()
    name = display_name(model_id)
    counts = catalog.counts(model_id)
    pending = counts[FileState.PENDING]
    others = {display_name(m): n for m, n in catalog.models().items() if m != model_id and n}
    if not sum(counts.values()):
        return NothingToSearchError("the watched folders hold no photos that VSearch can read yet",
                                    reason="no_photos", model=name)
    if others:
        listed = ", ".join(f"{n} with {m}" for m, n in sorted(others.items()))
        return NothingToSearchError(
            f"no photos are indexed with the model {name} yet ({listed}); index them with {name}, or search "
            "with the model that indexed them", reason="other_model", model=name, pending=pending,
            other_models=others)
    if pending:
        return NothingToSearchError(f"{pending} photo(s) are waiting to be indexed with {name}",
                                    reason="not_indexed", model=name, pending=pending)
    return NothingToSearchError(
        f"no photo can be searched now: {counts[FileState.OFFLINE]} offline (their folder is not reachable) and "
        f"{counts[FileState.FAILED]} could not be read", reason="unavailable", model=name)


def taken_at(record: FileRecord) -> tuple[str | None, str | None]:
    """When the photo was taken, as ISO 8601 local time, and where that came from ("exif" or "mtime")."""
    if record.captured_at:
        return record.captured_at, record.captured_source or "exif"  # no source: read before schema v5, from EXIF
    try:
        moment = datetime.fromtimestamp(record.mtime_ns // 1_000_000_000)
    except (OverflowError, OSError, ValueError):  # a nonsense timestamp on a damaged file system
        return None, None
    return moment.isoformat(timespec="seconds"), "mtime"


def hit_from_record(record: FileRecord, score: float, *, root_online: bool, good_match: bool = False) -> SearchHit:
    when, source = taken_at(record)
    return SearchHit(path=record.path, score=float(score), file_id=int(record.id), size=int(record.size),
                     width=record.width, height=record.height, taken_at=when, taken_at_source=source,
                     caption=record.caption or "", online=root_online and record.state != FileState.OFFLINE,
                     camera=camera_display(record.camera_make, record.camera_model), good_match=good_match)


class SearchResults:
    """One query's hits, best first, read a page at a time: ``page(offset, count)`` or ``hits(offset, count)``.

    Thread-safe (one page is built at a time). The hits are those of the library when the results were made; a
    photo deleted since is skipped. Reading a page after the library was closed raises a VSearchError."""

    def __init__(
        self,
        catalog: Catalog,
        ranker: Ranker,
        *,
        limit: int = MAX_RESULTS,
        threshold: float | None = None,
        candidates: int | None = None,
        roots_online: Callable[[], dict[int, bool]] = dict,
        good_cut: float | None = None,
        fusion: CaptionFusion | None = None,
    ) -> None:
        self.limit = check_limit(limit)
        self.threshold = check_threshold(threshold)
        self._catalog = catalog
        self._ranker = ranker
        self._candidates = candidates  # how many photos the ranker can return at most, when known
        self._roots_online = roots_online  # root id -> reachable now
        self.good_cut = good_cut  # hits scoring at least this are good matches (core/library/good_match.py)
        self._fusion = fusion  # the ranker when captions matched: it knows the matched hits' cosines and captions
        self._lock = threading.Lock()
        self._excluded = catalog.ids_in_states((FileState.OFFLINE, FileState.FAILED))  # sorted, fixed for these results
        self._ids = np.zeros(0, dtype=np.int64)  # every candidate ranked so far, best first
        self._scores = np.zeros(0, dtype=np.float32)
        self._valid = np.zeros(0, dtype=np.int64)  # positions in _ids of the candidates that are hits
        self._k = 0  # how many candidates the ranker was last asked for
        self._complete = False  # the ranker has nothing more

    # --- what is known ------------------------------------------------------------------------------------------

    @property
    def total_known(self) -> int:
        """Hits ranked so far (the final count once ``exhausted``)."""
        return min(len(self._valid), self.limit)

    @property
    def exhausted(self) -> bool:
        """Whether every hit is ranked: ``total_known`` is then the final count."""
        return self._complete or len(self._valid) >= self.limit

    @property
    def max_total(self) -> int:
        """An upper bound of the number of hits (exact once ``exhausted``): what a view may size its paging by."""
        if self.exhausted:
            return self.total_known
        bound = self.limit if self._candidates is None else min(self.limit, self._candidates)
        return max(bound, self.total_known)

    # --- pages --------------------------------------------------------------------------------------------------

    def page(self, offset: int, count: int) -> SearchPage:
        """Hits ``offset`` .. ``offset + count - 1`` (fewer at the end of the ranking)."""
        if offset < 0:
            raise InvalidArgumentError(f"a page starts at 0 or later, not {offset}", param="offset")
        if count < 0:
            raise InvalidArgumentError(f"a page holds 0 or more hits, not {count}", param="count")
        with self._lock:
            end = min(offset + count, self.limit)
            while True:
                self._rank_until(end)
                positions = self._valid[offset:end]
                ids = self._ids[positions].tolist()
                rows = self._catalog.files_by_ids(ids) if ids else {}
                gone = [fid for fid in ids if fid not in rows]
                if not gone:
                    break
                self._exclude(gone)  # deleted since: the hits after them move up, and the page is read again
            online = self._roots_online() if ids else {}
            scores = self._scores[positions].tolist()
            cut = self.good_cut
            hits = [hit_from_record(rows[fid], score, root_online=online.get(rows[fid].root_id, False),
                                    good_match=cut is not None and score >= cut)
                    for fid, score in zip(ids, scores, strict=True)]
            if self._fusion is not None:
                hits = self._fusion.annotate(hits, self._catalog)
            return SearchPage(hits=hits, offset=offset, total_known=self.total_known, exhausted=self.exhausted)

    def hits(self, offset: int, count: int) -> list[SearchHit]:
        """``page(offset, count).hits``: the fetch(offset, count) a paged list view asks for."""
        return self.page(offset, count).hits

    # --- internals ----------------------------------------------------------------------------------------------

    def _rank_until(self, needed: int) -> None:
        """Ask the ranker for more candidates until ``needed`` hits are known or there are no more."""
        while len(self._valid) < needed and not self._complete:
            k = needed if self._k == 0 else max(needed, self._k * WIDEN)
            ids, scores, complete = self._ranker(k)
            self._k = k
            self._merge(ids, scores, complete)

    def _merge(self, ids: np.ndarray, scores: np.ndarray, complete: bool) -> None:
        if self.threshold is not None:
            below = np.flatnonzero(scores < self.threshold)
            if below.size:  # best first: everything from the first one below the threshold is out
                ids, scores, complete = ids[: below[0]], scores[: below[0]], True
        if self._ids.size:  # keep what was ranked before in its place; append only what is new
            fresh = ~np.isin(ids, self._ids)
            ids = np.concatenate([self._ids, ids[fresh]])
            scores = np.concatenate([self._scores, scores[fresh]])
        self._ids, self._scores, self._complete = ids, scores, complete
        self._valid = np.flatnonzero(~np.isin(ids, self._excluded))

    def _exclude(self, ids: Sequence[int]) -> None:
        self._excluded = np.union1d(self._excluded, np.asarray(ids, dtype=np.int64))
        self._valid = np.flatnonzero(~np.isin(self._ids, self._excluded))

