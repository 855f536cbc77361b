"""`vsearch config show|set|unset`: the library's own settings: the search model it remembers, and the caption weight.

The model a library was indexed with is remembered by `vsearch index`; `config set model` changes it by hand. Per
command, `--model` or the VSEARCH_MODEL variable still win over it. `caption-weight` is how much a stored caption with
a query's words raises its photo in search (0 is off); `vsearch search --caption-weight` overrides it for one search.
"""

from __future__ import annotations

import argparse
import json
import sys

from vsearch_app.cli.options import settings_from
from vsearch_app.core.service import DEFAULT_CAPTION_WEIGHT, LibraryService
from vsearch_app.errors import InvalidArgumentError
from vsearch_app.settings import DEFAULT_MODEL, MODEL_ENV

MODEL, CAPTION_WEIGHT = "model", "caption-weight"
KEYS = (MODEL, CAPTION_WEIGHT)


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "config", help="show or change the library's settings (its search model)",
        description="Settings stored with the library in its data folder. `model` is the search model used when "
                    f"neither --model nor {MODEL_ENV} is given; `vsearch index` remembers the model it ran with.",
    )
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    show = actions.add_parser("show", parents=[common], help="print the settings and where each value comes from")
    show.add_argument("--json", action="store_true", help="print one JSON document")
    show.set_defaults(handler=run_show)
    setter = actions.add_parser("set", parents=[common],
                                help="change a setting, e.g. `config set model DIR`, `config set caption-weight 2`")
    setter.add_argument("key", choices=KEYS)
    setter.add_argument("value", metavar="VALUE",
                        help="model: a Hugging Face model id or a local checkpoint folder; caption-weight: a number")
    setter.set_defaults(handler=run_set)
    unset = actions.add_parser("unset", parents=[common], help="forget a setting (back to the default)")
    unset.add_argument("key", choices=KEYS)
    unset.set_defaults(handler=run_unset)


def run_show(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    with LibraryService.open(settings) as service:
        remembered = service.remembered_model()
        in_use = service.model_choice
        weight = service.caption_weight()
        weight_stored = service.caption_weight_is_set()
    source = (f"{MODEL_ENV}" if settings.model else "remembered by this library" if remembered else "the default")
    weight_source = "set for this library" if weight_stored else "the default"
    if args.json:
        json.dump({"model": {"value": in_use, "source": source, "remembered": remembered, "default": DEFAULT_MODEL},
                   "caption_weight": {"value": weight, "source": weight_source, "default": DEFAULT_CAPTION_WEIGHT}},
                  sys.stdout)
        sys.stdout.write("\n")
        return 0
    print(f"model = {in_use}  ({source})")
    print(f"caption-weight = {weight:g}  ({weight_source}{'; 0 is off' if weight else ': caption matching is off'})")
    return 0


def run_set(args: argparse.Namespace) -> int:
    with LibraryService.open(settings_from(args)) as service:
        if args.key == CAPTION_WEIGHT:
            try:
                weight = service.set_caption_weight(_number(args.value))
            except InvalidArgumentError as exc:  # said without the flag of `search`: the value came from here
                raise InvalidArgumentError(str(exc)) from None
            print(f"caption-weight = {weight:g}; searches use it unless --caption-weight says otherwise"
                  + ("" if weight else " (0: stored captions do not change the ranking)"))
            return 0
        stored = service.set_model(args.value)
    print(f"model = {stored}; searches and `vsearch index` use it unless --model or {MODEL_ENV} says otherwise")
    return 0


def run_unset(args: argparse.Namespace) -> int:
    with LibraryService.open(settings_from(args)) as service:
        if args.key == CAPTION_WEIGHT:
            weight = service.set_caption_weight(None)
            print(f"caption-weight is back to the default, {weight:g}")
            return 0
        service.set_model(None)
    print(f"model is back to the default, {DEFAULT_MODEL}")
    return 0


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidArgumentError(f"the caption weight is a number from 0 (off) to 10, not {text!r}") from None
