"""Shared fixtures. Tests run offline: models are tiny random checkpoints built here, never downloaded."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"  # a test that reaches for the network must fail, not hang

import pytest  # noqa: E402

from tests.support.tiny_models import make_tiny_siglip  # noqa: E402


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory):
    """A tiny random SigLIP-2-like checkpoint folder (word tokenizer, 32 px images, 32-dim vectors)."""
    return make_tiny_siglip(tmp_path_factory.mktemp("tiny_siglip"))


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path, monkeypatch):
    """No test reads or writes the real user's data directory or hub cache."""
    monkeypatch.setenv("VSEARCH_DATA_DIR", str(tmp_path / "vsearch-data"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub-cache"))


@pytest.fixture(scope="session")
def trained_shapes_model(request, tmp_path_factory):
    """A tiny SigLIP that really learned the synthetic shapes task ("a red circle" finds red circles): built once
    (about two minutes on an idle 2-core CPU), cached in .pytest_cache across runs. Has ``.model_dir`` (load it with
    ``Embedder.load``) and ``.data_dir`` (its dataset). See README, "Testing with the trained model"."""
    from tests.training.trained_model import trained_shapes_model as build

    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider: build into a temp dir
    root = cache.mkdir("vsearch-trained-shapes") if cache is not None else tmp_path_factory.mktemp("trained-shapes")
    return build(root)
