"""Ranking under a filter, and orders other than the score: the strategies ``Library.search_results`` picks from.

A filter is applied before the top-k cut (core/library/filters.py gives the allowed photos from the catalog). How the
allowed photos are then ranked depends on how many there are:

- up to ``EXACT_FILTER_LIMIT`` photos: exact. Their vectors are read from the catalog in one query and scored with
  one matrix product, so the answer is the true best of the filtered set, whatever its rank in the whole library.
- more: the vector index, searched with hnswlib's filter (the graph walk skips photos outside the filter; a large
  filtered set is dense enough in the graph for the walk to reach its best members) and widened by paging as usual.

The crossover, measured with ``benchmarks/bench_library.py --filter-sweep`` (see ``EXACT_FILTER_LIMIT``), is where
reading and scoring n vectors exactly costs as much as the filtered graph walk; the exact side also never misses.

Orders: SCORE is the ranking itself. DATE and NAME re-order a query's best ``SORT_POOL`` hits (or fewer: the limit,
the threshold), because "newest first" over a whole 100,000-photo ranking would put barely related photos first;
without a query (a browse) every allowed photo is listed in that order.
"""

from __future__ import annotations

import numpy as np

from vsearch_app.core.library.filters import filtered_embeddings, order_ids
from vsearch_app.core.library.search import Ranker, exact_ranker, fixed_ranker, index_ranker
from vsearch_app.core.store.catalog import Catalog
from vsearch_app.core.types import SearchFilter, SortOrder

# Filtered sets up to this size are scored exactly from the catalog; larger ones through the index's filtered search.
# Measured 2026-12-02 on the shared 2-core machine (bench_library.py --filter-sweep, 100k 768-d vectors): see
# benchmarks/RESULTS.md.
EXACT_FILTER_LIMIT = 50_000
SORT_POOL = 1_000  # a query's best hits that DATE or NAME order re-sorts


def filtered_ranker(catalog: Catalog, index, model_id: str, dim: int, vector: np.ndarray,
                    filters: SearchFilter, allowed: np.ndarray) -> tuple[Ranker, int]:
    """A ranker over the ``allowed`` photos (ids of a checked filter) and how many candidates it can give."""
    if len(allowed) <= EXACT_FILTER_LIMIT:
        ids, vectors = filtered_embeddings(catalog, model_id, filters, dim)
        return exact_ranker(ids, vectors, vector), len(ids)
    return index_ranker(index, vector, allowed), len(allowed)


def sorted_ranker(catalog: Catalog, ranker: Ranker, sort: SortOrder, pool: int,
                  threshold: float | None) -> Ranker:
    """The best ``pool`` candidates of ``ranker`` (those scoring at least ``threshold``) in ``sort`` order; their
    scores stay with them."""
    ids, scores, _ = ranker(pool)
    ids, scores = ids[:pool], scores[:pool]
    if threshold is not None:
        keep = scores >= threshold
        ids, scores = ids[keep], scores[keep]
    ordered = order_ids(catalog, ids, sort)
    score_of = dict(zip(ids.tolist(), scores.tolist(), strict=True))
    return fixed_ranker(ordered, np.asarray([score_of[int(i)] for i in ordered], dtype=np.float32))


def browse_ranker(ids: np.ndarray) -> Ranker:
    """Photos listed without a query: in their given order, each with score 0."""
    return fixed_ranker(ids, np.zeros(len(ids), dtype=np.float32))
