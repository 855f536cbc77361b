"""Our SigLIP equals transformers' SiglipModel on tiny random checkpoints of several shapes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import SiglipModel as ReferenceSiglip

from tests.support.tiny_models import make_tiny_siglip
from vsearch_app.errors import CheckpointError
from vsearch_app.modeling.siglip import load_siglip
from vsearch_app.preprocessing.text import TextTokenizer

SHAPES = {
    "siglip2-like": dict(tokenizer="word"),
    "siglip1-like-spiece": dict(tokenizer="spiece", hidden=48, heads=3, layers=3, intermediate=96),
    "odd-heads-large-patch": dict(hidden=40, heads=5, text_hidden=24, text_heads=2, image_size=48, patch_size=16),
    "many-patches": dict(hidden=16, heads=2, layers=1, image_size=64, patch_size=4, max_length=24),
    "so400m-like-remainder": dict(hidden=24, heads=3, image_size=38, patch_size=7),  # 384/14 leaves a remainder too
}


@pytest.fixture(scope="module", params=list(SHAPES))
def checkpoint(request, tmp_path_factory):
    folder = make_tiny_siglip(tmp_path_factory.mktemp(request.param), **SHAPES[request.param], seed=7)
    reference = ReferenceSiglip.from_pretrained(folder, attn_implementation="eager").eval()
    return folder, reference


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.float(), b.float(), dim=-1)


@torch.no_grad()
def test_image_and_text_embeddings_match_reference(checkpoint):
    folder, reference = checkpoint
    ours = load_siglip(folder)
    size = ours.config.vision_config.image_size
    pixels = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(1))
    tokenizer = TextTokenizer.from_folder(folder)
    ids = tokenizer.encode_padded(["a red bike", "kids on the beach at sunset", ""])

    ref_img = F.normalize(reference.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
    ref_txt = F.normalize(reference.get_text_features(input_ids=ids).pooler_output, dim=-1)
    our_img = F.normalize(ours.get_image_features(pixels), dim=-1)
    our_txt = F.normalize(ours.get_text_features(ids), dim=-1)

    assert _cos(our_img, ref_img).min() >= 0.99999
    assert _cos(our_txt, ref_txt).min() >= 0.99999
    ref_logits = reference(input_ids=ids, pixel_values=pixels).logits_per_image
    torch.testing.assert_close(ours(pixels, ids), ref_logits, atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_bfloat16_stays_close_to_float32(checkpoint):
    folder, _ = checkpoint
    fp32 = load_siglip(folder)
    bf16 = load_siglip(folder, dtype=torch.bfloat16)
    assert next(bf16.parameters()).dtype == torch.bfloat16
    size = fp32.config.vision_config.image_size
    pixels = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(2))
    ids = TextTokenizer.from_folder(folder).encode_padded(["a photo of a dog", "blue sky over water"])
    assert _cos(bf16.get_image_features(pixels), fp32.get_image_features(pixels)).min() >= 0.99
    assert _cos(bf16.get_text_features(ids), fp32.get_text_features(ids)).min() >= 0.99


@torch.no_grad()
def test_packed_inference_model_gives_the_same_vectors(checkpoint):
    from vsearch_app.modeling.layers import can_pack

    folder, _ = checkpoint
    plain = load_siglip(folder, dtype=torch.bfloat16)
    packed = load_siglip(folder, dtype=torch.bfloat16)
    assert packed.pack_for_inference() == can_pack(torch.bfloat16, torch.device("cpu"))
    assert load_siglip(folder).pack_for_inference() is False  # float32 is never packed
    size = plain.config.vision_config.image_size
    pixels = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(4))
    ids = TextTokenizer.from_folder(folder).encode_padded(["a red bike", "a dog"])
    assert _cos(packed.get_image_features(pixels), plain.get_image_features(pixels)).min() >= 0.9999
    assert _cos(packed.get_text_features(ids), plain.get_text_features(ids)).min() >= 0.9999


def test_missing_and_unexpected_weights_are_named(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = make_tiny_siglip(tmp_path / "m")
    tensors = load_file(folder / "model.safetensors")
    tensors.pop("text_model.head.weight")
    tensors["vision_model.extra.weight"] = torch.zeros(2)
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(CheckpointError) as err:
        load_siglip(folder)
    assert "text_model.head.weight" in str(err.value) and "vision_model.extra.weight" in str(err.value)


def test_pickle_only_checkpoint_is_refused(tmp_path):
    folder = make_tiny_siglip(tmp_path / "m")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_siglip(folder)


def test_sharded_checkpoint_loads(tmp_path):
    folder = make_tiny_siglip(tmp_path / "m")
    reference = ReferenceSiglip.from_pretrained(folder)
    sharded = tmp_path / "sharded"
    reference.save_pretrained(sharded, max_shard_size="20KB")
    for name in ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"):
        (sharded / name).write_bytes((folder / name).read_bytes())
    assert (sharded / "model.safetensors.index.json").is_file()
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(load_siglip(sharded).get_image_features(pixels),
                                   load_siglip(folder).get_image_features(pixels))


def test_unknown_config_field_is_rejected(tmp_path):
    import json

    folder = make_tiny_siglip(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["vision_config"]["use_rotary_positions"] = True
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="use_rotary_positions"):
        load_siglip(folder)
