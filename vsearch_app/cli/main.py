"""`vsearch` entry point: one argparse tree, one module per command group.

Each command module exposes ``register(subparsers, common)``; ``common`` is a parent parser holding the options every
command takes (``--data-dir``, ``-v``). A handler returns the process exit code. User errors (VSearchError) print
their message on stderr and exit 2; Ctrl-C exits 130; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from vsearch_app import __version__
from vsearch_app.cli.options import error_message
from vsearch_app.errors import VSearchError
from vsearch_app.log import setup_logging

# Command groups, in the order `vsearch --help` lists them.
COMMAND_MODULES = [
    "vsearch_app.cli.embed_cmd",
    "vsearch_app.cli.models_cmd",
    "vsearch_app.cli.caption_cmd",
    "vsearch_app.cli.library_cmd",
    "vsearch_app.cli.config_cmd",
    "vsearch_app.cli.train_cmd",
]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    # The common options are accepted before and after the command. Their default is SUPPRESS so that a
    # subcommand's parser, which parses after the top-level one, cannot overwrite a value given before the command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help="where VSearch keeps its catalog and index "
                        "(default: VSEARCH_DATA_DIR, then the platform's user data folder)")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log debug messages to stderr")
    parser = argparse.ArgumentParser(
        prog="vsearch",
        description="Find your photos by meaning, entirely on your own machine.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"vsearch {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers, common)
    return parser


def _launch_desktop_app(args: argparse.Namespace) -> int:
    try:
        app_module = importlib.import_module("vsearch_app.gui.app")
    except ModuleNotFoundError:
        print("The desktop app is not part of this build yet; run `vsearch --help` for the commands.", file=sys.stderr)
        return EXIT_USER_ERROR
    return app_module.run(data_dir=getattr(args, "data_dir", None))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "verbose", False))
    handler = getattr(args, "handler", None)
    try:
        if handler is None:
            return _launch_desktop_app(args)
        return int(handler(args) or 0)
    except VSearchError as exc:
        print(f"vsearch: {error_message(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("vsearch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `vsearch search ... | head` closes the pipe early; that is not an error.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
