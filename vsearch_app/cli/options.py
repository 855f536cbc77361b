"""Options and output formats several commands share, so they read the same everywhere."""

from __future__ import annotations

import argparse

from vsearch_app.settings import AppSettings

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")


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
