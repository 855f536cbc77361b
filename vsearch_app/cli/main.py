"""`vsearch` entry point: one argparse tree, one module per command group.

Each command module exposes ``register(subparsers, common)``; ``common`` is a parent parser holding the options every
command takes (``--data-dir``, ``-v``). A handler returns the process exit code. User errors (VSearchError) print
their message on stderr and exit 2; Ctrl-C exits 130; anything else is a bug and keeps its traceback.

With no command, `vsearch` (and `python -m vsearch_app`) opens the desktop app, vsearch_app.gui.app.run(); the
options before no command (--data-dir, --model, --caption-model, --device, --dtype) override the saved settings for
that run, so a user, a test or the installer can point the app at a library and a local model.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import sys

from vsearch_app import __version__
from vsearch_app.cli.options import DEVICE_CHOICES, DTYPE_CHOICES, error_message
from vsearch_app.errors import VSearchError
from vsearch_app.log import setup_logging

# Command groups, in the order `vsearch --help` lists them.
COMMAND_MODULES = [
    "vsearch_app.cli.embed_cmd",
    "vsearch_app.cli.models_cmd",
    "vsearch_app.cli.caption_cmd",
    "vsearch_app.cli.captions_cmd",
    "vsearch_app.cli.library_cmd",
    "vsearch_app.cli.duplicates_cmd",
    "vsearch_app.cli.config_cmd",
    "vsearch_app.cli.train_cmd",
    "vsearch_app.cli.selftest_cmd",
]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

# Options only the desktop app takes, given before no command: flag -> where they land in the namespace. Their own
# dests keep them apart from the commands' --model/--device/--dtype, whose defaults would otherwise overwrite them.
APP_OPTIONS = {"--model": "app_model", "--caption-model": "app_caption_model", "--device": "app_device",
               "--dtype": "app_dtype"}


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
    app = parser.add_argument_group("desktop app (no command)", "override the saved settings for this run")
    app.add_argument("--model", dest=APP_OPTIONS["--model"], metavar="ID|DIR", default=argparse.SUPPRESS,
                     help="search model: a Hugging Face id in the hub cache or a local checkpoint folder")
    app.add_argument("--caption-model", dest=APP_OPTIONS["--caption-model"], metavar="ID|DIR",
                     default=argparse.SUPPRESS, help="caption model, as --model")
    app.add_argument("--device", dest=APP_OPTIONS["--device"], choices=DEVICE_CHOICES, default=argparse.SUPPRESS,
                     help="where the models run")
    app.add_argument("--dtype", dest=APP_OPTIONS["--dtype"], choices=DTYPE_CHOICES, default=argparse.SUPPRESS,
                     help="number format of the models")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers, common)
    return parser


def _launch_desktop_app(args: argparse.Namespace) -> int:
    try:
        app_module = importlib.import_module("vsearch_app.gui.app")
    except ModuleNotFoundError as exc:
        if exc.name in ("vsearch_app.gui.app", "vsearch_app.gui"):
            print("The desktop app is not part of this build yet; run `vsearch --help` for the commands.",
                  file=sys.stderr)
            return EXIT_USER_ERROR
        if (exc.name or "").split(".")[0] in ("PySide6", "shiboken6"):
            print(f"The desktop app needs PySide6, which is missing ({exc}); install PySide6-Essentials, or run "
                  "`vsearch --help` for the commands.", file=sys.stderr)
            return EXIT_USER_ERROR
        raise  # anything else missing inside the app is a bug, not the user's doing
    return int(app_module.run(
        data_dir=getattr(args, "data_dir", None),
        model=getattr(args, APP_OPTIONS["--model"], None),
        caption_model=getattr(args, APP_OPTIONS["--caption-model"], None),
        device=getattr(args, APP_OPTIONS["--device"], None),
        dtype=getattr(args, APP_OPTIONS["--dtype"], None),
    ) or 0)


def _refuse_app_options_with_a_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    given = [flag for flag, dest in APP_OPTIONS.items() if hasattr(args, dest)]
    if given and args.command is not None:
        parser.error(f"{given[0]} before a command applies only to the desktop app; put it after the command "
                     f"(vsearch {args.command} {given[0]} ...) if the command takes it")


def main(argv: list[str] | None = None) -> int:
    # In a frozen build (the installers) the decoder worker processes start as this executable: freeze_support runs
    # the worker and exits instead of parsing the worker's arguments as a command. A no-op otherwise.
    multiprocessing.freeze_support()
    parser = build_parser()
    args = parser.parse_args(argv)
    _refuse_app_options_with_a_command(parser, args)
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
