"""`vsearch self-test [--screenshot DIR] [--keep] [--timeout S]`: open the real desktop app on a throwaway library
(a tiny random model and generated photos in a temporary folder), drive it like a user and report each step.

The work is in vsearch_app.gui.selftest; this module only parses the options. The gui is imported through
importlib when the command runs (as cli.main does for the app), so `vsearch --help` stays quick and a build without
PySide6 still runs every other command. The tiny model comes from training.api, which the cli may use.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from vsearch_app.errors import InvalidArgumentError, VSearchError

DEFAULT_TIMEOUT_S = 120.0


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "self-test", help="check that the desktop app works on this machine (no network, no model needed)",
        description="Opens the desktop app's window (offscreen when there is no display) on a temporary library "
                    "with a tiny model it builds and generated photos; adds the folder, waits for indexing, runs "
                    "a text query, drops a photo and uses Find Similar. Prints one line per step; exits 0 only "
                    "when every step worked. Your own library and settings are not touched.",
    )
    parser.add_argument("--screenshot", metavar="DIR", type=Path,
                        help="save a PNG of the window at each step into DIR")
    parser.add_argument("--keep", action="store_true", help="keep the temporary library (its path is printed)")
    parser.add_argument("--timeout", metavar="S", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds each step may wait for its result (default {DEFAULT_TIMEOUT_S:.0f})")
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log debug messages to stderr")
    parser.set_defaults(handler=run_self_test)


def run_self_test(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise InvalidArgumentError("--timeout must be a positive number of seconds")
    try:
        selftest = importlib.import_module("vsearch_app.gui.selftest")
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in ("PySide6", "shiboken6"):
            raise VSearchError(f"the self-test opens the desktop app, which needs PySide6 ({exc})") from exc
        raise
    from vsearch_app.training.api import make_tiny_model

    return selftest.run_self_test(make_tiny_model, screenshot_dir=args.screenshot, keep=args.keep,
                                  timeout_s=args.timeout, out=_print_now)


def _print_now(line: str) -> None:
    print(line, flush=True)  # one line per step as it ends, also when stdout is a pipe (the installers' CI)
