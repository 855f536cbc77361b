"""Single-shape queries on a model trained on the synthetic shapes task: does "a red circle" find red circles?

The eval split (`vsearch eval`) asks whether a full caption finds its own scene; a user types short queries. This
benchmark renders every colour x shape pair alone on the noisy background (4 images per pair by default: both sizes,
all three positions across the set; seeds never used by a training split), embeds them and the 24 queries
"a <colour> <shape>" with our Embedder (float32, CPU), and prints per query group (all, pairs seen in training,
held-out pairs never seen in training):

- top-1: the best-ranked image has the query's colour and shape;
- all-in-top-k: all k images of the pair rank above every other image;
- MRR: mean reciprocal rank of the pair's best-ranked image;
- diagnostics: how often the top image has the right colour, and the right shape;
- the good-match mark (core/library/good_match.py) with the rendered images as the library: how many images it
  marks, its precision (marked images of the query's colour and shape) and recall, at the app's factor and others.

Ties count against the model. The baseline is chance (a uniformly random ranking), computed exactly for the same
number of images, and the ratio is ours / chance.

    python benchmarks/bench_shape_queries.py --model shapes-run          # 96 images
    python benchmarks/bench_shape_queries.py --quick --model shapes-run  # 48 images (2 per pair)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vsearch_app.core.engine.embedder import Embedder  # noqa: E402
from vsearch_app.core.library.good_match import MAD_FACTOR, good_match_cut  # noqa: E402
from vsearch_app.training.shapes import (  # noqa: E402
    HELD_OUT_PAIRS,
    QUERY_VARIANTS,
    QueryScores,
    chance_scores,
    score_shape_queries,
    single_shape_query_set,
)


def summarise(scores: QueryScores) -> dict[str, float | int]:
    return {
        "queries": len(scores.top1),
        "top1": int(scores.top1.sum()),
        "all_in_top": int(scores.all_in_top.sum()),
        "mrr": float(scores.reciprocal_rank.mean()),
        "top1_colour": int(scores.top1_colour.sum()),
        "top1_shape": int(scores.top1_shape.sum()),
    }


def measure(model_dir: Path, variants: int, seed: int) -> dict:
    embedder = Embedder.load(model_dir, device="cpu", dtype="float32")
    try:
        query_set = single_shape_query_set(embedder.transform.size[0], variants=variants, seed=seed)
        images = embedder.embed_images(list(query_set.images))
        if images.failures:
            raise RuntimeError(f"images failed to embed: {images.failures}")
        texts = embedder.embed_texts(list(query_set.queries))
    finally:
        embedder.close()
    scores = score_shape_queries(texts @ images.vectors.T, query_set.query_pairs, query_set.image_pairs)
    good = [good_match_precision(texts, images.vectors, query_set.query_pairs, query_set.image_pairs, factor)
            for factor in GOOD_FACTORS]
    held_out = np.array([pair in HELD_OUT_PAIRS for pair in query_set.query_pairs])
    per_query = [
        {"query": query, "held_out": bool(held), "top1": bool(hit), "reciprocal_rank": float(rr)}
        for query, held, hit, rr in zip(query_set.queries, held_out, scores.top1, scores.reciprocal_rank,
                                        strict=True)
    ]
    return {
        "model": str(model_dir),
        "n_images": len(query_set.images),
        "images_per_query": variants,
        "chance": chance_scores(len(query_set.images), variants),
        "groups": {
            "all": summarise(scores),
            "seen": summarise(scores.subset(~held_out)),
            "held_out": summarise(scores.subset(held_out)),
        },
        "per_query": per_query,
        "good": good,
    }


GOOD_FACTORS = (2.0, 3.0, MAD_FACTOR, 5.0, 6.0)  # the app's factor among others, to show what it trades


def good_match_precision(texts: np.ndarray, images: np.ndarray, query_pairs, image_pairs,
                         factor: float = MAD_FACTOR) -> dict:
    """The good-match mark (core/library/good_match.py) over the rendered images as the library: per query, the
    images scoring at least the cut are marked. precision = marked images of the query's colour and shape / marked;
    colour precision = marked of its colour / marked; recall = the pair's images marked / the pair's images."""
    marked = right = right_colour = pair_images = pair_marked = queries_marking = 0
    for vector, pair in zip(texts, query_pairs, strict=True):
        cut = good_match_cut(vector, images, factor)
        scores = images @ (vector / np.linalg.norm(vector))
        chosen = [i for i, score in enumerate(scores) if cut is not None and score >= cut]
        marked += len(chosen)
        queries_marking += bool(chosen)
        right += sum(image_pairs[i] == pair for i in chosen)
        right_colour += sum(image_pairs[i][0] == pair[0] for i in chosen)
        pair_images += sum(p == pair for p in image_pairs)
        pair_marked += sum(image_pairs[i] == pair for i in chosen)
    return {"factor": factor, "marked": marked, "queries_marking": queries_marking,
            "precision": right / marked if marked else float("nan"),
            "colour_precision": right_colour / marked if marked else float("nan"),
            "recall": pair_marked / pair_images}


def print_good(result: dict) -> None:
    n = result["n_images"]
    k = result["images_per_query"]
    print(f"\ngood-match mark (median + f x 1.4826 MAD of the query's scores over the {n} images; "
          f"app: f={MAD_FACTOR:g}):")
    print(f"{'f':>4} {'marked':>7} {'queries':>8} {'precision':>10} {'colour':>7} {'recall':>7}")
    for row in result["good"]:
        print(f"{row['factor']:>4g} {row['marked']:>7} {row['queries_marking']:>8} {row['precision']:>10.3f} "
              f"{row['colour_precision']:>7.3f} {row['recall']:>7.3f}")
    app = next(row for row in result["good"] if row["factor"] == MAD_FACTOR)
    chance = k / n
    print(f"precision at f={MAD_FACTOR:g}: {app['precision']:.3f}; marking at random: {chance:.3f} "
          f"(the pair's {k} of {n} images); ratio {app['precision'] / chance:.1f}x")


def _ratio(ours: float, chance: float) -> str:
    ratio = ours / chance
    if ratio == 0:
        return "0x"
    return f"{ratio:.3g}x" if ratio < 1e4 else f"{ratio:.2e}x"


def print_report(result: dict) -> None:
    chance, k = result["chance"], result["images_per_query"]
    print(f"model {result['model']}: {result['n_images']} single-shape images, {k} per colour-shape pair; "
          f"queries 'a <colour> <shape>'")
    print(f"{'group':<9} {'queries':>7} {'top-1':>7} {'all-in-top-' + str(k):>14} {'MRR':>6}   "
          f"{'top-1 colour':>12} {'top-1 shape':>11}")
    for name, group in result["groups"].items():
        n = group["queries"]
        print(f"{name:<9} {n:>7} {group['top1']:>4}/{n:<2} {group['all_in_top']:>11}/{n:<2} {group['mrr']:>6.3f}   "
              f"{group['top1_colour']:>9}/{n:<2} {group['top1_shape']:>8}/{n:<2}")
    missed = [q["query"] + (" (held out)" if q["held_out"] else "") for q in result["per_query"] if not q["top1"]]
    print(f"wrong at top-1: {', '.join(missed) if missed else 'none'}")
    overall = result["groups"]["all"]
    n = overall["queries"]
    print(f"\nchance (random ranking, exact): top-1 {chance['top1']:.4f}, all-in-top-{k} {chance['all_in_top']:.2e}, "
          f"MRR {chance['mrr']:.4f}")
    print(f"ours / chance: top-1 {_ratio(overall['top1'] / n, chance['top1'])}, "
          f"all-in-top-{k} {_ratio(overall['all_in_top'] / n, chance['all_in_top'])}, "
          f"MRR {_ratio(overall['mrr'], chance['mrr'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="a trained shapes checkpoint folder")
    parser.add_argument("--quick", action="store_true", help="2 images per pair instead of 4")
    parser.add_argument("--variants", type=int, default=QUERY_VARIANTS, help="images per colour-shape pair")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rendered images")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = parser.parse_args()
    if not (args.model / "config.json").is_file():
        print(f"bench_shape_queries: {args.model} is not a checkpoint folder (no config.json)", file=sys.stderr)
        return 2
    variants = 2 if args.quick else args.variants
    if variants < 1:
        print("bench_shape_queries: --variants must be at least 1", file=sys.stderr)
        return 2
    result = measure(args.model, variants, args.seed)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print_report(result)
        print_good(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
