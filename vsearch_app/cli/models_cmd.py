"""`vsearch models list|download`: what is in the hub cache, and fetching what is not."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from vsearch_app.cli.options import format_bytes
from vsearch_app.core import service
from vsearch_app.core.types import DownloadProgress
from vsearch_app.settings import DEFAULT_MODEL, AppSettings


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("models", parents=[common], help="list or download models")
    actions = parser.add_subparsers(dest="models_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[common], help="show the models in the local cache")
    listing.set_defaults(handler=run_list)
    download = actions.add_parser("download", parents=[common], help="fetch a model from huggingface.co")
    download.add_argument("model_id", nargs="?", default=DEFAULT_MODEL, metavar="ID",
                          help=f"Hugging Face model id (default {DEFAULT_MODEL})")
    download.add_argument("--token", help="access token for gated models (default: HF_TOKEN or `hf auth login`)")
    download.set_defaults(handler=run_download)


def run_list(args: argparse.Namespace) -> int:
    settings = AppSettings.resolve(getattr(args, "data_dir", None))
    cached = service.list_models(settings)
    if not cached:
        print(f"No models in {settings.hub_cache_dir}. Get the default one with: vsearch models download",
              file=sys.stderr)
        return 0
    for model in cached:
        print(f"{model.repo_id}\t{model.kind}\t{format_bytes(model.size_bytes)}\t{model.path}")
    return 0


class ProgressLine:
    """One line on a terminal, rewritten in place: "Downloading org/name: 120.5 MB of 812.0 MB (14%), 9.8 MB/s,
    model.safetensors". Nothing is written when the stream is not a terminal (a log file would fill with it)."""

    def __init__(self, repo_id: str, stream: TextIO) -> None:
        self.repo_id = repo_id
        self.stream = stream
        self.enabled = stream.isatty()
        self.started = time.monotonic()
        self.first_done: int | None = None  # bytes already there when it started, which are no part of the speed
        self.width = 0

    def show(self, progress: DownloadProgress) -> None:
        if not self.enabled:
            return
        if self.first_done is None:
            self.first_done = progress.done_bytes
        parts = [f"Downloading {self.repo_id}: {format_bytes(progress.done_bytes)} of "
                 f"{format_bytes(progress.total_bytes)}"]
        if progress.total_bytes:
            parts[0] += f" ({100 * progress.done_bytes // progress.total_bytes}%)"
        elapsed = time.monotonic() - self.started
        if elapsed >= 1 and progress.done_bytes > self.first_done:
            parts.append(f"{format_bytes((progress.done_bytes - self.first_done) / elapsed)}/s")
        if progress.current_file:
            parts.append(progress.current_file)
        text = ", ".join(parts)
        self.stream.write("\r" + text.ljust(self.width))  # pad over a longer previous line
        self.stream.flush()
        self.width = len(text)

    def close(self) -> None:
        if self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


def run_download(args: argparse.Namespace) -> int:
    settings = AppSettings.resolve(getattr(args, "data_dir", None))
    line = ProgressLine(args.model_id, sys.stderr)
    try:
        path = service.download_model(settings, args.model_id, token=args.token,
                                      progress=line.show if line.enabled else None)
    finally:
        line.close()  # so an error message or "interrupted" starts on a line of its own
    print(f"{args.model_id} is ready in {path}")
    return 0
