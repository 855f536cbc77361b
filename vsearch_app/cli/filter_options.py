"""`vsearch search`'s filter and sort flags, and how they become a core.types.SearchFilter.

The values go to the engine as written: it reads the date forms ("2019", "2019-06", "2019-06-01"), checks every value
and names the one it refuses (VSearchError.param, printed as its flag by cli/options.error_message).
"""

from __future__ import annotations

import argparse

from vsearch_app.core.types import SearchFilter, SortOrder

ORIENTATIONS = ("landscape", "portrait", "square")


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "filters", "Applied before the best results are picked, so a narrow filter still gets its best matches. "
                   "With filters and no query, every matching photo is listed (newest first unless --sort says).")
    group.add_argument("--after", metavar="DATE",
                       help="taken on or after DATE: 2019, 2019-06 or 2019-06-01 (inclusive: from its first day)")
    group.add_argument("--before", metavar="DATE",
                       help="taken before DATE, same forms (exclusive: --before 2020 ends on 31 Dec 2019)")
    group.add_argument("--camera", metavar="TEXT",
                       help='taken with a camera whose "make model" contains TEXT, ignoring case ("pixel 7")')
    group.add_argument("--min-pixels", type=_positive_int, metavar="N",
                       help="at least N pixels (width x height; 2000000 is 2 megapixels)")
    group.add_argument("--orientation", choices=ORIENTATIONS, help="the photo's shape as shown (after rotation)")
    group.add_argument("--sort", choices=[o.value for o in SortOrder], default=None,
                       help="score: best match first (the default with a query); date: newest first (the default "
                            "without one); name: by file name. With a query, date and name re-order its best "
                            "1,000 results")


def filters_from(args: argparse.Namespace) -> SearchFilter | None:
    """The SearchFilter the flags ask for, or None when they ask for none (``--in`` stays the folder argument)."""
    found = SearchFilter(taken_after=args.after, taken_before=args.before, camera=args.camera,
                         min_pixels=args.min_pixels, orientation=args.orientation)
    return None if found.is_empty else found


def sort_from(args: argparse.Namespace) -> SortOrder:
    return SortOrder(args.sort) if args.sort else SortOrder.SCORE


def asks_for_a_list(args: argparse.Namespace) -> bool:
    """Whether a search without query terms still means something: a filter, a folder or an order to list by."""
    return filters_from(args) is not None or args.folder is not None or args.sort is not None


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
