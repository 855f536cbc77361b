"""Generation for PaliGemma in explicit phases: encode the image once, prefill the prefix into a preallocated KV
cache, then decode one token per step reading only the cache (the vision tower never runs again).

Generation stops at a stop token (``<eos>``, and the newline for captions), after ``max_new_tokens``, or when
``should_stop()`` returns True between two steps. ``on_token(token_id)`` is called for every new token as soon as
it is chosen, so a caller can stream text. ``use_cache=False`` recomputes the whole sequence every step; it exists to
check the cache and to measure what the cache buys.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Sequence

import torch

from vsearch_app.modeling.paligemma import PaliGemmaForConditionalGeneration
from vsearch_app.modeling.sampling import GenerationParams, next_token


@dataclasses.dataclass(frozen=True)
class GenerationOutput:
    token_ids: list[int]
    stop_reason: str  # "stop_token", "max_tokens" or "cancelled"
    prefill_s: float  # image encoding + prefix prefill + choosing the first token
    decode_s: float  # every later step

    @property
    def decode_tokens_per_s(self) -> float:
        steps = len(self.token_ids) - 1
        return steps / self.decode_s if steps > 0 and self.decode_s > 0 else 0.0


@torch.inference_mode()
def generate(
    model: PaliGemmaForConditionalGeneration,
    input_ids: Sequence[int] | torch.Tensor,
    pixel_values: torch.Tensor,
    params: GenerationParams,
    *,
    stop_token_ids: Collection[int] = (),
    on_token: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    use_cache: bool = True,
) -> GenerationOutput:
    """Generate up to ``params.max_new_tokens`` tokens after the prefix ``input_ids`` (one sequence, whose
    ``<image>`` placeholders receive ``pixel_values`` [1, 3, H, W]). Returned ids include the stop token, if any."""
    ids = torch.as_tensor(input_ids, dtype=torch.long, device=model.device).reshape(1, -1)
    prefix = ids.shape[1]
    lm = model.language_model
    generator = params.make_generator() if params.do_sample else None
    stops = set(stop_token_ids)

    started = time.perf_counter()
    prefix_embeds = model.embed_prefix(ids, model.encode_image(pixel_values))
    cache = lm.new_cache(1, prefix + params.max_new_tokens) if use_cache else None
    logits = lm(prefix_embeds, model.positions(0, prefix), cache=cache, last_only=True)
    tokens: list[int] = []
    prefill_s = 0.0
    reason = "max_tokens"
    while True:
        token = next_token(logits, params, generator)
        tokens.append(token)
        if len(tokens) == 1:
            prefill_s = time.perf_counter() - started
            started = time.perf_counter()
        if on_token is not None:
            on_token(token)
        if token in stops:
            reason = "stop_token"
            break
        if len(tokens) >= params.max_new_tokens:
            break
        if should_stop is not None and should_stop():
            reason = "cancelled"
            break
        step_ids = torch.tensor([[token]], dtype=torch.long, device=model.device)
        if cache is not None:
            logits = lm(lm.embed(step_ids), model.positions(prefix + len(tokens) - 1, 1), cache=cache,
                        last_only=True)
        else:
            generated = torch.tensor([tokens], dtype=torch.long, device=model.device)
            embeds = torch.cat((prefix_embeds, lm.embed(generated)), dim=1)
            total = embeds.shape[1]
            mask = model.prefix_lm_mask(total, prefix, model.device)
            logits = lm(embeds, model.positions(0, total), mask=mask, last_only=True)
    decode_s = time.perf_counter() - started if len(tokens) > 1 else 0.0
    return GenerationOutput(tokens, reason, prefill_s, decode_s)
