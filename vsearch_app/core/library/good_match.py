"""The "good match" mark: which hits of a query stand out from the library as a whole.

Scores (cosine similarities) mean different things for different queries: a text query may top out at 0.12 while
an image query's unrelated photos score 0.6. So the cut is computed per query, from the query's own *null
distribution*: its scores against a fixed random sample of the library's photos (``NULL_SAMPLE`` of them, drawn
once per library state). Almost every photo in a random sample is not what the query is about, so the sample's
median and spread describe "unrelated" for this query; a hit is a good match when its score lies more than
``MAD_FACTOR`` (3) robust standard deviations above that median:

    cut = median(null) + MAD_FACTOR * 1.4826 * MAD(null)

(1.4826 * MAD is the standard deviation of a normal distribution, estimated without letting the few real matches
in the sample pull it up.) The mark needs no training, no labels and no per-model constant, and costs one
matrix-vector product over the sample per query (``NULL_SAMPLE`` x dim: under a millisecond).

Measured on the shapes data (``benchmarks/bench_shape_queries.py`` prints it; the README has the figures): precision
of the mark = marked hits of the query's colour and shape / marked hits.
"""

from __future__ import annotations

import numpy as np

NULL_SAMPLE = 2_000  # photos in the null sample: the median and MAD of 2,000 scores are stable to ~0.01
# Robust standard deviations above the null median. Measured 2026-12-02 with bench_shape_queries.py (96 single-shape
# images, 24 queries "a <colour> <shape>") on the README recipe's model part way through its 1,610 steps (the full
# training did not finish on the loaded machine). After 303 steps (top-1 colour 24/24, shape 8/24): factor 2 marks
# 157 images for 15 queries, pair precision 0.31, colour precision 1.00, recall 0.50; 3: 45 images for 7 queries,
# 0.36 / 1.00 / 0.17; 4: 2 images; 5 and 6: none. After 622 steps (shape 12/24): 2: 108 for 14 queries, 0.36 / 0.99 /
# 0.41; 3: 20 for 3 queries, 0.30 / 1.00 / 0.06; 4 and up: none. 3 still marks (2 would let about 1 unrelated photo
# in 40 through under a normal null: thousands per query in a large library; 3 lets 1 in 700).
MAD_FACTOR = 3.0
# Below this many photos the sample is no null distribution: in a library of a dozen photos of one subject most of
# them are related to any query about it, the median is a match, and the cut marks half the library. Nothing is
# marked then.
MIN_SAMPLE = 50


def sample_ids(ids: np.ndarray, size: int = NULL_SAMPLE, seed: int = 0) -> np.ndarray:
    """A fixed random subset of ``ids`` (all of them when there are fewer), the same for the same ids."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) <= size:
        return ids
    return np.sort(np.random.default_rng(seed).choice(ids, size=size, replace=False))


def good_match_cut(query: np.ndarray, sample: np.ndarray, mad_factor: float = MAD_FACTOR) -> float | None:
    """The score above which a hit of ``query`` is a good match, from its scores against ``sample`` (rows: the
    library's vectors); None when the sample is too small to say."""
    if len(sample) < MIN_SAMPLE:
        return None
    unit = np.asarray(query, dtype=np.float32).reshape(-1)
    unit = unit / max(float(np.linalg.norm(unit)), 1e-12)
    norms = np.maximum(np.linalg.norm(sample, axis=1), 1e-12)
    scores = (sample @ unit) / norms
    median = float(np.median(scores))
    mad = float(np.median(np.abs(scores - median)))
    return median + mad_factor * 1.4826 * max(mad, 1e-6)
