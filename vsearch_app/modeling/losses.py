"""Contrastive image-text losses: SigLIP's pairwise sigmoid loss and CLIP's softmax loss, for training and comparison.

Both take the pair logits of a batch, ``logits[i, j] = t * <x_i, y_j> + b`` for L2-normalised image vectors ``x`` and
text vectors ``y`` (``t = exp(t')``, the learnable temperature), where image ``i`` and text ``i`` belong together.

- Sigmoid (Zhai et al. 2023, "Sigmoid Loss for Language Image Pre-Training"): every pair is an independent binary
  classification, positive on the diagonal and negative elsewhere:
  ``L = -1/|B| * sum_i sum_j log sigmoid(z_ij * logits_ij)`` with ``z_ij = 1`` if ``i == j`` else ``-1``.
  The paper initialises ``t' = log 10`` and ``b = -10`` so that the many negatives start out with a small loss.
- Softmax (Radford et al. 2021, CLIP): cross-entropy over each row (image -> texts) and each column (text ->
  images), averaged. A bias adds the same constant to every logit of a row or column, so it has no effect here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# (t', b) initial values per loss. SigLIP's are from its paper; CLIP's temperature is 0.07 (t' = log(1/0.07)).
SIGMOID_INIT = (math.log(10.0), -10.0)
SOFTMAX_INIT = (math.log(1 / 0.07), 0.0)
LOSS_INIT = {"sigmoid": SIGMOID_INIT, "softmax": SOFTMAX_INIT}


def pair_logits(
    image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor, logit_bias: torch.Tensor
) -> torch.Tensor:
    """logits [N_img, N_txt] = exp(t') * cos(image, text) + b, from unnormalised embeddings."""
    image_embeds = F.normalize(image_embeds, dim=-1)
    text_embeds = F.normalize(text_embeds, dim=-1)
    return image_embeds @ text_embeds.t() * logit_scale.exp() + logit_bias


def sigmoid_loss(logits: torch.Tensor) -> torch.Tensor:
    """SigLIP loss for a square batch of pair logits with the matching pairs on the diagonal."""
    _check_square(logits)
    n = logits.shape[0]
    # z = +1 on the diagonal, -1 elsewhere; log sigmoid(z * logit) is the numerically stable form.
    labels = 2 * torch.eye(n, device=logits.device, dtype=logits.dtype) - 1
    return -F.logsigmoid(labels * logits).sum() / n


def softmax_loss(logits: torch.Tensor) -> torch.Tensor:
    """CLIP loss: mean of the image->text and text->image cross-entropies, targets on the diagonal."""
    _check_square(logits)
    targets = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


LOSSES = {"sigmoid": sigmoid_loss, "softmax": softmax_loss}


def contrastive_loss(name: str, logits: torch.Tensor) -> torch.Tensor:
    try:
        loss_fn = LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
    return loss_fn(logits)


def _check_square(logits: torch.Tensor) -> None:
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"expected square pair logits [B, B], got {tuple(logits.shape)}")
