"""Retrieval evaluation: Recall@K and mean rank in both directions, from a text x image similarity matrix.

- text -> image: each caption's ground truth is the one image it belongs to;
- image -> text: an image's ground truth is any of its captions (its rank is that of its best-placed caption).

Ties count against the model: a ground truth scored equal to a wrong candidate is ranked behind it, so a model that
gives every pair the same score gets the worst ranks rather than a perfect Recall@1.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vsearch_app.training.data import CaptionDataset, DataIssue, handle_issues

log = logging.getLogger(__name__)

RECALL_KS = (1, 5, 10)


@dataclass(frozen=True)
class DirectionMetrics:
    recall: dict[int, float]  # K -> fraction of queries whose ground truth ranks within the top K
    mean_rank: float
    median_rank: float

    def to_json(self) -> dict[str, float]:
        out: dict[str, float] = {f"R@{k}": v for k, v in self.recall.items()}
        out["mean_rank"] = self.mean_rank
        out["median_rank"] = self.median_rank
        return out


@dataclass(frozen=True)
class RetrievalReport:
    image_to_text: DirectionMetrics
    text_to_image: DirectionMetrics
    n_images: int
    n_texts: int

    def to_json(self) -> dict:
        return {
            "image_to_text": self.image_to_text.to_json(),
            "text_to_image": self.text_to_image.to_json(),
            "n_images": self.n_images,
            "n_texts": self.n_texts,
        }


def _summarise(ranks: np.ndarray, ks: Sequence[int]) -> DirectionMetrics:
    return DirectionMetrics(
        recall={k: float(np.mean(ranks <= k)) for k in ks},
        mean_rank=float(np.mean(ranks)),
        median_rank=float(np.median(ranks)),
    )


def text_to_image_ranks(similarity: np.ndarray, text_image: Sequence[int]) -> np.ndarray:
    """1-based rank of each text's image among all images (ties against the model)."""
    owner = np.asarray(text_image)
    truth = similarity[np.arange(len(owner)), owner][:, None]
    # Every other image scoring at least as high as the truth is ranked before it.
    return (similarity >= truth).sum(axis=1)


def image_to_text_ranks(similarity: np.ndarray, text_image: Sequence[int]) -> np.ndarray:
    """1-based rank of each image's best caption among all texts (ties against the model)."""
    owner = np.asarray(text_image)
    n_images = similarity.shape[1]
    ranks = np.empty(n_images, dtype=np.int64)
    for image in range(n_images):
        scores = similarity[:, image]
        mine = owner == image
        if not mine.any():
            raise ValueError(f"image {image} has no caption")
        best = scores[mine].max()
        ranks[image] = 1 + int((scores[~mine] >= best).sum())
    return ranks


def retrieval_metrics(similarity: np.ndarray, text_image: Sequence[int], ks: Sequence[int] = RECALL_KS
                      ) -> RetrievalReport:
    """Metrics from ``similarity`` [n_texts, n_images] where text ``t`` belongs to image ``text_image[t]``."""
    similarity = np.asarray(similarity, dtype=np.float64)
    if similarity.ndim != 2 or similarity.shape[0] != len(text_image):
        raise ValueError(f"similarity {similarity.shape} does not match {len(text_image)} texts")
    return RetrievalReport(
        image_to_text=_summarise(image_to_text_ranks(similarity, text_image), ks),
        text_to_image=_summarise(text_to_image_ranks(similarity, text_image), ks),
        n_images=similarity.shape[1],
        n_texts=similarity.shape[0],
    )


def evaluate_embedder(
    embedder,
    dataset: CaptionDataset,
    *,
    on_bad_data: str = "stop",
    batch_size: int = 32,
    on_progress: Callable[[int, int], None] | None = None,
) -> RetrievalReport:
    """Embed the dataset's images and captions with ``embedder`` (core.engine.embedder.Embedder) and score retrieval.
    Images that fail to decode follow the bad-data policy (their captions leave the evaluation with them)."""
    items = dataset.items
    result = embedder.embed_images([item.image for item in items], batch_size=batch_size, on_batch=on_progress)
    issues = [DataIssue(items[pos].where, f"cannot read image {items[pos].image}: {reason}")
              for pos, reason in result.failures]
    handle_issues(issues, on_bad_data, total=len(items), what="images")
    kept = [items[pos] for pos in result.indices]
    texts = [caption for item in kept for caption in item.captions]
    owners = [row for row, item in enumerate(kept) for _ in item.captions]
    text_vectors = embedder.embed_texts(texts, batch_size=batch_size)
    similarity = text_vectors @ result.vectors.T
    report = retrieval_metrics(similarity, owners)
    log.info("evaluated %d images and %d captions from %s", report.n_images, report.n_texts, dataset.source)
    return report
