"""Sampling as maths: greedy, temperature, the top-p nucleus, seeds, and empirical frequencies."""

from __future__ import annotations

import pytest
import torch

from vsearch_app.errors import InvalidArgumentError
from vsearch_app.modeling.sampling import (
    GenerationParams,
    apply_temperature,
    greedy,
    next_token,
    nucleus_distribution,
    sample,
    top_p_mask,
)

PROBS = torch.tensor([0.05, 0.4, 0.1, 0.3, 0.15])  # sorted: 1 (0.4), 3 (0.3), 4 (0.15), 2 (0.1), 0 (0.05)
LOGITS = PROBS.log()


def test_greedy_picks_the_largest_logit():
    assert int(greedy(LOGITS)) == 1
    assert greedy(torch.stack([LOGITS, -LOGITS])).tolist() == [1, 0]


@pytest.mark.parametrize(
    ("top_p", "nucleus"),
    [(0.3, {1}), (0.4, {1}), (0.41, {1, 3}), (0.7, {1, 3}), (0.71, {1, 3, 4}), (0.95, {1, 3, 4, 2}),
     (0.951, {0, 1, 2, 3, 4}), (1.0, {0, 1, 2, 3, 4})],
)
def test_nucleus_is_the_smallest_prefix_reaching_top_p(top_p, nucleus):
    mask = top_p_mask(PROBS, top_p)
    assert set(torch.nonzero(mask).flatten().tolist()) == nucleus


def test_nucleus_always_keeps_one_token():
    peaked = torch.tensor([0.999, 0.0005, 0.0005])
    for top_p in (1e-9, 0.1, 0.5):
        assert top_p_mask(peaked, top_p).tolist() == [True, False, False]


@pytest.mark.parametrize("top_p", [0.2, 0.5, 0.75, 0.9])
def test_sampling_never_leaves_the_nucleus(top_p):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(64, generator=generator) * 3
    allowed = top_p_mask(torch.softmax(logits, -1), top_p)
    draws = [int(sample(logits, 1.0, top_p, generator)) for _ in range(400)]
    assert all(allowed[d] for d in draws)


def test_temperature_divides_the_logits():
    assert torch.allclose(apply_temperature(LOGITS, 0.5), LOGITS * 2)
    hot = nucleus_distribution(LOGITS, 2.0, 1.0)
    assert torch.allclose(hot, torch.softmax(LOGITS / 2.0, -1))
    # Low temperature approaches greedy, high temperature approaches uniform.
    assert nucleus_distribution(LOGITS, 0.01, 1.0)[1] > 0.999
    assert torch.allclose(nucleus_distribution(LOGITS, 1e4, 1.0), torch.full((5,), 0.2), atol=1e-3)
    with pytest.raises(ValueError):
        apply_temperature(LOGITS, 0.0)


def test_fixed_seed_reproduces_the_draws():
    params = GenerationParams(do_sample=True, temperature=1.0, top_p=0.95, seed=1234)
    logits = torch.randn(50, generator=torch.Generator().manual_seed(1))

    def run():
        generator = params.make_generator()
        return [next_token(logits, params, generator) for _ in range(30)]

    first = run()
    assert first == run()
    assert len(set(first)) > 1
    other = GenerationParams(do_sample=True, temperature=1.0, top_p=0.95, seed=99)
    generator = other.make_generator()
    assert [next_token(logits, other, generator) for _ in range(30)] != first


def test_empirical_frequencies_match_the_truncated_distribution():
    temperature, top_p, draws = 0.7, 0.8, 20000
    expected = nucleus_distribution(LOGITS, temperature, top_p)
    # Truncated and renormalised by hand: softmax(log p / T) over the nucleus {1, 3, 4}.
    tempered = PROBS ** (1 / temperature)
    tempered = tempered / tempered.sum()
    manual = torch.zeros(5)
    manual[[1, 3, 4]] = tempered[[1, 3, 4]] / tempered[[1, 3, 4]].sum()
    assert torch.allclose(expected, manual, atol=1e-6)
    generator = torch.Generator().manual_seed(7)
    counts = torch.bincount(sample(LOGITS.expand(draws, 5), temperature, top_p, generator), minlength=5)
    freqs = counts.float() / draws
    assert counts[0] == 0 and counts[2] == 0
    # 5 standard errors of a binomial proportion: a correct sampler fails this with probability ~1e-6.
    tolerance = 5 * torch.sqrt(manual * (1 - manual) / draws) + 1e-9
    assert torch.all((freqs - manual).abs() <= tolerance), (freqs, manual)


@pytest.mark.parametrize(
    "kwargs",
    [dict(max_new_tokens=0), dict(top_p=0.0), dict(top_p=1.5), dict(do_sample=True, temperature=0.0),
     dict(do_sample=True, temperature=-1.0)],
)
def test_invalid_params_are_user_errors(kwargs):
    with pytest.raises(InvalidArgumentError):
        GenerationParams(**kwargs)


def test_greedy_ignores_temperature():
    params = GenerationParams(do_sample=False, temperature=0.0)
    assert next_token(LOGITS, params, None) == 1
