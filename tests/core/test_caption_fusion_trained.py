"""Caption fusion on the shapes data with the trained tiny SigLIP (issue 13's acceptance): captions carry a made-up
name the model cannot know; "photo of NAME" finds the named picture at chance with fusion off, always with it on.
And the model's own knowledge is not harmed: for "a red circle", photos without a matching caption keep their order."""

from __future__ import annotations

import pytest

from vsearch_app.core.engine.embedder import Embedder
from vsearch_app.core.library.library import Library
from vsearch_app.core.store import captions
from vsearch_app.core.types import DEFAULT_CAPTION_WEIGHT, CaptionResult
from vsearch_app.training.shapes import single_shape_query_set

NAMES = ["Zorblax", "Quentavio", "Mirrowen", "Plumbeck", "Thadrix", "Ovalinde", "Krespin", "Yulvaro", "Brannoch",
         "Sefirah", "Gorvath", "Elowick"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shapes_library(trained_shapes_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fusion_shapes")
    query_set = single_shape_query_set(32)
    paths = []
    for i, (scene, image) in enumerate(zip(query_set.scenes, query_set.images, strict=True)):
        path = tmp / "photos" / f"shape_{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        paths.append((path, scene.shapes[0]))
    embedder = Embedder.load(trained_shapes_model.model_dir, device="cpu", dtype="float32")
    lib = Library(tmp / "data", model_id="shapes-model", embedder_factory=lambda: embedder)
    lib.add_folder(tmp / "photos")
    assert lib.index().embedded == len(paths)
    named = {}  # a name, and what the picture shows, on every eighth photo's caption
    for name, (path, shape) in zip(NAMES, paths[3::8], strict=False):
        store(lib, path, f"{name}, a {shape.size} {shape.colour} {shape.shape} on the {shape.position}")
        named[name] = path
    yield lib, named
    lib.close()


def store(lib: Library, path, text: str) -> None:
    photo = captions.find_photo(lib.catalog, path)
    assert captions.save(lib.catalog, photo, CaptionResult(text, "caption en", "pg", "stop_token",
                                                           token_count=5)).stored_at


def test_a_made_up_name_is_found_only_through_the_captions(shapes_library):
    lib, named = shapes_library

    def recall_at_1(weight: float) -> float:
        return sum(lib.search(f"photo of {name}", limit=1, caption_weight=weight)[0].path == path
                   for name, path in named.items()) / len(named)

    assert recall_at_1(0.0) <= 2 / len(named)  # the model has never seen these words: chance is 1 in 96
    assert recall_at_1(DEFAULT_CAPTION_WEIGHT) == 1.0


def test_photos_without_a_matching_caption_keep_their_order(shapes_library):
    lib, _ = shapes_library
    plain = [(h.path, h.score) for h in lib.search("a red circle", limit=96, caption_weight=0)]
    fused = lib.search("a red circle", limit=96, caption_weight=DEFAULT_CAPTION_WEIGHT)
    assert [(h.path, h.score) for h in fused if not h.caption_matched] == [
        (p, s) for p, s in plain if p not in {h.path for h in fused if h.caption_matched}]
    # The captions that say "red circle" are of red circles, and they come first.
    raised = [h for h in fused if h.caption_matched and {"red", "circle"} <= set(h.caption.lower().split())]
    assert raised and fused[:len(raised)] == raised
