"""`vsearch embed`: print one L2-normalised vector per --image/--text, in the order given."""

from __future__ import annotations

import argparse
import json
import sys

from vsearch_app.cli.options import add_model_options, settings_from
from vsearch_app.core import service


class _AppendInput(argparse.Action):
    """Keeps --image and --text in one list, in command-line order."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, "inputs", None) or [])
        items.append((self.const, values))
        namespace.inputs = items


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "embed", parents=[common], help="print embedding vectors of images and texts",
        description="Print one L2-normalised vector per input, in the order given.",
    )
    add_model_options(parser)
    parser.add_argument("--image", action=_AppendInput, const="image", dest="inputs", metavar="PATH")
    parser.add_argument("--text", action=_AppendInput, const="text", dest="inputs", metavar="TEXT")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(handler=run, inputs=None)


def run(args: argparse.Namespace) -> int:
    if not args.inputs:
        print("vsearch embed: give at least one --image PATH or --text TEXT", file=sys.stderr)
        return 2
    report = service.embed_inputs(settings_from(args), args.inputs)
    for path, reason in report.failures:
        print(f"vsearch: cannot read image {path}: {reason}", file=sys.stderr)
    if args.json:
        document = {
            "model": report.model,
            "dim": report.dim,
            "items": [{"kind": it.kind, "input": it.input, "vector": [float(x) for x in it.vector]}
                      for it in report.items],
        }
        json.dump(document, sys.stdout)
        sys.stdout.write("\n")
    else:
        for item in report.items:
            print(" ".join(f"{x:.6g}" for x in item.vector))
    return 1 if report.failures else 0
