"""`vsearch models list|download`: what is in the hub cache, and fetching what is not."""

from __future__ import annotations

import argparse
import sys

from vsearch_app.cli.options import format_bytes
from vsearch_app.core import service
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


def run_download(args: argparse.Namespace) -> int:
    settings = AppSettings.resolve(getattr(args, "data_dir", None))
    path = service.download_model(settings, args.model_id, token=args.token)
    print(f"{args.model_id} is ready in {path}")
    return 0
