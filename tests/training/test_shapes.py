"""The synthetic shapes dataset: deterministic, held-out pairs really held out, captions that name the scene."""

from __future__ import annotations

import hashlib
import json
import random

from PIL import Image

from vsearch_app.training.shapes import (
    COLOURS,
    HELD_OUT_PAIRS,
    SHAPES,
    Scene,
    ShapeSpec,
    ShapesRecipe,
    captions_for,
    held_out_scenes,
    render,
    train_scenes,
    vocabulary,
    write_shapes_dataset,
)

SMALL = ShapesRecipe(n_train=40, n_test=12, image_size=32)


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_recipe_gives_identical_files(tmp_path):
    a = write_shapes_dataset(tmp_path / "a", SMALL)
    b = write_shapes_dataset(tmp_path / "b", SMALL)
    assert _digest(a) == _digest(b)
    c = write_shapes_dataset(tmp_path / "c", ShapesRecipe(n_train=40, n_test=12, seed=1))
    assert _digest(a) != _digest(c)


def test_written_dataset_layout(tmp_path):
    out = write_shapes_dataset(tmp_path / "shapes", SMALL)
    lines = (out / "train" / "captions.jsonl").read_text().splitlines()
    assert len(lines) == 40
    first = json.loads(lines[0])
    assert len(first["captions"]) == 2
    with Image.open(out / "train" / first["image"]) as image:
        assert image.size == (32, 32) and image.mode == "RGB"
    assert len((out / "test" / "captions.jsonl").read_text().splitlines()) == 12
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"):
        assert (out / "model" / name).is_file()


def test_held_out_pairs_never_in_train_and_always_in_test():
    recipe = ShapesRecipe(n_train=2000, n_test=100)
    train_pairs = {(s.colour, s.shape) for scene in train_scenes(recipe) for s in scene.shapes}
    assert not train_pairs & HELD_OUT_PAIRS
    # every colour and every shape is still seen in training, with other partners
    assert {c for c, _ in train_pairs} == set(COLOURS)
    assert {s for _, s in train_pairs} == set(SHAPES)
    tests = held_out_scenes(recipe)
    assert len(tests) == 100 and len({t.key for t in tests}) == 100
    assert all(t.has_held_out_pair() for t in tests)
    assert {len(t.shapes) for t in tests} == {1, 2}


def test_captions_name_every_attribute_and_use_the_vocabulary():
    scene = Scene((ShapeSpec("red", "circle", "small", "left"), ShapeSpec("blue", "square", "large", "right")))
    words = set(vocabulary())
    for seed in range(20):
        for caption in captions_for(scene, random.Random(seed), 3):
            tokens = caption.split()
            assert set(tokens) <= words, caption
            assert {"red", "circle", "blue", "square"} <= set(tokens)
            assert ({"small", "little"} & set(tokens)) and ({"large", "big"} & set(tokens))
            assert "left" in tokens or "right" in tokens
    captions = captions_for(scene, random.Random(0), 3)
    assert len(set(captions)) == 3


def test_render_draws_the_named_colour_where_the_caption_says():
    scene = Scene((ShapeSpec("red", "square", "large", "left"),))
    pixels = render(scene, 32, random.Random(0)).load()
    left = [pixels[x, y] for x in range(0, 16) for y in range(32)]
    right = [pixels[x, y] for x in range(16, 32) for y in range(32)]
    def is_red(p):
        return p[0] > 180 and p[1] < 90 and p[2] < 90
    assert sum(map(is_red, left)) > 40
    assert sum(map(is_red, right)) == 0



def test_default_recipe_gives_short_captions_to_half_the_single_shape_scenes():
    """Short queries ("a red circle") rank well only when training saw short captions; see bench_shape_queries."""
    recipe = ShapesRecipe()
    singles, short = 0, 0
    for index, scene in enumerate(train_scenes(ShapesRecipe(n_train=1000))):
        captions = captions_for(scene, random.Random(index), 2, short_probability=recipe.short_caption_probability)
        has_short = any(len(c.split()) == 3 for c in captions)
        assert not has_short or len(scene.shapes) == 1, captions
        singles += len(scene.shapes) == 1
        short += has_short
    assert 0.4 < short / singles < 0.6
