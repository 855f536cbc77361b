"""Gemma (version 1) decoder: RMSNorm, rotary positions, multi-/grouped-query attention, GeGLU MLP, tied output head.

Attribute names equal the checkpoint keys below ``language_model.`` (``model.layers.0.self_attn.q_proj.weight`` ...).
The maths follows Gemma as published: RMSNorm in float32 scaling by (1 + weight); the token embedding multiplied by
sqrt(hidden_size) rounded to the weights' dtype; rotary tables computed in float32 and applied in the activations'
dtype; attention scaled by head_dim ** -0.5 where head_dim comes from the config (Gemma's is not hidden / heads).

The decoder runs in explicit phases: a prefill over many positions and single-token decode steps, both writing keys
and values into a ``StaticKVCache``; without a cache it recomputes the whole sequence (used to check the cache).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vsearch_app.errors import CheckpointError
from vsearch_app.modeling.config import SUPPORTED_GELU, build_config
from vsearch_app.modeling.kv_cache import StaticKVCache
from vsearch_app.modeling.layers import Embedding, PackedLinear, can_pack

log = logging.getLogger(__name__)

# Fields of a Gemma text config that do not change inference maths here (PaliGemma bookkeeping, training options).
_GEMMA_IGNORED = {"num_image_tokens", "use_bidirectional_attention", "rope_scaling", "layer_types"}


@dataclasses.dataclass(frozen=True)
class GemmaConfig:
    """Gemma text config; defaults are those of `transformers`' GemmaConfig, which published configs rely on."""

    vocab_size: int = 256000
    hidden_size: int = 3072
    intermediate_size: int = 24576
    num_hidden_layers: int = 28
    num_attention_heads: int = 16
    num_key_value_heads: int = 16
    head_dim: int = 256
    hidden_act: str = "gelu_pytorch_tanh"
    hidden_activation: str | None = None
    max_position_embeddings: int = 8192
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    attention_bias: bool = False
    tie_word_embeddings: bool = True

    def __post_init__(self) -> None:
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if self.head_dim % 2:
            raise ValueError("head_dim must be even for rotary embeddings")

    @property
    def activation(self) -> str:
        """Gemma always meant the tanh GELU; old configs say 'gelu' (transformers maps it the same way)."""
        name = self.hidden_activation or self.hidden_act
        return "gelu_pytorch_tanh" if name == "gelu" else name

    @classmethod
    def from_hf_dict(cls, data: Mapping[str, Any], where: str = "text_config") -> GemmaConfig:
        data = dict(data)
        model_type = data.get("model_type", "gemma")
        if model_type != "gemma":
            raise CheckpointError(
                f"{where}: the language model is {model_type!r}; VSearch runs Gemma-1 PaliGemma checkpoints "
                "(e.g. google/paligemma-3b-mix-224), not PaliGemma 2"
            )
        rope = data.pop("rope_parameters", None)
        if isinstance(rope, Mapping):
            if rope.get("rope_type", "default") != "default":
                raise CheckpointError(f"{where}: rope type {rope.get('rope_type')!r} is not supported")
            if "rope_theta" in rope:
                data.setdefault("rope_theta", rope["rope_theta"])
        if data.get("rope_scaling"):
            raise CheckpointError(f"{where}: rope_scaling is not supported")
        config = build_config(cls, data, where=where, extra_ignored=_GEMMA_IGNORED)
        if config.activation not in SUPPORTED_GELU:
            raise CheckpointError(f"{where}: activation {config.activation!r} is not supported")
        return config


# --- primitives -----------------------------------------------------------------------------------------------------


