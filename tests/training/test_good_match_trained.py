"""The good-match mark on a model that really learned the shapes task: its precision, as the README states it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from vsearch_app.core.engine.embedder import Embedder
from vsearch_app.core.library.good_match import MAD_FACTOR
from vsearch_app.training.shapes import single_shape_query_set

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_shape_queries import good_match_precision  # noqa: E402


def test_precision_counts_marked_images_of_the_right_pair():
    images = np.eye(4, dtype=np.float32)[[0, 1, 2, 3] * 16]  # 64 images (the mark needs 50), 16 per pair
    pairs = [("red", "circle"), ("red", "square"), ("blue", "circle"), ("blue", "square")]
    image_pairs = [pairs[int(np.argmax(v))] for v in images]
    texts = np.eye(4, dtype=np.float32)
    result = good_match_precision(texts, images, pairs, image_pairs)
    assert result["precision"] == 1.0 and result["recall"] == 1.0 and result["marked"] == 64


@pytest.mark.slow
def test_good_matches_of_short_queries_are_mostly_the_right_shapes(trained_shapes_model):
    embedder = Embedder.load(trained_shapes_model.model_dir, device="cpu", dtype="float32")
    try:
        query_set = single_shape_query_set(embedder.transform.size[0])
        images = embedder.embed_images(list(query_set.images)).vectors
        texts = embedder.embed_texts(list(query_set.queries))
    finally:
        embedder.close()
    result = good_match_precision(texts, images, query_set.query_pairs, query_set.image_pairs, MAD_FACTOR)
    print(f"good-match mark at f={MAD_FACTOR}: {result}")
    # Floors from the README's measurements (checkpoints 303 and 622 steps into the recipe: precision 0.36 and 0.30,
    # colour precision 1.00, 7 and 3 of 24 queries marked), lowered for run-to-run noise; the trained fixture knows
    # shapes better. Chance precision is 4 / 96 = 0.04.
    assert result["queries_marking"] >= 1
    assert result["precision"] >= 0.2 and result["colour_precision"] >= 0.9
