"""FilterChoice: what the filter bar has chosen (a month range, a folder, a camera), as the engine's SearchFilter and
as words for the window ("2019 · Pixel 7", "No photos from 2019 taken with Pixel 7 match").

Plain Python, no Qt: the filter bar edits a FilterChoice, the window passes ``search_filter()`` to the controller
with the query, and the empty state and the "Filtered: … ×" pill read ``label()`` / ``where()``.

Months are "YYYY-MM" strings, the form ``LibraryService.photo_months`` gives them. The range is inclusive of both
months; the engine's ``taken_before`` is exclusive, so it gets the first day of the month after the last one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from vsearch_app.core.types import SearchFilter, SortOrder

MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
FULL_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                    "October", "November", "December")

# The sort control's choices, in the order the combo box lists them.
SORT_LABELS = {SortOrder.SCORE: "Best match", SortOrder.DATE: "Newest first", SortOrder.NAME: "Name"}


def month_index(month: str) -> int:
    """ "2019-06" -> a month count (year * 12 + month - 1), so that months can be compared and stepped.
    ValueError for anything else."""
    year, _, number = month.partition("-")
    y, m = int(year), int(number)
    if not 1 <= m <= 12 or len(year) != 4:
        raise ValueError(f"not a month: {month!r}")
    return y * 12 + m - 1


def month_of(index: int) -> str:
    """The inverse of ``month_index``: 24222 -> "2018-07"."""
    year, month = divmod(index, 12)
    return f"{year:04d}-{month + 1:02d}"


def month_label(month: str, *, full: bool = False) -> str:
    """ "2019-06" -> "Jun 2019" (or "June 2019")."""
    index = month_index(month)
    names = FULL_MONTH_NAMES if full else MONTH_NAMES
    return f"{names[index % 12]} {index // 12}"


def range_label(first: str, last: str) -> str:
    """A month range in the fewest words: "2019", "2017–2019", "June 2019", "Jun – Aug 2019", "Nov 2019 – Feb 2020"."""
    a, b = sorted((month_index(first), month_index(last)))
    first_year, last_year = a // 12, b // 12
    if a % 12 == 0 and b % 12 == 11:  # whole years
        return str(first_year) if first_year == last_year else f"{first_year}–{last_year}"
    if a == b:
        return month_label(month_of(a), full=True)
    if first_year == last_year:
        return f"{MONTH_NAMES[a % 12]} – {MONTH_NAMES[b % 12]} {first_year}"
    return f"{month_label(month_of(a))} – {month_label(month_of(b))}"


@dataclass(frozen=True)
class FilterChoice:
    """The filter bar's state. ``first_month``/``last_month``: an inclusive month range (both set, or neither);
    ``folder``: a watched folder or a folder inside one; ``camera``: a camera name as ``cameras()`` lists it."""

    first_month: str | None = None
    last_month: str | None = None
    folder: Path | None = None
    camera: str | None = None

    @property
    def is_empty(self) -> bool:
        return self.first_month is None and self.folder is None and not self.camera

    @property
    def has_dates(self) -> bool:
        return self.first_month is not None

    def with_months(self, first: str | None, last: str | None) -> FilterChoice:
        if first is None or last is None:
            return dataclasses.replace(self, first_month=None, last_month=None)
        a, b = sorted((month_index(first), month_index(last)))
        return dataclasses.replace(self, first_month=month_of(a), last_month=month_of(b))

    def without_dates(self) -> FilterChoice:
        return self.with_months(None, None)

    def search_filter(self) -> SearchFilter | None:
        """The engine's filter, or None when nothing is chosen."""
        if self.is_empty:
            return None
        after = before = None
        if self.first_month is not None and self.last_month is not None:
            after = f"{self.first_month}-01"
            before = f"{month_of(month_index(self.last_month) + 1)}-01"
        return SearchFilter(taken_after=after, taken_before=before,
                            folders=(self.folder,) if self.folder is not None else (),
                            camera=self.camera or None)

    def label(self) -> str:
        """The chosen facts, short: "2019 · Holidays · Pixel 7" ("" when nothing is chosen)."""
        parts = []
        if self.first_month is not None and self.last_month is not None:
            parts.append(range_label(self.first_month, self.last_month))
        if self.folder is not None:
            parts.append(self.folder.name or str(self.folder))
        if self.camera:
            parts.append(self.camera)
        return " · ".join(parts)

    def where(self) -> str:
        """The chosen facts as a phrase after "photos": "from 2019 in “Holidays” taken with Pixel 7"."""
        parts = []
        if self.first_month is not None and self.last_month is not None:
            parts.append(f"from {range_label(self.first_month, self.last_month)}")
        if self.folder is not None:
            parts.append(f"in “{self.folder.name or self.folder}”")
        if self.camera:
            parts.append(f"taken with {self.camera}")
        return " ".join(parts)
