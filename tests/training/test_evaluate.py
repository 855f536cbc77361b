"""Retrieval metrics on hand-made similarity matrices, where the right answer can be worked out by eye."""

from __future__ import annotations

import numpy as np
import pytest

from vsearch_app.training.evaluate import image_to_text_ranks, retrieval_metrics, text_to_image_ranks


def test_perfect_diagonal_gives_recall_one():
    report = retrieval_metrics(np.eye(4), [0, 1, 2, 3])
    assert report.text_to_image.recall == {1: 1.0, 5: 1.0, 10: 1.0}
    assert report.image_to_text.recall[1] == 1.0
    assert report.text_to_image.mean_rank == 1.0
    assert (report.n_images, report.n_texts) == (4, 4)


def test_text_to_image_ranks_worked_example():
    # 3 texts x 3 images; text 0 -> image 0 (ranked 2nd), text 1 -> image 1 (1st), text 2 -> image 2 (3rd)
    sim = np.array([
        [0.5, 0.9, 0.1],
        [0.2, 0.8, 0.3],
        [0.7, 0.6, 0.1],
    ])
    assert text_to_image_ranks(sim, [0, 1, 2]).tolist() == [2, 1, 3]
    report = retrieval_metrics(sim, [0, 1, 2], ks=(1, 2))
    assert report.text_to_image.recall == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3)}
    assert report.text_to_image.mean_rank == pytest.approx(2.0)


def test_image_to_text_counts_any_of_its_captions():
    # texts 0, 1 belong to image 0; text 2 to image 1
    sim = np.array([
        [0.1, 0.9],   # caption A of image 0: closer to image 1
        [0.8, 0.2],   # caption B of image 0: the best text for image 0
        [0.9, 0.3],   # caption of image 1: beats caption B for image 0, loses to caption A for image 1
    ])
    # image 0: best own caption scores 0.8, one foreign text (0.9) above it -> rank 2
    # image 1: own caption scores 0.3, foreign texts 0.9 and 0.2 -> one above -> rank 2
    assert image_to_text_ranks(sim, [0, 0, 1]).tolist() == [2, 2]
    # text -> image: text 0 ranks image 0 second; text 1 first; text 2 ranks image 1 second
    assert text_to_image_ranks(sim, [0, 0, 1]).tolist() == [2, 1, 2]
    report = retrieval_metrics(sim, [0, 0, 1])
    assert report.image_to_text.recall[1] == 0.0
    assert report.text_to_image.recall[1] == pytest.approx(1 / 3)
    assert report.n_texts == 3 and report.n_images == 2


def test_ties_count_against_the_model():
    constant = np.zeros((3, 3))
    report = retrieval_metrics(constant, [0, 1, 2])
    assert report.text_to_image.recall[1] == 0.0
    assert report.text_to_image.mean_rank == 3.0
    assert report.image_to_text.mean_rank == 3.0


def test_recall_at_k_beyond_candidates_and_json_shape():
    rng = np.random.default_rng(0)
    sim = rng.normal(size=(12, 6))
    owners = [i // 2 for i in range(12)]
    report = retrieval_metrics(sim, owners)
    assert report.text_to_image.recall[10] == 1.0  # only 6 images: everything is in the top 10
    doc = report.to_json()
    assert set(doc) == {"image_to_text", "text_to_image", "n_images", "n_texts"}
    assert {"R@1", "R@5", "R@10"} <= set(doc["text_to_image"]) and {"R@1", "R@5", "R@10"} <= set(doc["image_to_text"])
    assert doc["n_images"] == 6 and doc["n_texts"] == 12
    ranks = text_to_image_ranks(sim, owners)
    brute = [1 + sum(sim[t, j] >= sim[t, owners[t]] for j in range(6) if j != owners[t]) for t in range(12)]
    assert ranks.tolist() == brute


def test_shape_mismatch_and_captionless_image_are_errors():
    with pytest.raises(ValueError, match="does not match"):
        retrieval_metrics(np.zeros((2, 2)), [0, 1, 1])
    with pytest.raises(ValueError, match="no caption"):
        retrieval_metrics(np.zeros((2, 3)), [0, 1])
