"""Single-shape queries ("a red circle" over images of one shape each): the image set, the scoring, chance, and the
benchmark script that prints them."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from vsearch_app.training.shapes import (
    COLOURS,
    SHAPES,
    chance_scores,
    score_shape_queries,
    single_shape_query_set,
)

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_shape_queries.py"


def test_query_set_covers_every_pair_size_and_position():
    query_set = single_shape_query_set(32)
    assert len(query_set.queries) == len(COLOURS) * len(SHAPES) == 24
    assert query_set.queries[0] == "a red circle"
    assert len(query_set.images) == 96
    assert Counter(query_set.image_pairs) == {pair: 4 for pair in query_set.query_pairs}
    for pair in query_set.query_pairs:  # both sizes for every pair
        assert {s.shapes[0].size for s in query_set.scenes if (s.shapes[0].colour, s.shapes[0].shape) == pair} == {
            "small", "large"}
    combos = {(s.shapes[0].size, s.shapes[0].position) for s in query_set.scenes}
    assert len(combos) == 6
    assert all(len(s.shapes) == 1 and image.size == (32, 32) for s, image in zip(query_set.scenes,
                                                                                    query_set.images, strict=True))


def test_query_set_is_deterministic_and_seeded():
    a, b = single_shape_query_set(32, variants=2), single_shape_query_set(32, variants=2)
    assert [i.tobytes() for i in a.images] == [i.tobytes() for i in b.images]
    c = single_shape_query_set(32, variants=2, seed=1)
    assert [i.tobytes() for i in a.images] != [i.tobytes() for i in c.images]


def test_scoring_a_perfect_ranking():
    pairs = [("red", "circle"), ("red", "square"), ("blue", "circle")]
    image_pairs = [p for p in pairs for _ in range(2)]
    similarity = np.array([[1.0 if ip == qp else 0.0 for ip in image_pairs] for qp in pairs])
    scores = score_shape_queries(similarity, pairs, image_pairs)
    assert scores.top1.all() and scores.all_in_top.all() and scores.top1_colour.all() and scores.top1_shape.all()
    assert np.allclose(scores.reciprocal_rank, 1.0)


def test_scoring_mistakes_and_ties_count_against_the_model():
    pairs = [("red", "circle"), ("red", "square"), ("blue", "circle")]
    image_pairs = [("red", "circle"), ("red", "circle"), ("red", "square"), ("blue", "circle")]
    similarity = np.array([
        [0.5, 0.9, 0.9, 0.1],  # a red square ties the best red circle: not top-1, rank 2
        [0.9, 0.8, 0.7, 0.1],  # red circles first: right colour, wrong shape; red square third
        [0.1, 0.2, 0.3, 0.4],  # right
    ])
    scores = score_shape_queries(similarity, pairs, image_pairs)
    assert scores.top1.tolist() == [False, False, True]
    assert scores.all_in_top.tolist() == [False, False, True]
    assert np.allclose(scores.reciprocal_rank, [1 / 2, 1 / 3, 1.0])
    assert scores.top1_colour.tolist() == [True, True, True]
    assert scores.top1_shape.tolist() == [False, False, True]
    held = np.array([False, True, True])
    assert scores.subset(held).top1.tolist() == [False, True]


def test_chance_matches_every_ordering():
    n, k = 6, 2
    top1, all_in_top, reciprocal = [], [], []
    for order in itertools.permutations(range(n)):  # images 0..k-1 are relevant; order[r] is the image at rank r
        ranks = [r + 1 for r, image in enumerate(order) if image < k]
        top1.append(ranks[0] == 1)
        all_in_top.append(max(ranks) == k)
        reciprocal.append(1 / ranks[0])
    chance = chance_scores(n, k)
    assert chance["top1"] == pytest.approx(np.mean(top1))
    assert chance["all_in_top"] == pytest.approx(np.mean(all_in_top))
    assert chance["mrr"] == pytest.approx(np.mean(reciprocal))


def test_benchmark_quick_mode_prints_groups_and_ratios(tiny_siglip_dir):
    # A random model: the figures are meaningless, the point is that every part of the report is printed.
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--model", str(tiny_siglip_dir)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for part in ("48 single-shape images", "seen", "held_out", "chance (random ranking, exact)", "ours / chance",
                 "good-match mark", "marking at random: 0.042"):
        assert part in done.stdout, done.stdout
    as_json = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", "--model", str(tiny_siglip_dir)],
                             capture_output=True, text=True, timeout=300)
    result = json.loads(as_json.stdout)
    assert result["n_images"] == 48 and result["groups"]["all"]["queries"] == 24
    assert result["groups"]["seen"]["queries"] + result["groups"]["held_out"]["queries"] == 24
    assert [row["factor"] for row in result["good"]] == [2.0, 3.0, 4.0, 5.0, 6.0]


def test_benchmark_rejects_a_folder_without_a_model(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--model", str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "not a checkpoint folder" in done.stderr
