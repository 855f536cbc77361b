"""Primitives shared by the model families: GELU MLP, multi-head self-attention through SDPA, and oneDNN-prepacked
linear layers for bf16 inference on CPUs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def gelu(name: str, x: torch.Tensor) -> torch.Tensor:
    """GELU as the checkpoint names it: all but plain 'gelu' mean the tanh approximation."""
    return F.gelu(x) if name == "gelu" else F.gelu(x, approximate="tanh")


class PackedLinear(nn.Module):
    """A linear layer whose weight oneDNN has reordered once for fast bf16 CPU matrix products, optionally with the
    tanh GELU fused into the same kernel. Inference only: it holds detached copies, not parameters. Without a fused
    activation the result is bitwise equal to ``F.linear`` on the same weight."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, *, fuse_tanh_gelu: bool = False):
        super().__init__()
        self.out_features = weight.shape[0]
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), 1)
        self.bias = None if bias is None else bias.detach()
        self.post_op, self.algorithm = ("gelu", "tanh") if fuse_tanh_gelu else ("none", "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, self.post_op, [], self.algorithm)


def can_pack(dtype: torch.dtype, device: torch.device) -> bool:
    """oneDNN prepacking helps bf16 on CPUs with native bf16; elsewhere plain F.linear is used."""
    if device.type != "cpu" or dtype != torch.bfloat16 or not torch.backends.mkldnn.is_available():
        return False
    try:
        probe = torch.ones(8, 8, dtype=dtype)
        out = PackedLinear(probe)(torch.ones(1, 8, dtype=dtype))
        return bool(torch.equal(out, F.linear(torch.ones(1, 8, dtype=dtype), probe)))
    except (RuntimeError, AttributeError, TypeError, NotImplementedError):
        # A torch build without these private oneDNN ops (or with other signatures): plain F.linear it is.
        return False


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2, named as in SigLIP checkpoints."""

    def __init__(self, hidden_size: int, intermediate_size: int, activation: str) -> None:
        super().__init__()
        self.activation = activation
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.fc2 = nn.Linear(intermediate_size, hidden_size)
        self._packed: tuple[PackedLinear, PackedLinear] | None = None  # a plain tuple: not a submodule

    def pack_for_inference(self) -> None:
        """Prepack both layers, with the tanh GELU fused into fc1 (measured +19% images/s for SigLIP-base in bf16
        on the 2-core CPU, together with the attention projections)."""
        fused = self.activation != "gelu"
        self._packed = (PackedLinear(self.fc1.weight, self.fc1.bias, fuse_tanh_gelu=fused),
                        PackedLinear(self.fc2.weight, self.fc2.bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._packed is not None:
            fc1, fc2 = self._packed
            hidden = fc1(x)
            return fc2(hidden if fc1.post_op == "gelu" else gelu(self.activation, hidden))
        return self.fc2(gelu(self.activation, self.fc1(x)))


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """[B, T, H*D] -> [B, H, T, D]"""
    batch, length, width = x.shape
    return x.view(batch, length, num_heads, width // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[B, H, T, D] -> [B, T, H*D]"""
    batch, heads, length, dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * dim)


class SelfAttention(nn.Module):
    """Bidirectional multi-head self-attention with separate q/k/v/out projections (SigLIP naming)."""

    def __init__(self, hidden_size: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)
        self._packed: tuple[PackedLinear, PackedLinear] | None = None  # a plain tuple: not a submodule

    def pack_for_inference(self) -> None:
        qkv_weight = torch.cat((self.q_proj.weight, self.k_proj.weight, self.v_proj.weight))
        qkv_bias = torch.cat((self.q_proj.bias, self.k_proj.bias, self.v_proj.bias))
        self._packed = (PackedLinear(qkv_weight, qkv_bias), PackedLinear(self.out_proj.weight, self.out_proj.bias))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        batch, length, width = x.shape
        if self._packed is not None:
            qkv_proj, out_proj = self._packed
            qkv = qkv_proj(x).view(batch, length, 3, self.num_heads, width // self.num_heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)  # [B, T, 3, H, D] -> 3 x [B, H, T, D]
            return out_proj(merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)))
        # One GEMM for q, k and v (measured 5-10% faster on CPU than three). The weights are concatenated per call,
        # which costs little next to the matmul and keeps the parameters under their checkpoint names, trainable.
        weight = torch.cat((self.q_proj.weight, self.k_proj.weight, self.v_proj.weight))
        bias = torch.cat((self.q_proj.bias, self.k_proj.bias, self.v_proj.bias))
        qkv = F.linear(x, weight, bias).view(batch, length, 3, self.num_heads, width // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # [B, T, 3, H, D] -> 3 x [B, H, T, D]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out_proj(merge_heads(out))
