"""Gemma decoder pieces: config, RMSNorm, RoPE, the KV cache against full recomputation, oneDNN packing."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.support.tiny_paligemma import make_tiny_paligemma
from vsearch_app.errors import CheckpointError
from vsearch_app.modeling.gemma import (
    GemmaConfig,
    GemmaForCausalLM,
    GemmaRMSNorm,
    apply_rope,
    can_pack,
    rope_cos_sin,
    rope_inverse_frequencies,
)
from vsearch_app.modeling.generate import generate
from vsearch_app.modeling.kv_cache import StaticKVCache
from vsearch_app.modeling.paligemma import PaliGemmaConfig, load_paligemma, replaced_by_packing
from vsearch_app.modeling.sampling import GenerationParams

# The published google/paligemma-3b-mix-224 config.json (transformers 4.41 era): defaults left out on purpose.
PUBLISHED_CONFIG = {
    "_name_or_path": "gg-hf/paligemma-3b-mix-224", "architectures": ["PaliGemmaForConditionalGeneration"],
    "bos_token_id": 2, "eos_token_id": 1, "hidden_size": 2048, "ignore_index": -100, "image_token_index": 257152,
    "model_type": "paligemma", "pad_token_id": 0, "projection_dim": 2048,
    "text_config": {"hidden_size": 2048, "intermediate_size": 16384, "model_type": "gemma",
                    "num_attention_heads": 8, "num_hidden_layers": 18, "num_image_tokens": 256,
                    "num_key_value_heads": 1, "torch_dtype": "float32", "vocab_size": 257216},
    "torch_dtype": "float32", "transformers_version": "4.41.0.dev0",
    "vision_config": {"hidden_size": 1152, "intermediate_size": 4304, "model_type": "siglip_vision_model",
                      "num_attention_heads": 16, "num_hidden_layers": 27, "num_image_tokens": 256,
                      "patch_size": 14, "projection_dim": 2048, "projector_hidden_act": "gelu_fast",
                      "vision_use_head": False},
}


def test_published_config_parses_with_gemma_defaults():
    config = PaliGemmaConfig.from_hf_dict(PUBLISHED_CONFIG)
    text = config.text_config
    assert (text.head_dim, text.num_key_value_heads, text.rope_theta, text.rms_norm_eps) == (256, 1, 10000.0, 1e-6)
    assert text.activation == "gelu_pytorch_tanh"
    assert config.num_image_tokens == 256 and config.image_token_index == 257152
    assert config.vision_config.image_size == 224 and not config.vision_config.vision_use_head


def test_config_respects_head_dim_and_rope_parameters():
    config = GemmaConfig.from_hf_dict({"hidden_size": 36, "num_attention_heads": 6, "num_key_value_heads": 2,
                                       "head_dim": 10, "rope_parameters": {"rope_type": "default",
                                                                           "rope_theta": 500.0}})
    assert config.head_dim == 10 and config.rope_theta == 500.0
    assert GemmaConfig.from_hf_dict({"hidden_act": "gelu"}).activation == "gelu_pytorch_tanh"


@pytest.mark.parametrize("bad", [{"model_type": "gemma2"}, {"query_pre_attn_scalar": 224},
                                 {"rope_parameters": {"rope_type": "linear", "factor": 2.0}}])
def test_config_rejects_what_it_cannot_run(bad):
    with pytest.raises(CheckpointError):
        GemmaConfig.from_hf_dict(bad)


def test_rms_norm_scales_by_one_plus_weight_in_float32():
    norm = GemmaRMSNorm(4, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([0.0, 1.0, -0.5, 2.0]))
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    rms = math.sqrt((1 + 4 + 9 + 16) / 4 + 1e-6)
    expected = x / rms * torch.tensor([1.0, 2.0, 0.5, 3.0])
    assert torch.allclose(norm(x), expected, atol=1e-6)
    assert norm(x.to(torch.bfloat16)).dtype == torch.bfloat16


def test_rope_rotates_pairs_by_position_times_frequency():
    head_dim, theta = 8, 10000.0
    inv_freq = rope_inverse_frequencies(head_dim, theta)
    assert torch.allclose(inv_freq, torch.tensor([theta ** (-2 * i / head_dim) for i in range(4)]))
    x = torch.randn(1, 1, 3, head_dim)
    positions = torch.tensor([0, 5, 9])
    cos, sin = rope_cos_sin(positions, inv_freq, torch.float32)
    out = apply_rope(x, cos, sin)
    assert torch.allclose(out[0, 0, 0], x[0, 0, 0])  # position 0: identity
    for t, pos in enumerate(positions.tolist()):
        for i in range(4):
            angle = pos * inv_freq[i].item()
            a, b = x[0, 0, t, i].item(), x[0, 0, t, i + 4].item()
            assert out[0, 0, t, i].item() == pytest.approx(a * math.cos(angle) - b * math.sin(angle), abs=1e-5)
            assert out[0, 0, t, i + 4].item() == pytest.approx(b * math.cos(angle) + a * math.sin(angle), abs=1e-5)
    # Relative: the dot product of rotated q and k depends only on the position difference.
    q, k = torch.randn(1, 1, 1, head_dim), torch.randn(1, 1, 1, head_dim)

    def score(pq, pk):
        cq, sq = rope_cos_sin(torch.tensor([pq]), inv_freq, torch.float32)
        ck, sk = rope_cos_sin(torch.tensor([pk]), inv_freq, torch.float32)
        return (apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum().item()

    assert score(7, 3) == pytest.approx(score(14, 10), abs=1e-4)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = make_tiny_paligemma(tmp_path_factory.mktemp("gemma"), hidden=36, heads=6, kv_heads=2, head_dim=10,
                                 image_size=28, patch_size=14, seed=3)
    return load_paligemma(folder)


def test_cached_decoding_equals_full_recomputation_step_by_step(tiny):
    lm = tiny.language_model
    torch.manual_seed(0)
    ids = torch.tensor([[tiny.config.image_token_index] * tiny.config.num_image_tokens + [2, 10, 11, 56]])
    pixels = torch.randn(1, 3, 28, 28)
    prefix = ids.shape[1]
    steps = 12
    with torch.no_grad():
        prefix_embeds = tiny.embed_prefix(ids, tiny.encode_image(pixels))
        cache = lm.new_cache(1, prefix + steps)
        cached = lm(prefix_embeds, tiny.positions(0, prefix), cache=cache, last_only=True)
        key_storage = [k.data_ptr() for k in cache.keys]
        generated = []
        for step in range(steps):
            full_ids = torch.cat((ids, torch.tensor([generated], dtype=torch.long)), dim=1)
            full = tiny(full_ids, pixels, prefix_length=prefix)[:, -1]
            assert torch.allclose(cached, full, atol=1e-5, rtol=0), (step, (cached - full).abs().max())
            token = int(torch.randint(4, 60, ()))  # any continuation will do, not only the greedy one
            generated.append(token)
            if step < steps - 1:
                cached = lm(lm.embed(torch.tensor([[token]])), tiny.positions(prefix + step, 1), cache=cache,
                            last_only=True)
        assert cache.length == prefix + steps - 1
        assert [k.data_ptr() for k in cache.keys] == key_storage  # written in place, never re-allocated


def test_generate_with_and_without_cache_agree(tiny):
    ids = [tiny.config.image_token_index] * tiny.config.num_image_tokens + [2, 12, 13, 56]
    pixels = torch.randn(1, 3, 28, 28, generator=torch.Generator().manual_seed(5))
    params = GenerationParams(max_new_tokens=16)
    assert generate(tiny, ids, pixels, params).token_ids == generate(tiny, ids, pixels, params,
                                                                     use_cache=False).token_ids


def test_kv_cache_refuses_to_overflow():
    cache = StaticKVCache(num_layers=1, batch_size=1, num_kv_heads=1, max_length=3, head_dim=2, dtype=torch.float32)
    cache.write(0, 0, torch.ones(1, 1, 3, 2), torch.ones(1, 1, 3, 2))
    with pytest.raises(IndexError):
        cache.write(0, 3, torch.ones(1, 1, 1, 2), torch.ones(1, 1, 1, 2))


@pytest.mark.skipif(not can_pack(torch.bfloat16, torch.device("cpu")), reason="no oneDNN bf16 packing here")
def test_packed_bf16_decoder_is_bitwise_equal(tiny, tmp_path):
    folder = make_tiny_paligemma(tmp_path / "p")
    plain = load_paligemma(folder, dtype=torch.bfloat16)
    packed = load_paligemma(folder, dtype=torch.bfloat16)
    assert packed.language_model.optimize_for_inference()
    ids = [plain.config.image_token_index] * plain.config.num_image_tokens + [2, 10, 11, 56]
    pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    params = GenerationParams(max_new_tokens=10)
    with torch.no_grad():
        full = torch.tensor([ids])
        assert torch.equal(plain(full, pixels), packed(full, pixels))
    assert generate(plain, ids, pixels, params).token_ids == generate(packed, ids, pixels, params).token_ids


def test_untied_head_is_a_checkpoint_weight():
    config = GemmaConfig(vocab_size=10, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=4, tie_word_embeddings=False)
    assert "lm_head.weight" in GemmaForCausalLM(config).state_dict()
    assert "lm_head.weight" not in GemmaForCausalLM(GemmaConfig(vocab_size=10, hidden_size=8, intermediate_size=16,
                                                                 num_hidden_layers=1, num_attention_heads=2,
                                                                 num_key_value_heads=1, head_dim=4)).state_dict()



def bf16_checkpoint(folder: Path) -> Path:
    """The tiny checkpoint stored in bf16 (as the benchmark's 3B-shaped one is): weights the loader may map."""
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    save_file({k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in load_file(str(path)).items()},
              str(path), metadata={"format": "pt"})
    return folder


@pytest.mark.skipif(not can_pack(torch.bfloat16, torch.device("cpu")), reason="no oneDNN bf16 packing here")
def test_packing_layer_by_layer_from_mapped_weights_keeps_every_output_bitwise(tmp_path):
    folder = bf16_checkpoint(make_tiny_paligemma(tmp_path / "p"))
    plain = load_paligemma(folder, dtype=torch.bfloat16)
    lazy = load_paligemma(folder, dtype=torch.bfloat16, map_weights=replaced_by_packing)
    for (name, a), (_, b) in zip(plain.state_dict().items(), lazy.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    ids = [plain.config.image_token_index] * plain.config.num_image_tokens + [2, 10, 11, 56]
    pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    params = GenerationParams(max_new_tokens=10)
    full = torch.tensor([ids])
    with torch.no_grad():
        expected_logits = plain(full, pixels)
    expected = generate(plain, ids, pixels, params).token_ids
    steps = lazy.language_model.packing_steps()
    assert len(steps) == plain.config.text_config.num_hidden_layers + 1  # each layer, then the head
    for step in steps:
        step()
        with torch.no_grad():
            assert torch.equal(lazy(full, pixels), expected_logits)
        assert generate(lazy, ids, pixels, params).token_ids == expected
    assert lazy.language_model.packing_steps() == []  # nothing left
    assert lazy.language_model.optimize_for_inference()  # packed already: still reports packed
    assert not any(replaced_by_packing(name) for name, _ in lazy.named_parameters())  # the plain copies are gone


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc/self/maps to see the mappings")
def test_mapped_weights_are_unmapped_once_packing_replaced_them(tmp_path):
    folder = bf16_checkpoint(make_tiny_paligemma(tmp_path / "p"))
    weights = str((folder / "model.safetensors").resolve())

    def mappings() -> int:
        return sum(weights in line for line in Path("/proc/self/maps").read_text().splitlines())

    converted = load_paligemma(folder, dtype=torch.float32, map_weights=replaced_by_packing)
    assert mappings() == 0 and converted.dtype == torch.float32  # stored in another dtype: read and converted
    model = load_paligemma(folder, dtype=torch.bfloat16, map_weights=replaced_by_packing)
    assert mappings() == 2 * 7  # two layers of seven projections, mapped rather than read
    assert torch.equal(model.language_model.model.layers[1].mlp.down_proj.weight,
                       converted.language_model.model.layers[1].mlp.down_proj.weight.to(torch.bfloat16))
    if model.language_model.optimize_for_inference():
        assert mappings() == 0  # each mapping went with the weight packing replaced


def test_building_the_model_skeleton_does_not_import_dynamo(tmp_path):
    """Meta-device construction used to import torch._dynamo (and sympy): seconds of every cold start."""
    folder = make_tiny_paligemma(tmp_path / "p")
    code = ("import sys, torch\n"
            "from vsearch_app.modeling.paligemma import load_paligemma\n"
            f"load_paligemma({str(folder)!r}, dtype=torch.bfloat16)\n"
            "print('torch._dynamo' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"
