"""The query the user is building: an ordered list of terms (text, example image file, or an indexed photo for
Find similar; each with a signed weight).

``QueryModel`` is the only source of truth for the terms; the chips and the text box are views of it. Every edit
goes through a method here, which keeps the weights in range and emits ``changed`` once, only when the terms
really changed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from PySide6.QtCore import QObject, Signal

from vsearch_app.core.types import QueryTerm
from vsearch_app.errors import InvalidArgumentError

MIN_WEIGHT = 0.1  # the magnitude; 0 would drop the term, which the remove button says more plainly
MAX_WEIGHT = 10.0
WEIGHT_STEP = 0.1  # one wheel notch or arrow key


def clamp_weight(magnitude: float) -> float:
    """A weight magnitude in [MIN_WEIGHT, MAX_WEIGHT], rounded to hundredths so 0.1 steps never drift (1.30000004)."""
    if not math.isfinite(magnitude):
        raise InvalidArgumentError(f"weight {magnitude} is not a number")
    return round(min(MAX_WEIGHT, max(MIN_WEIGHT, magnitude)), 2)


class QueryModel(QObject):
    """Ordered query terms with signed weights. ``changed`` carries nothing: read ``terms``."""

    changed = Signal()

    def __init__(self, terms: Iterable[QueryTerm] = (), parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._terms: list[QueryTerm] = [self._normalised(t) for t in terms]

    # --- reading -----------------------------------------------------------------------------------------------

    @property
    def terms(self) -> list[QueryTerm]:
        return list(self._terms)

    def __len__(self) -> int:
        return len(self._terms)

    def __getitem__(self, index: int) -> QueryTerm:
        return self._terms[index]

    # --- editing -----------------------------------------------------------------------------------------------

    def add(self, term: QueryTerm) -> None:
        self.extend([term])

    def extend(self, terms: Iterable[QueryTerm]) -> None:
        added = [self._normalised(t) for t in terms]
        if added:
            self._set([*self._terms, *added])

    def remove(self, index: int) -> None:
        self._check(index)
        self._set(self._terms[:index] + self._terms[index + 1:])

    def set_weight(self, index: int, magnitude: float) -> None:
        """Set how strongly term ``index`` counts (clamped to [MIN_WEIGHT, MAX_WEIGHT]); its sign stays."""
        self._check(index)
        term = self._terms[index]
        self._replace(index, QueryTerm(term.kind, term.value, math.copysign(clamp_weight(magnitude), term.weight)))

    def step_weight(self, index: int, steps: int) -> None:
        """Raise (positive ``steps``) or lower the weight of term ``index`` by WEIGHT_STEP per step."""
        self._check(index)
        self.set_weight(index, abs(self._terms[index].weight) + steps * WEIGHT_STEP)

    def toggle_sign(self, index: int) -> None:
        """Include an excluded term, or exclude an included one."""
        self._check(index)
        term = self._terms[index]
        self._replace(index, QueryTerm(term.kind, term.value, -term.weight))

    def replace_all(self, terms: Iterable[QueryTerm]) -> None:
        self._set([self._normalised(t) for t in terms])

    def clear(self) -> None:
        self._set([])

    # --- internals ---------------------------------------------------------------------------------------------

    def _replace(self, index: int, term: QueryTerm) -> None:
        self._set(self._terms[:index] + [term] + self._terms[index + 1:])

    def _set(self, terms: list[QueryTerm]) -> None:
        if terms != self._terms:
            self._terms = terms
            self.changed.emit()

    def _check(self, index: int) -> None:
        if not 0 <= index < len(self._terms):
            raise IndexError(f"no query term {index} (the query has {len(self._terms)})")

    @staticmethod
    def _normalised(term: QueryTerm) -> QueryTerm:
        if term.kind not in ("text", "image", "photo"):
            raise InvalidArgumentError(f"unknown query term kind {term.kind!r}")
        if not term.value.strip():
            raise InvalidArgumentError("a query term cannot be empty")
        if term.weight == 0:
            raise InvalidArgumentError(f"query term {term.value!r} has weight 0; remove it instead")
        weight = math.copysign(clamp_weight(abs(term.weight)), term.weight)
        return term if weight == term.weight else QueryTerm(term.kind, term.value, weight)
