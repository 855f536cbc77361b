"""What the command line (and anything else outside the training package) calls: train, evaluate, make datasets.

Models are named as everywhere else in VSearch: a local checkpoint folder, or a Hugging Face id already in the hub
cache (``settings.hub_cache_dir``); nothing here touches the network.

Importing this module does not import torch (the CLI builds its parser from it): the trainer and the embedder are
imported by the calls that need them, and TrainProgress, TrainResult and TrainingDiverged on first access.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vsearch_app.core.engine import hub
from vsearch_app.errors import InvalidArgumentError
from vsearch_app.settings import AppSettings
from vsearch_app.training.data import BAD_DATA_POLICIES, BadDataError, check_policy, load_dataset
from vsearch_app.training.evaluate import RetrievalReport, evaluate_embedder
from vsearch_app.training.shapes import ShapesRecipe, write_shapes_dataset

if TYPE_CHECKING:
    from vsearch_app.training.trainer import TrainingDiverged, TrainProgress, TrainResult

_FROM_TRAINER = ("TrainProgress", "TrainResult", "TrainingDiverged")  # torch-heavy: see __getattr__

__all__ = [
    "BAD_DATA_POLICIES", "BadDataError", "RetrievalReport", "TrainProgress", "TrainRequest", "TrainResult",
    "TrainingDiverged", "evaluate", "make_shapes", "make_tiny_model", "train",
]

log = logging.getLogger(__name__)


def __getattr__(name: str) -> object:
    """The trainer's public classes, imported (with torch) when first used."""
    if name in _FROM_TRAINER:
        return getattr(importlib.import_module("vsearch_app.training.trainer"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class TrainRequest:
    data: str
    model: str
    out: str
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.01
    loss: str = "sigmoid"
    freeze_vision: bool = False
    freeze_text: bool = False
    from_scratch: bool = False
    resume: bool = False
    seed: int = 0
    splits: Sequence[str] = ("train",)
    image_root: str | None = None
    on_bad_data: str = "stop"
    device: str = "auto"
    save_every_s: float = 120.0


def _model_dir(settings: AppSettings, model: str) -> Path:
    return hub.resolve_model_dir(model, settings.hub_cache_dir)


def train(
    settings: AppSettings,
    request: TrainRequest,
    *,
    on_progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train as ``request`` says and write a Hugging Face SigLIP checkpoint into ``request.out``."""
    from vsearch_app.core.engine.devices import resolve_device
    from vsearch_app.training.trainer import TrainConfig, train_model

    check_policy(request.on_bad_data)
    model_dir = _model_dir(settings, request.model)
    out = Path(request.out).expanduser()
    if out.resolve() == model_dir.resolve():
        raise InvalidArgumentError("--out must differ from the --model folder (training would overwrite its files)")
    dataset = load_dataset(request.data, splits=request.splits, image_root=request.image_root,
                           on_bad_data=request.on_bad_data)
    config = TrainConfig(
        epochs=request.epochs, batch_size=request.batch_size, lr=request.lr, weight_decay=request.weight_decay,
        loss=request.loss, freeze_vision=request.freeze_vision, freeze_text=request.freeze_text, seed=request.seed,
        from_scratch=request.from_scratch, save_every_s=request.save_every_s,
    )
    return train_model(
        model_dir, dataset, out, config, resume=request.resume, on_bad_data=request.on_bad_data,
        device=resolve_device(request.device), on_progress=on_progress, should_stop=should_stop,
    )


def evaluate(
    settings: AppSettings,
    data: str,
    model: str,
    *,
    splits: Sequence[str] = ("test",),
    image_root: str | None = None,
    on_bad_data: str = "stop",
    batch_size: int = 32,
    device: str = "auto",
    dtype: str = "float32",
    on_progress: Callable[[int, int], None] | None = None,
) -> RetrievalReport:
    """Image->text and text->image Recall@1/5/10 and ranks of ``model`` on ``data``, through our search engine."""
    from vsearch_app.core.engine.embedder import Embedder

    check_policy(on_bad_data)
    dataset = load_dataset(data, splits=splits, image_root=image_root, on_bad_data=on_bad_data)
    embedder = Embedder.load(_model_dir(settings, model), device=device, dtype=dtype, model_id=model)
    return evaluate_embedder(embedder, dataset, on_bad_data=on_bad_data, batch_size=batch_size,
                             on_progress=on_progress)


def make_shapes(out: str, *, n_train: int = ShapesRecipe.n_train, n_test: int = ShapesRecipe.n_test,
                image_size: int = ShapesRecipe.image_size, seed: int = 0) -> Path:
    """Write the synthetic shapes dataset (train/, test/, model/) into ``out``."""
    if n_train < 2 or n_test < 2:
        raise InvalidArgumentError("--n-train and --n-test must be at least 2")
    if image_size < 16 or image_size % 8:
        raise InvalidArgumentError("--image-size must be a multiple of 8, at least 16")
    recipe = ShapesRecipe(n_train=n_train, n_test=n_test, image_size=image_size, seed=seed)
    return write_shapes_dataset(Path(out).expanduser(), recipe)


def make_tiny_model(folder: Path) -> Path:
    """A tiny random SigLIP checkpoint in ``folder`` (a second or two, offline): what `vsearch self-test` searches
    with. Random weights rank nothing sensibly; they exercise loading, embedding, indexing and searching.

    Written by VSearch's own model code (the shapes task's tiny config, initialised as for training from scratch), not
    by `transformers`: the installed app leaves transformers out, and the installers run the self-test inside it."""
    from vsearch_app.training.checkpoint import export_hf_checkpoint
    from vsearch_app.training.shapes import write_tiny_model_config
    from vsearch_app.training.trainer import build_model

    folder = Path(folder)
    write_tiny_model_config(folder, hidden=32)
    model = build_model(folder, from_scratch=True, loss="sigmoid", seed=0)
    return export_hf_checkpoint(model, folder, folder)
