"""Primitives shared by the model families: GELU MLP and multi-head self-attention through SDPA."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def gelu(name: str, x: torch.Tensor) -> torch.Tensor:
    """GELU as the checkpoint names it: all but plain 'gelu' mean the tanh approximation."""
    return F.gelu(x) if name == "gelu" else F.gelu(x, approximate="tanh")


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2, named as in SigLIP checkpoints."""

    def __init__(self, hidden_size: int, intermediate_size: int, activation: str) -> None:
        super().__init__()
        self.activation = activation
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.fc2 = nn.Linear(intermediate_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        # One GEMM for q, k and v (measured 5-10% faster on CPU than three). The weights are concatenated per call,
        # which costs little next to the matmul and keeps the parameters under their checkpoint names, trainable.
        weight = torch.cat((self.q_proj.weight, self.k_proj.weight, self.v_proj.weight))
        bias = torch.cat((self.q_proj.bias, self.k_proj.bias, self.v_proj.bias))
        batch, length, width = x.shape
        qkv = F.linear(x, weight, bias).view(batch, length, 3, self.num_heads, width // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # [B, T, 3, H, D] -> 3 x [B, H, T, D]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out_proj(merge_heads(out))
