"""A preallocated key/value cache for decoder-only generation.

Every layer gets one key and one value buffer of shape [batch, kv_heads, max_length, head_dim], allocated once before
prefill. Each forward step writes its new keys and values in place at the next positions and attends over a view
of the filled part, so decoding never re-allocates or concatenates.
"""

from __future__ import annotations

import torch


class StaticKVCache:
    def __init__(
        self,
        *,
        num_layers: int,
        batch_size: int,
        num_kv_heads: int,
        max_length: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device | str = "cpu",
    ) -> None:
        if max_length < 1:
            raise ValueError("max_length must be positive")
        shape = (batch_size, num_kv_heads, max_length, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.max_length = max_length
        self.length = 0  # positions filled, advanced by `advance` once every layer has written a step

    def write(
        self, layer: int, start: int, keys: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store keys/values [B, kv_heads, T, D] at positions start..start+T and return views of everything up to
        there, without copying."""
        end = start + keys.shape[2]
        if end > self.max_length:
            raise IndexError(f"KV cache holds {self.max_length} positions; step would fill up to {end}")
        self.keys[layer][:, :, start:end].copy_(keys)
        self.values[layer][:, :, start:end].copy_(values)
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def advance(self, steps: int) -> None:
        self.length += steps

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))
