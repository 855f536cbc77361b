"""`vsearch duplicates`: groups of duplicate photos, the suggested keeper of each first. Nothing is deleted.

Text output, one block per group:

    exact  2 photos (byte-identical)
      keep  0.912  /photos/a.jpg
            0.912  /photos/copy of a.jpg
    near   3 photos
      keep  0.874  /photos/burst/1.jpg
            0.611  /photos/burst/2.jpg  (similarity 0.981)

The number is the best-shot quality (core/library/photo_quality.py). ``--json`` prints
``{"threshold": T, "groups": [{"kind", "members": [{"path", "keeper", "quality", "similarity", "size", "width",
"height"}]}]}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from vsearch_app.cli.library_cmd import what_to_do
from vsearch_app.cli.options import add_model_options, settings_from
from vsearch_app.core.service import DUPLICATE_THRESHOLD, LibraryService
from vsearch_app.core.types import DuplicateGroup, IndexProgress
from vsearch_app.errors import NothingToSearchError, VSearchError


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "duplicates", parents=[common], help="find duplicate and near-identical photos, best shot first",
        description="List groups of byte-identical files (exact) and of near-identical photos (near: bursts, edits, "
                    "resized exports) found from the stored vectors, without embedding anything. Each group starts "
                    "with the suggested keeper, the best shot by sharpness, exposure and resolution. VSearch never "
                    "deletes anything.",
    )
    add_model_options(parser)
    parser.add_argument("--in", dest="folder", default=None, metavar="FOLDER",
                        help="only photos inside FOLDER (a watched folder or a folder within one)")
    parser.add_argument("--threshold", type=float, default=None, metavar="T",
                        help=f"cosine similarity from which two photos count as near-identical (default "
                             f"{DUPLICATE_THRESHOLD}; lower finds more, and more false pairs)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(handler=run_duplicates)


def run_duplicates(args: argparse.Namespace) -> int:
    service = LibraryService.open(settings_from(args))
    try:
        groups = service.duplicates(folder=args.folder, threshold=args.threshold, progress=_progress)
    except NothingToSearchError as exc:
        raise VSearchError(what_to_do(exc)) from exc
    finally:
        service.close()
    if sys.stderr.isatty():
        sys.stderr.write("\r" + " " * 60 + "\r")
    if args.json:
        threshold = DUPLICATE_THRESHOLD if args.threshold is None else args.threshold
        json.dump({"threshold": threshold, "groups": [group_document(g) for g in groups]}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    if not groups:
        print("no duplicates found")
        return 0
    for group in groups:
        what = " (byte-identical)" if group.kind == "exact" else ""
        print(f"{group.kind:<6} {len(group.members)} photos{what}")
        for i, member in enumerate(group.members):
            similar = f"  (similarity {member.similarity:.3f})" if group.kind == "near" and i else ""
            print(f"  {'keep' if i == 0 else '    '}  {member.quality:.3f}  {_show(member.path)}{similar}")
    exact = sum(g.kind == "exact" for g in groups)
    print(f"{len(groups)} group(s): {exact} exact, {len(groups) - exact} near; the first photo of each is the "
          "suggested keeper (nothing was deleted)", file=sys.stderr)
    return 0


def group_document(group: DuplicateGroup) -> dict:
    return {"kind": group.kind, "members": [
        {"path": os.fsdecode(m.path), "keeper": i == 0, "quality": m.quality, "similarity": m.similarity,
         "size": m.size, "width": m.width, "height": m.height}
        for i, m in enumerate(group.members)]}


def _progress(event: IndexProgress) -> None:
    if sys.stderr.isatty() and event.total:
        sys.stderr.write(f"\r{event.phase}: {event.done}/{event.total}".ljust(60))
        sys.stderr.flush()


def _show(path: os.PathLike[str] | str) -> str:
    return os.fsencode(path).decode("utf-8", errors="replace")
