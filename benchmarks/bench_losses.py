"""Sigmoid (SigLIP) vs softmax (CLIP) loss on the synthetic shapes task: same model, data, steps and seeds.

For each learning rate, seed and loss, a tiny SigLIP is trained from scratch with our trainer and evaluated on the
held-out split (colour-shape pairs never seen in training). Printed per run: text->image and image->text Recall@1,
final loss, loss spikes, and whether training diverged (NaN) or got stuck (no progress from the initial loss, or
Recall@1 at chance level).
The summary puts sigmoid beside the softmax baseline from the same run and gives the ratio.

A loss spike is a step whose loss exceeds the mean of the previous 20 steps by more than 3 of their standard
deviations and by more than 10 %, after warm-up: the two losses have different scales, so spikes are relative.

    python benchmarks/bench_losses.py                  # 3 seeds x lr {2e-3, 1e-2}, ~1,150 steps each (slow on CPU)
    python benchmarks/bench_losses.py --quick          # smoke run: tiny data, a few steps
    python benchmarks/bench_losses.py --device cuda    # same numbers, faster, where a GPU exists
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vsearch_app.core.engine.embedder import Embedder  # noqa: E402
from vsearch_app.training.data import load_dataset  # noqa: E402
from vsearch_app.training.evaluate import evaluate_embedder  # noqa: E402
from vsearch_app.training.shapes import ShapesRecipe, write_shapes_dataset  # noqa: E402
from vsearch_app.training.trainer import TrainConfig, TrainingDiverged, train_model  # noqa: E402


def count_spikes(losses: list[float], skip: int, window: int = 20) -> int:
    spikes = 0
    for i in range(max(skip, window), len(losses)):
        previous = losses[i - window:i]
        mean = statistics.fmean(previous)
        spread = statistics.pstdev(previous)
        if losses[i] > mean + 3 * spread and losses[i] > 1.1 * mean:
            spikes += 1
    return spikes


def run_one(data: Path, work: Path, loss: str, lr: float, seed: int, args) -> dict:
    out = work / f"{loss}-{lr:g}-{seed}"
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=lr, weight_decay=0.05, loss=loss,
                         seed=seed, from_scratch=True, save_every_s=1e9)
    started = time.monotonic()
    row = {"loss": loss, "lr": lr, "seed": seed}
    try:
        result = train_model(data / "model", load_dataset(data / "train"), out, config, device=args.device)
    except TrainingDiverged as exc:
        return {**row, "status": "diverged", "t2i": 0.0, "i2t": 0.0, "final": float("nan"), "spikes": 0,
                "seconds": time.monotonic() - started, "note": str(exc)}
    losses = list(result.losses)
    head = statistics.fmean(losses[:10])
    tail = statistics.fmean(losses[-20:])
    embedder = Embedder.load(out, device=args.device, dtype="float32")
    report = evaluate_embedder(embedder, load_dataset(data / "test"))
    # "stuck": the loss never left its starting plateau (it fell by less than 10 %), or retrieval stayed at chance
    # (Recall@1 within 3x of 1/n_images: with lr too high the sigmoid loss can settle where every pair is "no").
    chance = 3.0 / report.n_images
    status = "stuck" if tail > 0.9 * head or report.text_to_image.recall[1] <= chance else "ok"
    return {**row, "status": status, "t2i": report.text_to_image.recall[1], "i2t": report.image_to_text.recall[1],
            "final": tail, "spikes": count_spikes(losses, skip=min(100, len(losses) // 10)),
            "seconds": time.monotonic() - started, "steps": result.steps}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (tiny data, few steps, one seed)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lrs", default="2e-3,1e-2", help="comma-separated peak learning rates")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-train", type=int, default=6000)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.lrs, args.epochs, args.batch_size, args.n_train, args.n_test = 1, "2e-3", 2, 16, 64, 12
    logging.basicConfig(level=logging.WARNING)
    lrs = [float(x) for x in args.lrs.split(",")]

    with tempfile.TemporaryDirectory(prefix="bench-losses-") as tmp:
        work = Path(tmp)
        data = write_shapes_dataset(work / "shapes", ShapesRecipe(n_train=args.n_train, n_test=args.n_test))
        steps = (args.n_train // min(args.batch_size, args.n_train)) * args.epochs
        print(f"shapes task: {args.n_train} train images, {args.n_test} held-out test scenes; {steps} steps of "
              f"batch {args.batch_size}; seeds 0..{args.seeds - 1}; device {args.device}")
        print(f"{'lr':>8} {'loss':>8} {'seed':>4} {'t2i R@1':>8} {'i2t R@1':>8} {'final':>7} {'spikes':>6} "
              f"{'status':>8} {'s':>6}")
        rows = []
        for lr in lrs:
            for seed in range(args.seeds):
                for loss in ("sigmoid", "softmax"):
                    row = run_one(data, work, loss, lr, seed, args)
                    rows.append(row)
                    print(f"{lr:>8g} {loss:>8} {seed:>4} {row['t2i']:>8.3f} {row['i2t']:>8.3f} {row['final']:>7.3f} "
                          f"{row['spikes']:>6} {row['status']:>8} {row['seconds']:>6.1f}", flush=True)

    print("\nsummary (mean +- sd over seeds; the softmax loss is the baseline)")
    for lr in lrs:
        stats = {}
        for loss in ("sigmoid", "softmax"):
            group = [r for r in rows if r["lr"] == lr and r["loss"] == loss]
            t2i = [r["t2i"] for r in group]
            failed = sum(r["status"] != "ok" for r in group)
            stats[loss] = statistics.fmean(t2i)
            sd = statistics.pstdev(t2i) if len(t2i) > 1 else 0.0
            print(f"  lr {lr:g} {loss:>8}: t2i R@1 {stats[loss]:.3f} +- {sd:.3f}; spikes "
                  f"{sum(r['spikes'] for r in group)}; diverged/stuck runs {failed}/{len(group)}")
        ratio = stats["sigmoid"] / stats["softmax"] if stats["softmax"] > 0 else float("inf")
        print(f"  lr {lr:g} sigmoid / softmax t2i R@1 ratio: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
