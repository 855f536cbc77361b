"""Telling a query that is far from every photo (out of distribution), so the vector index can search it wider.

A text query sits away from every photo (SigLIP's modality gap) and between groups of similar photos; its true
neighbours lie on the edges of several groups, and hnswlib's beam only reaches those of the group its greedy descent
chose unless the beam is much wider. An image-like query needs no such width. ``Pivots`` tells the two apart cheaply:
a sample of the stored vectors in a small graph of its own. An in-distribution query scores about as well against
its best pivot as the photos themselves do; a query whose best pivot score is well below theirs is out of
distribution. (benchmarks/RESULTS.md has the measurements behind the parameters, IndexParams' ``ood_*`` fields.)

Pivots are not saved: the index draws them again on open, after a rebuild and when it has grown by half.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import hnswlib
import numpy as np

from vsearch_app.core.store.index_files import SPACE

log = logging.getLogger(__name__)

SAMPLE = 512  # photos (not pivots themselves) whose best pivot score sets the threshold


@dataclass(frozen=True)
class Pivots:
    """A sample of the stored vectors and the score that separates far queries from near ones."""

    graph: hnswlib.Index  # the pivots' vectors, labels 0..count-1 (a graph of its own: read-only, thread-safe)
    threshold: float  # a query whose best pivot score is below this is out of distribution
    built_for: int  # live vectors when drawn

    @property
    def count(self) -> int:
        return self.graph.element_count

    def is_far(self, query: np.ndarray) -> bool:
        """True when the unit ``query`` is out of distribution. Costs one search of the small pivot graph."""
        _, distances = self.graph.knn_query(query, k=1, num_threads=1)
        return float(1.0 - distances[0, 0]) < self.threshold

    def stale(self, size: int, min_size: int) -> bool:
        """Whether an index of ``size`` live vectors should draw its pivots again (or drop them)."""
        return size < min_size or size > 1.5 * self.built_for


def pivots_wanted(size: int, min_size: int) -> bool:
    """Whether an index of ``size`` live vectors without pivots should draw some."""
    return size >= min_size


def choose_pivots(labels: np.ndarray, every: int, most: int) -> tuple[np.ndarray, np.ndarray]:
    """(pivot labels, sample labels), both sorted: one pivot per ``every`` labels up to ``most``, and up to SAMPLE
    other labels to measure the photos' own best pivot score (a pivot would score 1 against itself). Deterministic:
    the same library gets the same pivots."""
    rng = np.random.default_rng(0)
    count = int(min(most, max(len(labels) // max(every, 1), 1)))
    order = rng.permutation(len(labels))
    return np.sort(labels[order[:count]]), np.sort(labels[order[count : count + SAMPLE]])


def build_pivots(vectors: np.ndarray, sample: np.ndarray, *, below: float, built_for: int, threads: int) -> Pivots:
    """Pivots from their ``vectors``; the threshold is ``below`` times the median best pivot score of ``sample``
    (stored vectors that are not pivots)."""
    graph = hnswlib.Index(space=SPACE, dim=vectors.shape[1])
    graph.init_index(max_elements=len(vectors), M=16, ef_construction=100)
    graph.add_items(vectors, np.arange(len(vectors)), num_threads=threads)
    graph.set_ef(16)  # only the best score matters, and only roughly: the threshold has a wide margin
    typical = float(np.median(1.0 - graph.knn_query(sample, k=1, num_threads=threads)[1][:, 0]))
    pivots = Pivots(graph=graph, threshold=below * typical, built_for=built_for)
    log.debug("%d pivots for out-of-distribution queries, threshold %.3f", len(vectors), pivots.threshold)
    return pivots
