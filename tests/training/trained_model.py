"""Builds (once, then cached across test runs) a tiny SigLIP trained on the synthetic shapes set.

The cache key hashes the recipe and the source of every module that decides the trained weights, so a change to
the trainer, the model or the preprocessing retrains it; otherwise later runs reuse it in a second. It lives in
pytest's cache folder (``.pytest_cache``); CI starts clean and builds it once per run (about two minutes on an idle
2-core CPU, more when the machine is busy).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from vsearch_app.training.shapes import ShapesRecipe

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parents[2] / "vsearch_app"
# Sources whose behaviour the trained weights depend on.
KEY_SOURCES = (
    "training/shapes.py", "training/trainer.py", "training/data.py", "training/checkpoint.py",
    "modeling/siglip.py", "modeling/layers.py", "modeling/losses.py", "modeling/config.py",
    "preprocessing/image.py", "preprocessing/text.py",
)
MODEL_SUBDIR = "model"
DATA_SUBDIR = "shapes"


@dataclass(frozen=True)
class FixtureRecipe:
    """The README's recipe ("Training and evaluation"): `vsearch make-shapes` defaults, then 70 epochs of batch 256,
    lr 2e-3, weight decay 0.05, so the figures the README states hold for the fixture too."""

    n_train: int = 6000
    n_test: int = 100
    epochs: int = 70
    short_caption_probability: float = ShapesRecipe.short_caption_probability
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class TrainedShapesModel:
    """``model_dir``: a Hugging Face SigLIP folder (``Embedder.load(model_dir)``); ``data_dir``: the shapes dataset
    it was trained on (``train/``, ``test/`` with held-out colour-shape pairs)."""

    model_dir: Path
    data_dir: Path


def cache_key(recipe: FixtureRecipe) -> str:
    digest = hashlib.sha256(json.dumps(asdict(recipe), sort_keys=True).encode())
    for name in KEY_SOURCES:
        path = PACKAGE / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()[:16]


def _build(folder: Path, recipe: FixtureRecipe) -> None:
    from vsearch_app.training.data import load_dataset
    from vsearch_app.training.shapes import ShapesRecipe, write_shapes_dataset
    from vsearch_app.training.trainer import TrainConfig, train_model

    data = write_shapes_dataset(folder / DATA_SUBDIR, ShapesRecipe(
        n_train=recipe.n_train, n_test=recipe.n_test, seed=recipe.seed,
        short_caption_probability=recipe.short_caption_probability))
    config = TrainConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
                         weight_decay=recipe.weight_decay, seed=recipe.seed, from_scratch=True, save_every_s=1e9)
    result = train_model(data / "model", load_dataset(data / "train"), folder / MODEL_SUBDIR, config)
    log.info("trained the shapes fixture model in %.0f s (final loss %.3f)", result.seconds, result.final_loss)


def trained_shapes_model(cache_root: Path, recipe: FixtureRecipe = FixtureRecipe()) -> TrainedShapesModel:
    """The cached model for ``recipe`` under ``cache_root``, built first if missing or out of date."""
    key = cache_key(recipe)
    folder = cache_root / key
    if not (folder / MODEL_SUBDIR / "model.safetensors").is_file():
        staging = cache_root / f"{key}.building-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            _build(staging, recipe)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for stale in cache_root.iterdir():  # older keys are models of older code
            if stale.name != key and ".building-" not in stale.name:
                shutil.rmtree(stale, ignore_errors=True)
    return TrainedShapesModel(folder / MODEL_SUBDIR, folder / DATA_SUBDIR)
