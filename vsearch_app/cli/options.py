"""Options and output formats several commands share, so they read the same everywhere."""

from __future__ import annotations

import argparse

from vsearch_app.core.types import DEVICE_CHOICES, DTYPE_CHOICES
from vsearch_app.errors import VSearchError
from vsearch_app.settings import AppSettings


def add_model_options(parser: argparse.ArgumentParser, *, model_flag: str = "--model") -> None:
    parser.add_argument(model_flag, dest="model", metavar="ID|DIR",
                        help="Hugging Face model id (from the hub cache) or a local checkpoint folder (default: "
                             "VSEARCH_MODEL, then the library's model, see `vsearch config`)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default=None, help="where the model runs (default auto)")
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, default=None,
                        help="number format (default auto: bfloat16 on CPUs that support it, float16 on GPUs)")


def settings_from(args: argparse.Namespace, **overrides) -> AppSettings:
    return AppSettings.resolve(
        getattr(args, "data_dir", None),
        model=getattr(args, "model", None),
        device=getattr(args, "device", None),
        dtype=getattr(args, "dtype", None),
        **overrides,
    )


def format_bytes(n: float) -> str:
    """A size for people: "512 B", "4.4 KB", "3.1 GB" (decimal units, as file managers show them)."""
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("KB", "MB", "GB"):
        n /= 1000
        if n < 1000:
            return f"{n:.1f} {unit}"
    return f"{n / 1000:.1f} TB"


# How the command line sets each engine parameter an error can name (VSearchError.param). The engine's messages
# never name a flag; the CLI adds it, so the same message reads right in the desktop app.
PARAM_FLAGS = {
    "limit": "--limit",
    "threshold": "--threshold",
    "caption_weight": "--caption-weight",
    "folder": "--in",
    "model": "--model",
    "caption_model": "--caption-model",
    "device": "--device",
    "dtype": "--dtype",
    "data_dir": "--data-dir or VSEARCH_DATA_DIR",
    "inputs": "--image or --text",
    "prompt": "--prompt",
    "max_tokens": "--max-tokens",
    "temperature": "--temperature",
    "top_p": "--top-p",
    "seed": "--seed",
    "taken_after": "--after",
    "taken_before": "--before",
    "camera": "--camera",
    "min_pixels": "--min-pixels",
    "orientation": "--orientation",
    "sort": "--sort",
}


def error_message(exc: VSearchError) -> str:
    """The one line the CLI prints for a user error: the message, then the flag that sets what it is about,
    e.g. "the number of results must be at least 1, got 0 (--limit)"."""
    message = str(exc)
    flag = PARAM_FLAGS.get(exc.param or "")
    if flag is None:
        return message
    if message.endswith("."):
        return f"{message[:-1]} ({flag})."
    return f"{message} ({flag})"
