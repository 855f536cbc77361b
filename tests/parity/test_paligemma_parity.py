"""Our PaliGemma against transformers' PaliGemmaForConditionalGeneration on tiny random checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from tests.support.tiny_paligemma import make_tiny_paligemma
from vsearch_app.errors import CheckpointError
from vsearch_app.modeling.generate import generate
from vsearch_app.modeling.paligemma import load_paligemma, rename_key
from vsearch_app.modeling.sampling import GenerationParams

SHAPES = {
    # MQA (one key/value head), head_dim equal to hidden / heads, published key layout.
    "mqa": dict(hidden=32, heads=4, kv_heads=1, head_dim=16, image_size=32, patch_size=8, seed=0),
    # GQA with head_dim that is NOT hidden / heads, another RoPE theta, 2x2 patches.
    "gqa": dict(hidden=36, heads=6, kv_heads=2, head_dim=10, image_size=28, patch_size=14, rope_theta=500.0, seed=3),
    # Odd head counts everywhere, full multi-head attention, the layout transformers 5.x save_pretrained writes.
    "odd": dict(hidden=24, heads=3, kv_heads=3, head_dim=8, vision_heads=3, image_size=48, patch_size=16,
                layout="saved", seed=0),
}


@pytest.fixture(scope="module", params=sorted(SHAPES))
def pair(request, tmp_path_factory):
    from transformers import PaliGemmaForConditionalGeneration

    folder = make_tiny_paligemma(tmp_path_factory.mktemp(request.param), **SHAPES[request.param])
    ours = load_paligemma(folder)
    ref = PaliGemmaForConditionalGeneration.from_pretrained(folder).eval()
    ref.generation_config.eos_token_id = None  # compare a fixed number of tokens
    return ours, ref


def _inputs(model, prompt_ids=(10, 11, 12, 56), seed=1):
    image_id = model.config.image_token_index
    ids = torch.tensor([[image_id] * model.config.num_image_tokens + [2, *prompt_ids]])
    size = model.config.vision_config.image_size
    pixels = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return ids, pixels


def test_prefill_logits_match(pair):
    ours, ref = pair
    ids, pixels = _inputs(ours)
    with torch.no_grad():
        expected = ref(input_ids=ids, pixel_values=pixels, token_type_ids=torch.zeros_like(ids)).logits
        got = ours(ids, pixels)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-4, rtol=0), (got - expected).abs().max()


def test_prefix_is_bidirectional_and_suffix_causal(pair):
    ours, ref = pair
    ids, pixels = _inputs(ours)
    suffix = torch.tensor([[7, 8, 9, 20]])
    full = torch.cat((ids, suffix), dim=1)
    prefix = ids.shape[1]
    token_types = torch.cat((torch.zeros_like(ids), torch.ones_like(suffix)), dim=1)
    with torch.no_grad():
        expected = ref(input_ids=full, pixel_values=pixels, token_type_ids=token_types).logits
        got = ours(full, pixels, prefix_length=prefix)
        assert torch.allclose(got, expected, atol=1e-4, rtol=0), (got - expected).abs().max()
        # Changing the last prompt token changes the image positions (bidirectional prefix) ...
        changed = full.clone()
        changed[0, prefix - 1] = 13
        other = ours(changed, pixels, prefix_length=prefix)
        assert not torch.allclose(other[0, 0], got[0, 0])
        # ... while changing the last suffix token changes nothing before it (causal suffix).
        changed = full.clone()
        changed[0, -1] = 21
        other = ours(changed, pixels, prefix_length=prefix)
        assert torch.equal(other[0, :-1], got[0, :-1])


def test_greedy_tokens_match_transformers_generate(pair):
    ours, ref = pair
    ids, pixels = _inputs(ours)
    result = generate(ours, ids[0], pixels, GenerationParams(max_new_tokens=24))
    with torch.no_grad():
        expected = ref.generate(
            input_ids=ids, pixel_values=pixels, token_type_ids=torch.zeros_like(ids),
            attention_mask=torch.ones_like(ids), max_new_tokens=24, do_sample=False,
        )[0, ids.shape[1]:].tolist()
    assert len(expected) == 24
    assert len(set(expected)) >= 3, "degenerate reference sequence: the test would prove little"
    assert result.token_ids == expected
    assert result.stop_reason == "max_tokens"


def test_both_key_layouts_load_to_the_same_weights(tmp_path):
    published = load_paligemma(make_tiny_paligemma(tmp_path / "a", layout="published"))
    saved = load_paligemma(make_tiny_paligemma(tmp_path / "b", layout="saved"))
    a, b = published.state_dict(), saved.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_rename_table():
    assert rename_key("vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight") == \
        "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight"
    assert rename_key("vision_tower.post_layernorm.bias") == "vision_tower.vision_model.post_layernorm.bias"
    assert rename_key("vision_tower.head.probe") is None
    assert rename_key("model.language_model.norm.weight") == "language_model.model.norm.weight"
    assert rename_key("language_model.lm_head.weight") is None  # tied to the embedding
    assert rename_key("language_model.lm_head.weight", tied=False) == "language_model.lm_head.weight"


def test_missing_and_unexpected_weights_are_named(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = make_tiny_paligemma(tmp_path / "m")
    tensors = load_file(str(folder / "model.safetensors"))
    del tensors["language_model.model.norm.weight"]
    tensors["language_model.model.extra.weight"] = torch.zeros(2)
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError) as info:
        load_paligemma(folder)
    assert "language_model.model.norm.weight" in str(info.value)
    assert "language_model.model.extra.weight" in str(info.value)


def test_bf16_load_keeps_weights_exact(tmp_path):
    folder = make_tiny_paligemma(tmp_path / "bf")
    fp32 = load_paligemma(folder)
    bf16 = load_paligemma(folder, dtype=torch.bfloat16)
    for key, value in fp32.state_dict().items():
        assert bf16.state_dict()[key].dtype == torch.bfloat16
        assert torch.equal(bf16.state_dict()[key], value.to(torch.bfloat16))


def test_sharded_checkpoint_with_index_loads_like_one_file(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = make_tiny_paligemma(tmp_path / "sharded")
    single = load_paligemma(folder).state_dict()
    tensors = load_file(str(folder / "model.safetensors"))
    keys = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, names in shards.items():
        save_file({k: tensors[k] for k in names}, str(folder / name), metadata={"format": "pt"})
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: name for name, names in shards.items() for k in names}}))
    sharded = load_paligemma(folder).state_dict()
    assert sharded.keys() == single.keys()
    assert all(torch.equal(sharded[k], single[k]) for k in single)


def test_not_a_paligemma_config_is_refused(tmp_path):
    folder = make_tiny_paligemma(tmp_path / "x")
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["model_type"] = "gemma2"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="PaliGemma 2"):
        load_paligemma(folder)
