"""Waypoints: hidden vectors that give the vector index's graph paths between groups of photos.

A query far from every photo (a text query: SigLIP's modality gap, and a description that falls between groups of
similar photos) has its true nearest photos on the edges of several such groups. hnswlib's graph has few links
between well-separated groups, so its beam search explores the group its greedy descent chose and misses the
others unless the beam is made very wide. A waypoint is the normalised mean of a few photos drawn from across the
library: it lies between their groups, and when it is inserted hnswlib links it to photos in each of them. The
index inserts one waypoint per ``every`` photos and marks it deleted at once, so searches travel through waypoints
but never return them (hnswlib keeps deleted entries in the graph for navigation).

What they gain, and why a waypoint mixes 3 photos and only graphs of 200k photos get them: benchmarks/RESULTS.md.

The photos mixed in are one just added plus ``mix - 1`` drawn from a uniform sample of everything added so far (a
reservoir, kept as float16). After a load the reservoir is empty: the index seeds it from the graph before the first
add that makes waypoints, so waypoints never mix only the photos of one import batch (which tend to be alike).
"""

from __future__ import annotations

import numpy as np


class WaypointMaker:
    """Turns each batch of added vectors into the waypoints to insert with it (see the module docstring)."""

    def __init__(self, dim: int, every: int, mix: int, partners: int, seed: int = 0, seeded: bool = True) -> None:
        self.dim = int(dim)
        self.every = int(every)  # one waypoint per this many added vectors; 0 turns waypoints off
        self.mix = max(int(mix), 2)
        self._rng = np.random.default_rng(seed)  # seeded: the same additions give the same graph (reproducible)
        self._reservoir = np.empty((max(int(partners), 1), self.dim), dtype=np.float16)
        self._filled = 0
        self._seen = 0  # vectors the reservoir is a uniform sample of
        self._seeded = seeded  # False: the index holds vectors the reservoir has not seen (it was loaded)
        self._owed = 0  # vectors added since the last waypoint (carried over between small batches)

    @property
    def enabled(self) -> bool:
        return self.every > 0

    @property
    def needs_seed(self) -> bool:
        """True until seed() is called on a maker made with ``seeded=False`` (for an index loaded from disk)."""
        return self.enabled and not self._seeded

    @property
    def partner_capacity(self) -> int:
        return len(self._reservoir)

    def seed(self, vectors: np.ndarray, represents: int) -> None:
        """Fill the reservoir with a uniform sample (``vectors``) of ``represents`` stored vectors, so that later
        additions replace its rows at the right rate."""
        sample = _unit_rows(vectors)[: len(self._reservoir)]
        self._reservoir[: len(sample)] = sample
        self._filled = len(sample)
        self._seen = max(int(represents), len(sample))
        self._seeded = True

    def waypoints_for(self, added: np.ndarray, make: bool = True) -> np.ndarray:
        """The waypoints to insert along with ``added`` (float32, unit rows; often none for a small batch). With
        ``make`` False (a library still too small to need them) ``added`` only joins the sample."""
        none = np.zeros((0, self.dim), dtype=np.float32)
        if not self.enabled or len(added) == 0 or not self._seeded:
            return none  # unseeded: the caller seeds before it needs waypoints; until then there is no sample
        unit = _unit_rows(added)
        self._offer(unit)
        if not make:
            return none
        count, self._owed = divmod(self._owed + len(unit), self.every)
        if count == 0:
            return none
        mixed = unit[self._rng.integers(0, len(unit), count)].astype(np.float32)
        for _ in range(self.mix - 1):
            mixed += self._reservoir[self._rng.integers(0, self._filled, count)].astype(np.float32)
        norms = np.linalg.norm(mixed, axis=1, keepdims=True)
        keep = norms[:, 0] > 1e-3  # photos that cancel out give no usable direction
        return np.ascontiguousarray(mixed[keep] / norms[keep], dtype=np.float32)

    def _offer(self, unit: np.ndarray) -> None:
        """Reservoir sampling (Vitter's algorithm R), vectorised: after it, every vector offered so far is in the
        reservoir with the same probability."""
        size = len(self._reservoir)
        positions = self._seen + np.arange(len(unit))
        fill = positions < size
        if fill.any():
            self._reservoir[positions[fill]] = unit[fill]
            self._filled = int(min(size, positions[fill][-1] + 1))
        rest = np.flatnonzero(~fill)
        if len(rest):
            slots = self._rng.integers(0, positions[rest] + 1)
            chosen = slots < size
            self._reservoir[slots[chosen]] = unit[rest[chosen]]
        self._seen += len(unit)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)
