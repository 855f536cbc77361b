"""`vsearch train`, `vsearch eval` and `vsearch make-shapes`: fine-tune the search model and measure retrieval."""

from __future__ import annotations

import argparse
import json
import sys
import time

from vsearch_app.settings import AppSettings
from vsearch_app.training import api

DATA_HELP = ("a folder with captions.jsonl (one {\"image\": \"rel/path.jpg\", \"captions\": [...]} per line), or a "
             "Karpathy-split JSON file (COCO / Flickr30k dataset_*.json) with --image-root")


def _add_data_options(parser: argparse.ArgumentParser, default_split: str) -> None:
    parser.add_argument("--data", required=True, metavar="DATA", help=DATA_HELP)
    parser.add_argument("--split", default=default_split,
                        help=f"Karpathy JSON only: split(s) to use, comma-separated (default {default_split}; "
                        "e.g. train,restval)")
    parser.add_argument("--image-root", metavar="DIR",
                        help="Karpathy JSON only: folder holding the images (default: the JSON file's folder)")
    parser.add_argument("--on-bad-data", choices=api.BAD_DATA_POLICIES, default="stop",
                        help="what to do with unusable entries (malformed line, empty captions, missing or "
                        "unreadable image): stop (default) lists them all and exits; skip leaves them out, "
                        "reporting each on stderr")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")


def register(subparsers, common: argparse.ArgumentParser) -> None:
    train = subparsers.add_parser(
        "train", parents=[common], help="fine-tune a SigLIP model on captioned images",
        description="Contrastive training (SigLIP sigmoid loss, or CLIP softmax loss) on captioned images. Writes a "
        "Hugging Face SigLIP checkpoint into --out that `--model OUT` loads here and in transformers. A resumable "
        "checkpoint is saved every few minutes and on Ctrl-C; continue with the same command plus --resume.",
    )
    _add_data_options(train, "train")
    train.add_argument("--model", required=True, metavar="ID|DIR",
                       help="starting checkpoint: a hub id in the cache or a local folder. With --from-scratch, a "
                       "folder with config.json, tokenizer and preprocessor_config.json but no weights is enough")
    train.add_argument("--out", required=True, metavar="DIR", help="folder for the trained checkpoint")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default 1e-4 for fine-tuning; "
                       "tiny models from scratch want ~2e-3)")
    train.add_argument("--weight-decay", type=float, default=0.01)
    train.add_argument("--loss", choices=("sigmoid", "softmax"), default="sigmoid")
    train.add_argument("--freeze-vision", action="store_true", help="train only the text tower (and t, b)")
    train.add_argument("--freeze-text", action="store_true", help="train only the image tower (and t, b)")
    train.add_argument("--from-scratch", action="store_true",
                       help="start from random weights of --model's architecture instead of its weights")
    train.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(handler=run_train)

    evaluate = subparsers.add_parser(
        "eval", parents=[common], help="measure image<->text retrieval (Recall@1/5/10, ranks)",
        description="Embed every image and caption of DATA with the model and report Recall@1/5/10 and mean/median "
        "rank, image->text (any of its captions counts) and text->image (its own image). Runs in float32.",
    )
    _add_data_options(evaluate, "test")
    evaluate.add_argument("--model", required=True, metavar="ID|DIR")
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--json", action="store_true", help="print one JSON document")
    evaluate.set_defaults(handler=run_eval)

    shapes = subparsers.add_parser(
        "make-shapes", parents=[common], help="write the synthetic shapes dataset and a tiny model config",
        description="Images of one or two coloured shapes with captions naming them; the test split holds "
        "colour-shape pairs never seen in training. Writes OUT/train, OUT/test and OUT/model (config, tokenizer, "
        "preprocessor for `vsearch train --model OUT/model --from-scratch`).",
    )
    shapes.add_argument("out", metavar="OUT")
    shapes.add_argument("--n-train", type=int, default=6000)
    shapes.add_argument("--n-test", type=int, default=100)
    shapes.add_argument("--image-size", type=int, default=32)
    shapes.add_argument("--seed", type=int, default=0)
    shapes.set_defaults(handler=run_make_shapes)


def _settings(args: argparse.Namespace) -> AppSettings:
    return AppSettings.resolve(getattr(args, "data_dir", None))


def _splits(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _ProgressLine:
    """One self-updating line on stderr (a new line every few seconds when stderr is not a terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, p: api.TrainProgress) -> None:
        now = time.monotonic()
        final = p.step == p.total_steps
        if not final and now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        text = (f"step {p.step}/{p.total_steps}  epoch {p.epoch}  loss {p.loss:.4f}  "
                f"{p.steps_per_s:.2f} step/s  ETA {_duration(p.eta_s)}")
        if self.tty:
            sys.stderr.write("\r" + text.ljust(78) + ("\n" if final else ""))
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


def run_train(args: argparse.Namespace) -> int:
    request = api.TrainRequest(
        data=args.data, model=args.model, out=args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, loss=args.loss, freeze_vision=args.freeze_vision,
        freeze_text=args.freeze_text, from_scratch=args.from_scratch, resume=args.resume, seed=args.seed,
        splits=_splits(args.split), image_root=args.image_root, on_bad_data=args.on_bad_data, device=args.device,
    )
    try:
        result = api.train(_settings(args), request, on_progress=_ProgressLine())
    except KeyboardInterrupt:
        print(f"\nvsearch: interrupted. Once training had started, its state is saved in {args.out}/checkpoint: "
              "continue with the same command plus --resume", file=sys.stderr)
        return 130
    print(f"trained {result.steps} steps in {_duration(result.seconds)}, final loss {result.final_loss:.4f}; "
          f"model written to {result.out_dir}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\rembedding images {done}/{total}" + ("\n" if done == total else ""))

    report = api.evaluate(
        _settings(args), args.data, args.model, splits=_splits(args.split), image_root=args.image_root,
        on_bad_data=args.on_bad_data, batch_size=args.batch_size, device=args.device, on_progress=progress,
    )
    if args.json:
        json.dump(report.to_json(), sys.stdout)
        sys.stdout.write("\n")
        return 0
    print(f"{report.n_images} images, {report.n_texts} captions")
    for name, metrics in (("image->text", report.image_to_text), ("text->image", report.text_to_image)):
        recalls = "  ".join(f"R@{k} {v:.3f}" for k, v in metrics.recall.items())
        print(f"{name:12s} {recalls}  mean rank {metrics.mean_rank:.2f}  median rank {metrics.median_rank:g}")
    return 0


def run_make_shapes(args: argparse.Namespace) -> int:
    out = api.make_shapes(args.out, n_train=args.n_train, n_test=args.n_test, image_size=args.image_size,
                          seed=args.seed)
    print(f"wrote {out}/train ({args.n_train} images), {out}/test ({args.n_test} images, held-out colour-shape "
          f"pairs) and {out}/model (tiny SigLIP config for --from-scratch)")
    return 0
