"""The trained fixture model ranks by meaning through our search engine: "a red circle" finds red circles first."""

from __future__ import annotations

import random

import numpy as np
import pytest

from vsearch_app.core.engine.embedder import Embedder
from vsearch_app.training.shapes import (
    HELD_OUT_PAIRS,
    Scene,
    ShapeSpec,
    render,
    score_shape_queries,
    single_shape_query_set,
)

pytestmark = pytest.mark.slow  # the first run trains the model (then it is cached)


def _mixed_scenes() -> list[Scene]:
    """Single shapes in three colours and four kinds, sizes and positions varied; pairs the model was trained on
    (held-out pairs are for the compositional test below)."""
    scenes = []
    for colour in ("red", "blue", "green"):
        for shape in ("circle", "square", "triangle", "diamond"):
            if (colour, shape) in HELD_OUT_PAIRS:
                continue
            for size, position in (("small", "left"), ("large", "right"), ("large", "middle")):
                scenes.append(Scene((ShapeSpec(colour, shape, size, position),)))
    return scenes


@pytest.fixture(scope="module")
def embedder(trained_shapes_model):
    return Embedder.load(trained_shapes_model.model_dir, device="cpu", dtype="float32")


def test_a_red_circle_ranks_red_circles_first(embedder):
    scenes = _mixed_scenes()
    images = [render(scene, 32, random.Random(i)) for i, scene in enumerate(scenes)]
    vectors = embedder.embed_images(images).vectors
    query = embedder.embed_texts(["a red circle"])[0]
    order = np.argsort(-(vectors @ query))
    red_circles = {i for i, s in enumerate(scenes) if (s.shapes[0].colour, s.shapes[0].shape) == ("red", "circle")}
    assert set(order[: len(red_circles)].tolist()) == red_circles, [scenes[i].key for i in order[:5]]


def test_single_shape_queries_as_the_readme_states(embedder):
    """README, "Testing with the trained model": over 96 single-shape images (4 per colour-shape pair), the 24
    queries "a <colour> <shape>" put an image of the right pair first for 20 of 24 in the measured run (4 of the 6
    held-out pairs) and an image of the right colour first for all 24. The bounds leave a margin of two queries
    (one held-out) for a fixture trained on another CPU, whose arithmetic can differ in the last bits."""
    query_set = single_shape_query_set(32)
    images = embedder.embed_images(list(query_set.images)).vectors
    texts = embedder.embed_texts(list(query_set.queries))
    scores = score_shape_queries(texts @ images.T, query_set.query_pairs, query_set.image_pairs)
    held_out = np.array([pair in HELD_OUT_PAIRS for pair in query_set.query_pairs])
    wrong = [q for q, hit in zip(query_set.queries, scores.top1, strict=True) if not hit]
    assert scores.top1.sum() >= 18, wrong
    assert scores.subset(held_out).top1.sum() >= 3, wrong
    assert scores.top1_colour.sum() >= 23, wrong
    assert scores.reciprocal_rank.mean() >= 0.85  # chance: 0.14


def test_held_out_split_is_retrieved_well(trained_shapes_model, embedder):
    """Scenes with colour-shape pairs never seen in training: a caption finds its image among 100 most of the time
    (a random model: 1 %)."""
    from vsearch_app.training.data import load_dataset
    from vsearch_app.training.evaluate import evaluate_embedder

    report = evaluate_embedder(embedder, load_dataset(trained_shapes_model.data_dir / "test"))
    assert report.text_to_image.recall[5] >= 0.8
    assert report.text_to_image.recall[1] >= 0.4
