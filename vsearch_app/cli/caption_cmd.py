"""`vsearch caption IMAGE`: caption a photo (or answer a prompt about it) with PaliGemma, streaming the text.

It runs through the library session (core.service.caption -> LibraryService.caption), so a photo in a watched folder
gets its caption stored in the library, as the desktop app does; any other photo is captioned and nothing is kept.
"""

from __future__ import annotations

import argparse
import json
import sys

from vsearch_app.cli.options import DEVICE_CHOICES, DTYPE_CHOICES, settings_from
from vsearch_app.core import service
from vsearch_app.core.types import CaptionSettings
from vsearch_app.settings import DEFAULT_CAPTION_MODEL


def register(subparsers, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "caption", parents=[common], help="describe a photo in words (PaliGemma)",
        description="Generate a caption for IMAGE, or answer a prompt about it, with a PaliGemma model. Prompts: "
                    "'caption en', 'describe en', 'question: what is on the table?' (mix checkpoints), or the start "
                    "of a sentence such as 'this building is ' (pt checkpoints).",
    )
    parser.add_argument("image", metavar="IMAGE", help="the photo to describe")
    parser.add_argument("--caption-model", dest="caption_model", metavar="ID|DIR",
                        help="PaliGemma model id (from the hub cache) or a local folder "
                             f"(default {DEFAULT_CAPTION_MODEL})")
    parser.add_argument("--prompt", default="caption en", help="what to ask (default: 'caption en')")
    parser.add_argument("--max-tokens", type=int, default=100, metavar="N", help="longest answer (default 100)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--greedy", dest="sample", action="store_false", help="most likely words (the default)")
    mode.add_argument("--sample", dest="sample", action="store_true",
                      help="sample with temperature and top-p (more varied answers)")
    parser.add_argument("--temperature", type=float, default=0.8, metavar="T", help="sampling temperature (0.8)")
    parser.add_argument("--top-p", dest="top_p", type=float, default=0.9, metavar="P", help="nucleus size (0.9)")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="make sampling repeatable")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default=None, help="where the model runs (default auto)")
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, default=None,
                        help="number format (default auto: bfloat16 on CPUs that support it, float16 on GPUs)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document at the end instead of streaming the text")
    parser.set_defaults(handler=run, sample=False)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, caption_model=args.caption_model)
    caption_settings = CaptionSettings(prompt=args.prompt, max_tokens=args.max_tokens, sample=args.sample,
                                       temperature=args.temperature, top_p=args.top_p, seed=args.seed)

    def stream(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    result = service.caption(settings, args.image, caption_settings, on_token=None if args.json else stream)
    if args.json:
        json.dump({
            "text": result.text,
            "token_ids": result.token_ids,
            "prompt": result.prompt,
            "prefill_s": round(result.prefill_s, 4),
            "decode_tokens_per_s": round(result.decode_tokens_per_s, 3),
            "stop_reason": result.stop_reason,
            "model": result.model,
        }, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