class GemmaRMSNorm(nn.Module):
    """x / rms(x) * (1 + weight), computed in float32 and only then cast back (as Gemma was trained)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (x32 * (1.0 + self.weight.float())).type_as(x)


def rope_inverse_frequencies(head_dim: int, theta: float) -> torch.Tensor:
    return 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))


def rope_cos_sin(
    positions: torch.Tensor, inv_freq: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables [T, head_dim] for integer ``positions``, computed in float32, returned in ``dtype``."""
    freqs = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, H, T, D]; cos/sin [T, D]."""
    return x * cos + rotate_half(x) * sin


# --- layers ---------------------------------------------------------------------------------------------------------


class GemmaAttention(nn.Module):
    def __init__(self, config: GemmaConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.scale = config.head_dim**-0.5
        bias = config.attention_bias
        self.q_proj = nn.Linear(config.hidden_size, self.num_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(config.hidden_size, self.num_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(config.hidden_size, self.num_kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, config.hidden_size, bias=bias)
        self.qkv: nn.Module | None = None  # fused q/k/v projection, set by GemmaForCausalLM.optimize_for_inference

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        *,
        mask: torch.Tensor | None,
        cache: StaticKVCache | None,
        layer: int,
        start: int,
    ) -> torch.Tensor:
        batch, length, _ = x.shape
        # [B, T, H*D] -> [B, H, T, D]
        if self.qkv is not None:
            kv_width = self.num_kv_heads * self.head_dim
            q, k, v = self.qkv(x).split([self.num_heads * self.head_dim, kv_width, kv_width], dim=-1)
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q = q.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
        k = k.view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.write(layer, start, k, v)
        groups = self.num_heads // self.num_kv_heads
        if length == 1 and mask is None:
            # One query per head: fold the query heads that share a key/value head into the query axis, so MQA/GQA
            # reads each cached key once instead of repeating it per head. [B, H, 1, D] -> [B, Hkv, G, D]
            out = F.scaled_dot_product_attention(
                q.reshape(batch, self.num_kv_heads, groups, self.head_dim), k, v, scale=self.scale
            )
        else:
            if groups > 1:
                # [B, Hkv, S, D] -> [B, H, S, D]
                k = k[:, :, None].expand(-1, -1, groups, -1, -1).reshape(batch, self.num_heads, -1, self.head_dim)
                v = v[:, :, None].expand(-1, -1, groups, -1, -1).reshape(batch, self.num_heads, -1, self.head_dim)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        # [B, H, T, D] -> [B, T, H*D] (the decode layout [B, Hkv, G, D] has the same element order for T == 1)
        out = out.reshape(batch, self.num_heads, length, self.head_dim).transpose(1, 2).reshape(batch, length, -1)
        return self.o_proj(out)


class GemmaMLP(nn.Module):
    """GeGLU: down(gelu_tanh(gate(x)) * up(x))."""

    def __init__(self, config: GemmaConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.intermediate_size = config.intermediate_size
        self.gate_up: nn.Module | None = None  # fused gate/up projection, set by optimize_for_inference

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate_up is not None:
            gate, up = self.gate_up(x).split(self.intermediate_size, dim=-1)
        else:
            gate, up = self.gate_proj(x), self.up_proj(x)
        # Every activation name Gemma configs use means the tanh approximation.
        return self.down_proj(F.gelu(gate, approximate="tanh") * up)


class GemmaDecoderLayer(nn.Module):
    def __init__(self, config: GemmaConfig) -> None:
        super().__init__()
        self.input_layernorm = GemmaRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = GemmaAttention(config)
        self.post_attention_layernorm = GemmaRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = GemmaMLP(config)

    def forward(self, x, cos, sin, *, mask, cache, layer, start) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask=mask, cache=cache, layer=layer, start=start)
        return x + self.mlp(self.post_attention_layernorm(x))


class GemmaModel(nn.Module):
    def __init__(self, config: GemmaConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(GemmaDecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = GemmaRMSNorm(config.hidden_size, config.rms_norm_eps)


class GemmaForCausalLM(nn.Module):
    """``model`` holds the checkpoint's decoder; the output head is the embedding matrix unless the config unties
    it (then ``lm_head.weight`` is a checkpoint key)."""

    def __init__(self, config: GemmaConfig) -> None:
        super().__init__()
        self.config = config
        self.model = GemmaModel(config)
        if not config.tie_word_embeddings:
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self._head: nn.Module | None = None  # a packed copy of the output head, see optimize_for_inference
        # Computed on the CPU even when the model is built on the meta device: arange there goes through torch's
        # reference ops, whose first use imports torch._dynamo (seconds of a cold start). _init_buffers moves it.
        with torch.device("cpu"):
            inv_freq = rope_inverse_frequencies(config.head_dim, config.rope_theta)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def _init_buffers(self, device: torch.device) -> None:
        """Recompute the non-checkpoint buffers (RoPE frequencies) after building on the meta device."""
        self.inv_freq = rope_inverse_frequencies(self.config.head_dim, self.config.rope_theta).to(device)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings times sqrt(hidden); the factor is rounded to the weights' dtype first, as Gemma does."""
        weight = self.model.embed_tokens.weight
        scale = torch.tensor(math.sqrt(self.config.hidden_size), dtype=weight.dtype, device=weight.device)
        return self.model.embed_tokens(input_ids) * scale

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        if self._head is not None:
            return self._head(hidden)
        weight = self.lm_head.weight if not self.config.tie_word_embeddings else self.model.embed_tokens.weight
        return F.linear(hidden, weight)

    def new_cache(self, batch_size: int, max_length: int) -> StaticKVCache:
        weight = self.model.embed_tokens.weight
        return StaticKVCache(
            num_layers=self.config.num_hidden_layers, batch_size=batch_size,
            num_kv_heads=self.config.num_key_value_heads, max_length=max_length, head_dim=self.config.head_dim,
            dtype=weight.dtype, device=weight.device,
        )

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        positions: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        cache: StaticKVCache | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Logits [B, T, V] (or [B, V] for the last position only, which is all that generation needs).

        ``positions`` [T] are the RoPE positions of the inputs; ``mask`` is a boolean [T, S] (True = may attend) or
        None for full attention over everything so far; with ``cache``, the inputs continue at ``cache.length``.
        """
        hidden = inputs_embeds
        cos, sin = rope_cos_sin(positions, self.inv_freq, hidden.dtype)
        start = cache.length if cache is not None else 0
        for index, layer in enumerate(self.model.layers):
            hidden = layer(hidden, cos, sin, mask=mask, cache=cache, layer=index, start=start)
        if cache is not None:
            cache.advance(hidden.shape[1])
        if last_only:
            hidden = hidden[:, -1]
        return self.logits(self.model.norm(hidden))

    @torch.no_grad()
    def optimize_for_inference(self) -> bool:
        """Replace the decoder's linear layers by oneDNN-prepacked ones where that is faster (bf16 on CPU). The
        model can then only run inference. Returns whether anything was packed."""
        steps = self.packing_steps()
        for step in steps:
            step()
        return bool(steps) or self._head is not None

    def packing_steps(self) -> list[Callable[[], None]]:
        """The work of ``optimize_for_inference`` as one step per decoder layer and one for the output head, so a
        caller can spread it out: core/engine/idle_packer.py packs while the captioner is idle, after the first
        caption came from the plain weights (packing all of a 3B decoder takes seconds that a cold start should not
        wait for). Empty when packing does not apply or is done. Outputs are bitwise the same before, during and
        after packing. A step must not run during a forward pass (the caller serialises them)."""
        weight = self.model.embed_tokens.weight
        if not can_pack(weight.dtype, weight.device) or self.config.attention_bias:
            return []
        steps: list[Callable[[], None]] = [
            functools.partial(_pack_layer, layer) for layer in self.model.layers
            if layer.self_attn.qkv is None or layer.mlp.gate_up is None
        ]
        if self._head is None:
            # Last: it is the longest step (a 1 GB matrix for PaliGemma-3B), which a caption asking for the model, or
            # a CLI run closing, may have to wait for.
            steps.append(self._pack_head)
        return steps

    @torch.no_grad()
    def _pack_head(self) -> None:
        # The tied head also needs the plain matrix for embedding look-ups, so the packed head is a second copy.
        if self._head is not None:
            return
        tied = self.config.tie_word_embeddings
        self._head = PackedLinear(self.model.embed_tokens.weight if tied else self.lm_head.weight)
        if not tied:
            del self.lm_head


# The decoder weights that packing replaces (and frees): the loader may map them from the file instead of copying.
PACKED_PROJECTIONS = tuple(f"{name}.weight" for name in (
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
))


@torch.no_grad()
def _pack_layer(layer: GemmaDecoderLayer) -> None:
    """Fuse and prepack one decoder layer's projections (a no-op when done). One matrix-vector product instead of
    three (and two): fewer, longer weight reads. Each output row is still its own dot product, so the results are
    bitwise those of the separate projections. The plain weights are dropped as soon as their packed copy exists."""
    attn, mlp = layer.self_attn, layer.mlp
    if attn.qkv is None:
        attn.qkv = PackedLinear(torch.cat((attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight)))
        del attn.q_proj, attn.k_proj, attn.v_proj
        attn.o_proj = PackedLinear(attn.o_proj.weight)
    if mlp.gate_up is None:
        mlp.gate_up = PackedLinear(torch.cat((mlp.gate_proj.weight, mlp.up_proj.weight)))
        del mlp.gate_proj, mlp.up_proj
        mlp.down_proj = PackedLinear(mlp.down_proj.weight)
