"""Choosing the next token from logits: greedy, temperature and nucleus (top-p) sampling, as pure functions.

Definitions used here:
- temperature T: logits are divided by T before the softmax (T < 1 sharpens, T > 1 flattens).
- top-p: keep the smallest set of most probable tokens whose total probability reaches p (at least one token is
  always kept), renormalise, and sample from that set. Ties at the boundary are broken by the sort order.
All arithmetic is in float32 whatever the model's dtype, and sampling draws from an explicit torch.Generator so a
seed reproduces a caption exactly.
"""

from __future__ import annotations

import dataclasses

import torch

from vsearch_app.errors import InvalidArgumentError


@dataclasses.dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 100
    do_sample: bool = False
    temperature: float = 0.8
    top_p: float = 0.9
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int):
            raise InvalidArgumentError("max tokens must be a whole number")
        if self.max_new_tokens < 1:
            raise InvalidArgumentError(f"max tokens must be at least 1 (got {self.max_new_tokens})")
        if not (0.0 < self.top_p <= 1.0):
            raise InvalidArgumentError(f"top-p must be in (0, 1] (got {self.top_p})")
        if self.do_sample and not self.temperature > 0.0:
            raise InvalidArgumentError(f"temperature must be greater than 0 when sampling (got {self.temperature})")

    def make_generator(self) -> torch.Generator:
        generator = torch.Generator(device="cpu")
        if self.seed is None:
            generator.seed()
        else:
            generator.manual_seed(self.seed)
        return generator


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """Index of the largest logit along the last axis (the first one on ties)."""
    return torch.argmax(logits, dim=-1)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    if not temperature > 0.0:
        raise ValueError("temperature must be positive")
    return logits.float() / temperature


def top_p_mask(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Boolean mask (same shape as ``probs``, last axis = vocabulary) of the nucleus: the most probable tokens whose
    cumulative probability first reaches ``top_p``. The most probable token is always inside."""
    if not (0.0 < top_p <= 1.0):
        raise ValueError("top_p must be in (0, 1]")
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # mass of strictly more probable tokens
    keep_sorted = before < top_p
    keep_sorted[..., 0] = True
    mask = torch.zeros_like(keep_sorted)
    return mask.scatter(-1, order, keep_sorted)


def nucleus_distribution(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The distribution top-p sampling draws from: softmax(logits / T) truncated to the nucleus, renormalised."""
    probs = torch.softmax(apply_temperature(logits, temperature), dim=-1)
    if top_p < 1.0:
        probs = torch.where(top_p_mask(probs, top_p), probs, torch.zeros_like(probs))
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def sample(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator) -> torch.Tensor:
    """Draw one token index per row of ``logits`` [..., V] from the nucleus distribution."""
    probs = nucleus_distribution(logits.detach().to("cpu"), temperature, top_p)
    flat = probs.reshape(-1, probs.shape[-1])
    picked = torch.multinomial(flat, 1, generator=generator).squeeze(-1)
    return picked.reshape(probs.shape[:-1])


def next_token(logits: torch.Tensor, params: GenerationParams, generator: torch.Generator | None) -> int:
    """The next token for a single sequence's last-position logits [V] or [1, V]."""
    if not params.do_sample:
        return int(greedy(logits.reshape(-1)))
    if generator is None:
        generator = params.make_generator()
    return int(sample(logits.reshape(-1), params.temperature, params.top_p, generator))
