"""The embedding engine: files in, normalised vectors out, equal to the reference pipeline; failures reported."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import SiglipModel as ReferenceSiglip

from vsearch_app.core.engine.embedder import Embedder
from vsearch_app.preprocessing.image import ImageTransform


def _photo(path, seed: int, size=(96, 64)):
    rng = np.random.default_rng(seed)
    # Smooth random colour fields look more like photos than white noise and survive JPEG well.
    small = rng.integers(0, 255, (4, 6, 3), dtype=np.uint8)
    Image.fromarray(small).resize(size, Image.BICUBIC).save(path, quality=95)
    return path


@pytest.fixture(scope="module")
def embedder(tiny_siglip_dir):
    return Embedder.load(tiny_siglip_dir, device="cpu", dtype="float32")


def test_vectors_are_normalised_float32_in_input_order(embedder, tmp_path):
    paths = [_photo(tmp_path / f"p{i}.jpg", i) for i in range(5)]
    result = embedder.embed_images(paths, batch_size=2)
    assert result.vectors.dtype == np.float32 and result.vectors.shape == (5, embedder.dim)
    assert result.indices == [0, 1, 2, 3, 4] and result.failures == []
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
    single = embedder.embed_images([paths[3]]).vectors[0]
    np.testing.assert_allclose(result.vectors[3], single, atol=1e-5)


def test_matches_transformers_reference_from_files(embedder, tiny_siglip_dir, tmp_path):
    paths = [_photo(tmp_path / f"p{i}.png", 10 + i) for i in range(3)]
    reference = ReferenceSiglip.from_pretrained(tiny_siglip_dir).eval()
    transform = ImageTransform.from_folder(tiny_siglip_dir)
    pixels = transform.to_tensor([Image.open(p).convert("RGB") for p in paths])
    with torch.no_grad():
        expected = F.normalize(reference.get_image_features(pixel_values=pixels).pooler_output, dim=-1).numpy()
    got = embedder.embed_images(paths).vectors
    assert (np.sum(got * expected, axis=1) >= 0.99999).all()


def test_unreadable_files_are_reported_and_others_still_embedded(embedder, tmp_path):
    good = _photo(tmp_path / "good.jpg", 1)
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a photo")
    result = embedder.embed_images([bad, good, tmp_path / "missing.jpg"])
    assert result.indices == [1]
    failed = dict(result.failures)
    assert set(failed) == {0, 2}
    assert failed == {0: "not an image or unsupported format", 2: "file not found"}


def test_texts_embed_to_unit_vectors_and_case_does_not_matter(embedder):
    vectors = embedder.embed_texts(["A Red Bike", "a red bike", "kids on the beach"])
    assert vectors.shape == (3, embedder.dim)
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    assert abs(float(vectors[0] @ vectors[2])) < 0.9999


def test_should_stop_ends_between_batches(embedder, tmp_path):
    paths = [_photo(tmp_path / f"s{i}.jpg", i) for i in range(6)]
    seen = []
    result = embedder.embed_images(paths, batch_size=2, should_stop=lambda: len(seen) >= 1,
                                   on_batch=lambda done, total: seen.append(done))
    assert result.indices == [0, 1]


def test_bfloat16_embedding_close_to_float32(tiny_siglip_dir, tmp_path):
    paths = [_photo(tmp_path / f"b{i}.jpg", i) for i in range(4)]
    fp32 = Embedder.load(tiny_siglip_dir, device="cpu", dtype="float32").embed_images(paths).vectors
    bf16 = Embedder.load(tiny_siglip_dir, device="cpu", dtype="bfloat16").embed_images(paths).vectors
    assert (np.sum(fp32 * bf16, axis=1) >= 0.99).all()


# For each EXIF orientation, the transpose that turns the upright scene into the stored pixels.
_STORED_AS = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", sorted(_STORED_AS))
def test_exif_rotated_photo_embeds_like_the_upright_one(embedder, tmp_path, orientation):
    rng = np.random.default_rng(3)
    scene = Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)).resize((160, 120), Image.BICUBIC)
    upright = tmp_path / "upright.jpg"
    scene.save(upright, quality=95)
    op = _STORED_AS[orientation]
    stored = scene.transpose(op) if op is not None else scene
    exif = Image.Exif()
    exif[0x0112] = orientation
    tagged = tmp_path / f"tagged{orientation}.jpg"
    stored.save(tagged, quality=95, exif=exif)
    vectors = embedder.embed_images([upright, tagged, stored]).vectors
    assert float(vectors[0] @ vectors[1]) >= 0.99
    if orientation != 1:  # the model does see the difference when the tag is ignored, so the check above can fail
        assert float(vectors[0] @ vectors[2]) < 0.99


# --- model streams: batches split in parts that run at once -----------------------------------------------------


@pytest.fixture(scope="module")
def two_streams(tiny_siglip_dir):
    embedder = Embedder.load(tiny_siglip_dir, device="cpu", dtype="float32", model_streams=2)
    yield embedder
    embedder.close()


def test_split_batches_give_the_same_vectors_failures_and_order(embedder, two_streams, tmp_path):
    paths = [_photo(tmp_path / f"m{i}.jpg", 40 + i) for i in range(11)]
    paths[5] = tmp_path / "gone.jpg"  # a failure inside a split part
    (tmp_path / "junk.jpg").write_text("not a photo")
    paths[9] = tmp_path / "junk.jpg"
    one = Embedder(embedder.model, embedder.tokenizer, embedder.transform, model_id="m", model_streams=1)
    expected = one.embed_images(paths, batch_size=8)
    got = two_streams.embed_images(paths, batch_size=8)
    assert got.indices == expected.indices == [0, 1, 2, 3, 4, 6, 7, 8, 10]
    assert got.failures == expected.failures == [(5, "file not found"), (9, "not an image or unsupported format")]
    np.testing.assert_allclose(got.vectors, expected.vectors, atol=1e-5)


def test_streams_split_only_batches_worth_splitting():
    from vsearch_app.core.engine.model_streams import ModelStreams

    streams = ModelStreams(2)
    assert streams.split(range(0, 16)) == [range(0, 8), range(8, 16)]
    assert streams.split(range(16, 21)) == [range(16, 18), range(18, 21)]
    assert streams.split(range(0, 3)) == [range(0, 3)]  # a query image is not cut
    assert ModelStreams(1).split(range(0, 16)) == [range(0, 16)]


def test_streams_leave_the_callers_torch_threads_alone(two_streams, tmp_path):
    import threading

    before = torch.get_num_threads()
    two_streams.embed_images([_photo(tmp_path / f"t{i}.jpg", i) for i in range(6)], batch_size=6)
    assert torch.get_num_threads() == before
    seen = []
    later = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))  # starts from torch's default
    later.start()
    later.join()
    assert seen == [before]


def test_stopping_with_split_batches_in_flight_returns_only_whole_batches(two_streams, tmp_path):
    paths = [_photo(tmp_path / f"q{i}.jpg", i) for i in range(24)]
    seen = []
    result = two_streams.embed_images(paths, batch_size=4, should_stop=lambda: len(seen) >= 2,
                                      on_batch=lambda done, total: seen.append(done))
    assert seen == [4, 8] and result.indices == list(range(8)) and len(result.vectors) == 8
    assert two_streams.embed_images(paths[:4], batch_size=4).indices == [0, 1, 2, 3]  # still usable afterwards
