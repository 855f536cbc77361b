"""The shared blocks: residual handling, the prepacked bf16 linear layer and the CPU attention used with it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vsearch_app.modeling import layers
from vsearch_app.modeling.layers import Mlp, PackedLinear, SelfAttention, can_pack

needs_packing = pytest.mark.skipif(not can_pack(torch.bfloat16, torch.device("cpu")), reason="no oneDNN bf16 here")


def _blocks(seed: int = 0) -> tuple[SelfAttention, Mlp]:
    torch.manual_seed(seed)
    attention, mlp = SelfAttention(32, 4), Mlp(32, 64, "gelu_pytorch_tanh")
    for module in (attention, mlp):
        for p in module.parameters():
            torch.nn.init.normal_(p, std=0.2)
    return attention.eval(), mlp.eval()


@torch.no_grad()
def test_residual_is_added_to_the_block_output():
    attention, mlp = _blocks()
    x, residual = torch.randn(2, 5, 32), torch.randn(2, 5, 32)
    assert torch.equal(attention(x, residual=residual), residual + attention(x))
    assert torch.equal(mlp(x, residual=residual), residual + mlp(x))


@torch.no_grad()
def test_cpu_attention_equals_sdpa():
    q, k, v = (torch.randn(3, 4, 17, 8, generator=torch.Generator().manual_seed(i)) for i in range(3))
    expected = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(layers._attention_bf16_cpu(q, k, v), expected, rtol=1e-5, atol=1e-5)


@needs_packing
@torch.no_grad()
def test_packed_linear_folds_the_residual_into_the_product():
    weight, bias = torch.randn(48, 32, dtype=torch.bfloat16), torch.randn(48, dtype=torch.bfloat16)
    x, residual = torch.randn(7, 32, dtype=torch.bfloat16), torch.randn(7, 48, dtype=torch.bfloat16)
    packed = PackedLinear(weight, bias)
    exact = (x.double() @ weight.double().T + bias.double() + residual.double()).float()
    # One rounding at the end instead of two: at least as close to the exact sum as the unfused bf16 computation.
    fused_error = (packed(x, residual=residual).float() - exact).abs().max()
    unfused_error = ((F.linear(x, weight, bias) + residual).float() - exact).abs().max()
    assert fused_error <= unfused_error + 1e-6
    with pytest.raises(ValueError):
        PackedLinear(weight, bias, fuse_tanh_gelu=True)(x, residual=residual)


@needs_packing
@torch.no_grad()
def test_packed_blocks_match_the_plain_blocks_in_bf16():
    attention, mlp = _blocks(1)
    attention, mlp = attention.to(torch.bfloat16), mlp.to(torch.bfloat16)
    x, residual = torch.randn(2, 9, 32, dtype=torch.bfloat16), torch.randn(2, 9, 32, dtype=torch.bfloat16)
    plain = attention(x, residual=residual).float(), mlp(x, residual=residual).float()
    attention.pack_for_inference()
    mlp.pack_for_inference()
    packed = attention(x, residual=residual).float(), mlp(x, residual=residual).float()
    for a, b in zip(plain, packed, strict=True):
        assert F.cosine_similarity(a.flatten(1), b.flatten(1)).min() >= 0.999
