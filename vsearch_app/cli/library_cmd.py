"""`vsearch folders|index|search|status`: the photo library from the command line.

Output rules: progress goes to stderr, results to stdout. `vsearch search` prints `score  path` lines on a terminal
(a hit that its stored caption raised ends with `  (caption: the caption)`, shortened);
when stdout is not a terminal (a pipe or a file) it prints only the paths, one per line, as raw file-name bytes, so
`vsearch search "red car" | xargs -d '\\n' open` works even for names that are not valid UTF-8. `--print0` ends
each path with a NUL byte instead (terminal or not), for names that contain a newline: `... --print0 | xargs -0`.
`--json` prints one JSON document instead, in every case.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from vsearch_app.cli.filter_options import add_filter_options, asks_for_a_list, filters_from, sort_from
from vsearch_app.cli.options import add_model_options, format_bytes, settings_from
from vsearch_app.core.service import LibraryService
from vsearch_app.core.types import IndexProgress, IndexReport, LibraryStatus
from vsearch_app.errors import NothingToSearchError, VSearchError

EXIT_INTERRUPTED = 130


def register(subparsers, common: argparse.ArgumentParser) -> None:
    # The common options sit on the actions (`vsearch folders add PATH --data-dir D`): argparse lets a nested
    # parser's defaults overwrite what an outer one parsed.
    folders = subparsers.add_parser("folders", help="add, remove or list watched photo folders",
                                    description="Manage the folders VSearch indexes and watches.")
    actions = folders.add_subparsers(dest="folders_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", parents=[common], help="watch a folder (and everything below it)")
    add_model_options(add)
    add.add_argument("path", metavar="PATH")
    add.set_defaults(handler=run_folders_add)
    remove = actions.add_parser("remove", parents=[common],
                                help="stop watching a folder and forget its photos (your files are not touched)")
    add_model_options(remove)
    remove.add_argument("path", metavar="PATH")
    remove.set_defaults(handler=run_folders_remove)
    listing = actions.add_parser("list", parents=[common], help="list watched folders")
    add_model_options(listing)
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    listing.set_defaults(handler=run_folders_list)

    index = subparsers.add_parser(
        "index", parents=[common], help="bring the search index up to date with the watched folders",
        description="Scan the watched folders and embed new or changed photos, with a progress bar on stderr. "
                    "With --watch, keep watching for changes until Ctrl-C. Ctrl-C stops after the batch in "
                    "flight; everything embedded so far is kept.",
    )
    add_model_options(index)
    index.add_argument("--watch", action="store_true", help="keep the index current until interrupted")
    index.set_defaults(handler=run_index)

    search = subparsers.add_parser(
        "search", parents=[common], help="find photos by text, by example image, or both",
        description='Terms are text or image paths joined by + and -, each with an optional weight, e.g. '
                    '\'"golden retriever" + ./beach.jpg - people + 0.5:"sunset"\'. On a terminal each result '
                    'is printed as "score  path"; piped, only the paths are printed, one per line. Write "dog - cat" '
                    '(or put -- before the query) rather than "dog -cat", which looks like an option.',
    )
    add_model_options(search)
    search.add_argument("query", nargs="*", metavar="QUERY",
                        help="query terms (words are joined with spaces); none, with a filter: list the photos")
    search.add_argument("--limit", type=int, default=20, metavar="N", help="at most N results (default 20)")
    search.add_argument("--threshold", type=float, default=None, metavar="S",
                        help="only results with a score of at least S (cosine similarity, -1..1)")
    search.add_argument("--in", dest="folder", default=None, metavar="FOLDER",
                        help="only photos inside FOLDER (a watched folder or a folder within one)")
    add_filter_options(search)
    search.add_argument("--caption-weight", dest="caption_weight", type=float, default=None, metavar="W",
                        help="how much a stored caption with the query's words raises its photo, for this search "
                             "(0: off; default: the library's, see `vsearch config`)")
    output = search.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true",
                        help='print [{"path": ..., "score": ..., "good": true|false, "taken_at": ..., "camera": ..., '
                             '"caption_matched": ..., "caption": ...}]')
    output.add_argument("--print0", action="store_true",
                        help="print only the paths, each ended by a NUL byte (for xargs -0), even on a terminal")
    search.set_defaults(handler=run_search)

    status = subparsers.add_parser("status", parents=[common], help="folders, photo counts, failures and index")
    add_model_options(status)
    status.add_argument("--json", action="store_true", help="print one JSON document")
    status.set_defaults(handler=run_status)


@contextmanager
def _open(args: argparse.Namespace) -> Iterator[LibraryService]:
    service = LibraryService.open(settings_from(args))
    if service.catalog_notice:  # a damaged catalog was restored or restarted while opening: never silently
        print(f"vsearch: {service.catalog_notice}", file=sys.stderr)
    try:
        yield service
    finally:
        service.close()


# --- folders ------------------------------------------------------------------------------------------------------


def run_folders_add(args: argparse.Namespace) -> int:
    with _open(args) as service:
        folder = service.add_folder(args.path)
    print(f"watching {_show(folder.path)}; run `vsearch index` to index it")
    return 0


def run_folders_remove(args: argparse.Namespace) -> int:
    with _open(args) as service:
        dropped = service.remove_folder(args.path)
    print(f"stopped watching {os.path.abspath(args.path)}; forgot {dropped} photo(s) (your files are untouched)")
    return 0


def run_folders_list(args: argparse.Namespace) -> int:
    with _open(args) as service:
        folders = service.folders()
    if args.json:
        _print_json([{"path": os.fsdecode(f.path), "online": f.online} for f in folders])
        return 0
    for folder in folders:
        print(_show(folder.path) + ("" if folder.online else "  (offline)"))
    return 0


# --- index --------------------------------------------------------------------------------------------------------


class _ProgressBar:
    """One line on stderr, redrawn at most a few times a second (only on a terminal)."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self._last = 0.0
        self._shown = False

    def __call__(self, p: IndexProgress) -> None:
        now = time.monotonic()
        if not self.live or (now - self._last < 0.2 and p.done < p.total):
            return
        self._last = now
        width = 30
        filled = int(width * p.done / p.total) if p.total else width
        eta = f"ETA {_duration(p.eta_s)}" if p.eta_s is not None else ""
        failed = f"  {p.failed} failed" if p.failed else ""
        line = f"[{'#' * filled}{'.' * (width - filled)}] {p.done}/{p.total}  {p.rate:.1f} photos/s  {eta}{failed}"
        self.stream.write("\r" + line.ljust(79))
        self.stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """First Ctrl-C (or SIGTERM) asks for a clean stop after the batch in flight; a second Ctrl-C aborts."""

    def ask_to_stop(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nvsearch: stopping after the current batch (Ctrl-C again to abort)", file=sys.stderr)

    previous = {}
    for name in ("SIGINT", "SIGTERM"):
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, ask_to_stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_index(args: argparse.Namespace) -> int:
    stop = threading.Event()
    bar = _ProgressBar()

    def progress(p: IndexProgress) -> None:
        if p.phase == "reading metadata":  # photos indexed before their metadata was read (nothing is embedded)
            metadata(p)
            return
        if p.phase != "embedding":  # the bar counts photos; scanning, index upkeep and idle are not drawn
            return
        bar(p)
        if p.done == p.total:
            bar.finish()

    def metadata(p: IndexProgress) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\rreading photo metadata: {p.done}/{p.total}".ljust(79))
            if p.done == p.total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    with _open(args) as service, _stop_on_signals(stop):
        if not args.watch and not service.folders():
            raise VSearchError("no photo folders to index yet: add one with `vsearch folders add PATH`")
        before = service.remembered_model()
        if args.watch:
            print("vsearch: watching for changes; press Ctrl-C to stop", file=sys.stderr)
            service.watch(stop, progress)
            bar.finish()
            print("vsearch: stopped watching; everything indexed so far is saved", file=sys.stderr)
            return 0
        report = service.index(progress=progress, cancel=stop)
        bar.finish()
        status = service.status()
        _say_if_model_changed(before, service.remembered_model())
    for line in index_summary(report, status):
        print(f"vsearch: {line}", file=sys.stderr)
    if report.cancelled:
        print("vsearch: interrupted; what was embedded is saved, run `vsearch index` to finish", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def index_summary(report: IndexReport, status: LibraryStatus) -> list[str]:
    """The lines `vsearch index` ends with: what it did, the library's counts, and every watched folder it could
    not reach (checked after the run, so a drive unplugged while indexing is named too)."""
    counts = status.counts
    summary = f"{report.embedded} photo(s) embedded"
    if report.failed:
        summary += f", {report.failed} could not be read (see `vsearch status`)"
    lines = [f"{summary}; {counts['indexed']} indexed, {counts['pending']} pending, {counts['offline']} offline"]
    offline_roots = {os.fspath(root.path) for root in status.roots if not root.online}
    for root in status.roots:
        if not root.online:
            lines.append(f"{_show(root.path)} is offline (not reachable: unplugged, unmounted or moved?); its photos "
                         "are kept, not deleted, and are back in search results when it is")
    for path, reason in report.unreadable:
        if path not in offline_roots:  # said just above
            lines.append(f"skipped {_show(path)}: {reason.lower()} (photos already indexed there are kept)")
    return lines


def _say_if_model_changed(before: str | None, after: str | None) -> None:
    if before and after and before != after:
        print(f"vsearch: this library now searches with {after} (it used {before}; its vectors are kept: "
              f"`vsearch config set model {before}` switches back)", file=sys.stderr)


# --- search -------------------------------------------------------------------------------------------------------


def run_search(args: argparse.Namespace) -> int:
    if not args.query and not asks_for_a_list(args):
        raise VSearchError("nothing to search for: give a query, or a filter (--after, --before, --camera, "
                           "--min-pixels, --orientation, --in) or --sort to list photos", param="query")
    with _open(args) as service:
        try:
            hits = service.search(args.query, limit=args.limit, threshold=args.threshold, folder=args.folder,
                                  filters=filters_from(args), sort=sort_from(args), caption_weight=args.caption_weight)
        except NothingToSearchError as exc:
            raise VSearchError(what_to_do(exc)) from exc
    if args.json:
        _print_json([{"path": os.fsdecode(h.path), "score": round(float(h.score), 6), "good": h.good_match,
                      "taken_at": h.taken_at, "camera": h.camera, "caption_matched": h.caption_matched,
                      "caption": h.caption} for h in hits])
    elif args.print0 or not sys.stdout.isatty():
        # Raw file-name bytes: a name that is not valid UTF-8 (or holds a newline, with --print0) survives the trip.
        end = b"\0" if args.print0 else b"\n"
        out = sys.stdout.buffer
        for hit in hits:
            out.write(os.fsencode(hit.path) + end)
        out.flush()
    else:
        for hit in hits:  # a good match (core/library/good_match.py) is marked with a star after its score
            print(f"{hit.score:.4f}{'*' if hit.good_match else ' '} {_show(hit.path)}"
                  + (_caption_note(hit.caption) if hit.caption_matched else ""))
        if any(hit.good_match for hit in hits):
            print("(* a good match: well above this query's scores for the library as a whole)", file=sys.stderr)
    return 0


CAPTION_NOTE_CHARS = 60


def _caption_note(caption: str) -> str:
    """What a terminal line adds to a hit that its stored caption raised: the caption, shortened."""
    text = " ".join(caption.split())
    if len(text) > CAPTION_NOTE_CHARS:
        text = text[:CAPTION_NOTE_CHARS - 1].rstrip() + "…"
    return f"  (caption: {text})"


def what_to_do(exc: NothingToSearchError) -> str:
    """The engine's reason why nothing can be searched, with the commands that fix it."""
    if exc.reason == "no_folders":
        return "no photo folders yet: add one with `vsearch folders add PATH`, then run `vsearch index`"
    if exc.reason == "no_photos":
        return ("no photos found in the watched folders yet: run `vsearch index` to scan them (`vsearch status` "
                "lists the folders and any photo that could not be read)")
    if exc.reason == "not_indexed":
        return f"{exc.pending} photo(s) are not indexed yet with {exc.model}: run `vsearch index`"
    if exc.reason == "other_model":
        listed = "; ".join(f"{n} with {m}" for m, n in sorted(exc.other_models.items()))
        best = max(exc.other_models, key=exc.other_models.get)
        return (f"no photos indexed with {exc.model}; {listed}: run `vsearch index --model {exc.model}` to index "
                f"them with it, or search with `--model {best}` (`vsearch config set model {best}` makes it the "
                "default)")
    return str(exc)


# --- status -------------------------------------------------------------------------------------------------------


def status_document(status: LibraryStatus) -> dict:
    """The `vsearch status --json` document (its shape is part of the CLI's contract)."""
    return {
        "model": status.model,
        "roots": [{"path": os.fsdecode(r.path), "online": r.online} for r in status.roots],
        "counts": {key: int(status.counts.get(key, 0)) for key in ("indexed", "failed", "offline", "pending")},
        "failed": [{"path": os.fsdecode(f.path), "reason": f.reason} for f in status.failed],
        "index": {"path": os.fsdecode(status.index_path) if status.index_path else None,
                  "bytes": int(status.index_bytes)},
    }


def run_status(args: argparse.Namespace) -> int:
    with _open(args) as service:
        status = service.status()
    if args.json:
        _print_json(status_document(status))
        return 0
    counts = status.counts
    print(f"model:   {status.model}" + (f"  (not usable: {status.model_problem})" if status.model_problem else ""))
    print("folders:" + ("" if status.roots else " none (add one with `vsearch folders add PATH`)"))
    for root in status.roots:
        print(f"  {_show(root.path)}" + ("" if root.online else "  (offline: not reachable now)"))
    print(f"photos:  {counts['indexed']} indexed, {counts['pending']} pending, {counts['failed']} failed, "
          f"{counts['offline']} offline" + ("" if status.model_problem else " (with this model)"))
    for name, count in sorted(status.other_models.items()):
        print(f"         {count} also indexed with {name} (kept; `vsearch config set model {name}` to use it)")
    if status.failed:
        print("failed:")
        for item in status.failed:
            print(f"  {_show(item.path)}: {item.reason}")
    if status.index_path:
        print(f"index:   {_show(status.index_path)} ({format_bytes(status.index_bytes)})")
    elif not status.model_problem:
        print("index:   not built yet for this model (run `vsearch index`)")
    return 0


# --- helpers ------------------------------------------------------------------------------------------------------


def _show(path: os.PathLike[str] | str) -> str:
    """Printable text for a path: bytes that are not valid UTF-8 show as U+FFFD instead of crashing print()."""
    return os.fsencode(path).decode("utf-8", errors="replace")


def _print_json(document: object) -> None:
    json.dump(document, sys.stdout, indent=None)  # ensure_ascii keeps undecodable names as \udcXX escapes
    sys.stdout.write("\n")
