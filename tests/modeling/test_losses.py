"""The contrastive losses against their formulas written out element by element."""

from __future__ import annotations

import math

import pytest
import torch

from vsearch_app.modeling.losses import (
    LOSS_INIT,
    contrastive_loss,
    pair_logits,
    sigmoid_loss,
    softmax_loss,
)


def _direct_sigmoid(logits: list[list[float]]) -> float:
    n = len(logits)
    total = 0.0
    for i in range(n):
        for j in range(n):
            z = 1.0 if i == j else -1.0
            total += math.log(1.0 / (1.0 + math.exp(-z * logits[i][j])))
    return -total / n


def _direct_softmax(logits: list[list[float]]) -> float:
    n = len(logits)
    rows = sum(-logits[i][i] + math.log(sum(math.exp(v) for v in logits[i])) for i in range(n)) / n
    cols = sum(-logits[j][j] + math.log(sum(math.exp(logits[i][j]) for i in range(n))) for j in range(n)) / n
    return (rows + cols) / 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigmoid_loss_matches_the_paper_formula(seed):
    torch.manual_seed(seed)
    images, texts = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    scale = torch.tensor([math.log(10.0)], dtype=torch.float64)
    bias = torch.tensor([-10.0], dtype=torch.float64)
    logits = pair_logits(images, texts, scale, bias)
    # logits written out: t * x_i . y_j + b with unit vectors
    x = images / images.norm(dim=-1, keepdim=True)
    y = texts / texts.norm(dim=-1, keepdim=True)
    expected_logits = [[10.0 * float(x[i] @ y[j]) - 10.0 for j in range(5)] for i in range(5)]
    assert torch.allclose(logits, torch.tensor(expected_logits, dtype=torch.float64), atol=1e-12)
    assert sigmoid_loss(logits).item() == pytest.approx(_direct_sigmoid(expected_logits), rel=1e-12)


def test_sigmoid_loss_hand_computed_two_by_two():
    logits = torch.tensor([[2.0, -1.0], [0.5, 3.0]], dtype=torch.float64)
    # -1/2 * [log s(2) + log s(1) + log s(-0.5) + log s(3)]
    s = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    expected = -(math.log(s(2)) + math.log(s(1)) + math.log(s(-0.5)) + math.log(s(3))) / 2
    assert sigmoid_loss(logits).item() == pytest.approx(expected, rel=1e-12)


def test_sigmoid_loss_is_stable_for_extreme_logits():
    logits = torch.tensor([[200.0, -300.0], [-250.0, 150.0]])
    assert sigmoid_loss(logits).item() == pytest.approx(0.0, abs=1e-6)
    wrong = torch.tensor([[-200.0, 300.0], [250.0, -150.0]])
    assert torch.isfinite(sigmoid_loss(wrong))
    assert sigmoid_loss(wrong).item() == pytest.approx((200 + 300 + 250 + 150) / 2, rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_softmax_loss_matches_cross_entropy_written_out(seed):
    torch.manual_seed(seed)
    logits = torch.randn(4, 4, dtype=torch.float64) * 3
    assert softmax_loss(logits).item() == pytest.approx(_direct_softmax(logits.tolist()), rel=1e-12)


def test_softmax_loss_ignores_a_bias_and_sigmoid_loss_does_not():
    torch.manual_seed(3)
    logits = torch.randn(4, 4)
    assert softmax_loss(logits + 7.0).item() == pytest.approx(softmax_loss(logits).item(), rel=1e-5)
    assert sigmoid_loss(logits + 7.0).item() != pytest.approx(sigmoid_loss(logits).item(), rel=1e-3)


def test_temperature_and_bias_receive_gradients():
    torch.manual_seed(0)
    images = torch.randn(6, 4, requires_grad=True)
    texts = torch.randn(6, 4, requires_grad=True)
    scale = torch.tensor([LOSS_INIT["sigmoid"][0]], requires_grad=True)
    bias = torch.tensor([LOSS_INIT["sigmoid"][1]], requires_grad=True)
    sigmoid_loss(pair_logits(images, texts, scale, bias)).backward()
    for tensor in (images, texts, scale, bias):
        assert tensor.grad is not None and torch.count_nonzero(tensor.grad) > 0


def test_paper_initialisation_values():
    assert LOSS_INIT["sigmoid"] == (pytest.approx(math.log(10.0)), -10.0)
    assert math.exp(LOSS_INIT["softmax"][0]) == pytest.approx(1 / 0.07)


def test_losses_reward_matching_pairs():
    aligned = torch.eye(4) * 20 - 10  # positives +10, negatives -10
    shuffled = aligned[[1, 0, 3, 2]]
    for name in ("sigmoid", "softmax"):
        assert contrastive_loss(name, aligned) < contrastive_loss(name, shuffled)


def test_unknown_loss_and_non_square_logits_are_rejected():
    with pytest.raises(ValueError, match="unknown loss"):
        contrastive_loss("hinge", torch.zeros(2, 2))
    with pytest.raises(ValueError, match="square"):
        sigmoid_loss(torch.zeros(2, 3))
