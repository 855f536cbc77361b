"""`vsearch captions export`: print the captions stored in the library (no model is loaded).

Text output is one line per caption, tab-separated, the caption's text last, so `cut -f1,6` or `awk -F'\\t'` take it
apart: ``path  model  prompt  finished|stopped  created (UTC, ISO 8601)  text``. Tabs and line breaks inside a field
are printed as spaces, and a path that is not valid UTF-8 shows U+FFFD (the JSON keeps it exactly, as \\udcXX escapes).
`--json` prints one list of objects instead. Only captions of a photo's current content are stored for search and
shown here; a library without any says so on stderr and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from vsearch_app.cli.options import settings_from
from vsearch_app.core.service import LibraryService
from vsearch_app.core.types import CaptionResult


def register(subparsers, common: argparse.ArgumentParser) -> None:
    captions = subparsers.add_parser("captions", help="the captions stored in the library",
                                     description="Captions that `vsearch caption` and the desktop app stored for "
                                                 "photos in watched folders.")
    actions = captions.add_subparsers(dest="captions_action", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export", parents=[common], help="print every stored caption",
        description="Print the stored captions, one per line: path, caption model, prompt, finished or stopped, "
                    "when it was written (UTC) and the text, separated by tabs. --json prints a list of objects.",
    )
    export.add_argument("--model", dest="caption_model", default=None, metavar="ID|DIR",
                        help="only captions written by this caption model (as stored: a hub id or a folder)")
    export.add_argument("--prompt", default=None, help="only answers to this prompt, e.g. 'caption en'")
    export.add_argument("--json", action="store_true", help="print one JSON list of objects")
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    with LibraryService.open(settings_from(args)) as service:
        stored = service.stored_captions(model=args.caption_model, prompt=args.prompt)
    if args.json:
        json.dump([caption_document(path, caption) for path, caption in stored], sys.stdout)
        sys.stdout.write("\n")
    else:
        for path, caption in stored:
            print(caption_line(path, caption))
    if not stored:
        print(f"vsearch: {_nothing_stored(args)}", file=sys.stderr)
    return 0


def caption_document(path: Path, caption: CaptionResult) -> dict:
    """One caption as `captions export --json` prints it (the shape is part of the CLI's contract)."""
    return {
        "path": os.fsdecode(path),
        "model": caption.model,
        "prompt": caption.prompt,
        "text": caption.text,
        "stopped": caption.stopped,
        "stop_reason": caption.stop_reason,
        "tokens": caption.token_count,
        "created_at": _iso(caption.stored_at),
    }


def caption_line(path: Path, caption: CaptionResult) -> str:
    fields = [os.fsencode(path).decode("utf-8", errors="replace"), caption.model, caption.prompt,
              "stopped" if caption.stopped else "finished", _iso(caption.stored_at), caption.text]
    return "\t".join(" ".join(field.replace("\t", " ").splitlines()) for field in fields)


def _iso(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _nothing_stored(args: argparse.Namespace) -> str:
    wanted = " and ".join(f"{what} {value!r}" for what, value in (("model", args.caption_model),
                                                                   ("prompt", args.prompt)) if value is not None)
    if wanted:
        return f"no stored captions with {wanted} (`vsearch captions export` lists them all)"
    return ("no captions are stored in this library yet; `vsearch caption PHOTO` stores one for a photo in a watched "
            "folder")
