"""Contrastive training of our SigLIP on captioned images: fine-tuning a checkpoint, or a tiny model from scratch.

One step: a batch of images, one of each image's captions picked at random, pair logits ``t * cos + b`` and the
sigmoid (SigLIP) or softmax (CLIP) loss; AdamW with linear warm-up and cosine decay. Norms, biases, embeddings,
the attention-pool probe, the temperature and the bias get no weight decay.

Determinism and resume: the data order and the caption choices of epoch ``e`` come from a generator seeded with
(seed, e), not from a running RNG, so a run resumed from a checkpoint takes exactly the batches the uninterrupted
run would have taken (the checkpoint also keeps the optimizer moments and the global RNG states).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vsearch_app.errors import CheckpointError, InvalidArgumentError
from vsearch_app.modeling.config import SiglipConfig
from vsearch_app.modeling.losses import LOSS_INIT, LOSSES, contrastive_loss, pair_logits
from vsearch_app.modeling.siglip import SiglipModel
from vsearch_app.modeling.weights import load_strict, read_config, read_safetensors
from vsearch_app.preprocessing.image import ImageTransform, open_image
from vsearch_app.preprocessing.text import TextTokenizer
from vsearch_app.training import checkpoint
from vsearch_app.training.data import CaptionDataset, DataIssue, handle_issues

log = logging.getLogger(__name__)

# Datasets whose decoded pixels fit in this many bytes are decoded once and kept in memory.
PRELOAD_BUDGET_BYTES = 768 * 1024 * 1024


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int | None = None  # default: 10 % of the steps, at most 100
    loss: str = "sigmoid"
    freeze_vision: bool = False
    freeze_text: bool = False
    seed: int = 0
    from_scratch: bool = False
    save_every_s: float = 120.0  # a resumable checkpoint at most this often (and always when stopped)

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise InvalidArgumentError(f"--loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if self.epochs < 1 or self.batch_size < 2:
            raise InvalidArgumentError("--epochs must be >= 1 and --batch-size >= 2 (contrastive losses need pairs)")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InvalidArgumentError(f"--lr must be a positive number, not {self.lr}")
        if self.freeze_vision and self.freeze_text:
            raise InvalidArgumentError("--freeze-vision and --freeze-text together leave nothing to train")


@dataclass(frozen=True)
class TrainProgress:
    step: int
    total_steps: int
    epoch: int
    loss: float  # smoothed over recent steps
    steps_per_s: float
    eta_s: float


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    steps: int
    total_steps: int
    final_loss: float
    seconds: float
    stopped: bool  # True: interrupted by should_stop; a checkpoint was saved, continue with --resume
    losses: tuple[float, ...]  # per step, of this session


class TrainingDiverged(InvalidArgumentError):
    """The loss became NaN or infinite."""


def initialise_weights(model: SiglipModel, loss: str = "sigmoid", *, seed: int = 0) -> None:
    """Random initial weights for training from scratch: truncated normal (std 0.02) for linear, convolution and
    embedding weights, zero biases, unit LayerNorms, and the loss's (t', b) initial values."""
    generator_state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        head = getattr(model.vision_model, "head", None)
        if head is not None:
            nn.init.normal_(head.probe, std=0.02)
            nn.init.xavier_uniform_(head.attention.in_proj_weight)
            nn.init.zeros_(head.attention.in_proj_bias)
        scale, bias = LOSS_INIT[loss]
        with torch.no_grad():
            model.logit_scale.fill_(scale)
            model.logit_bias.fill_(bias)
    finally:
        torch.set_rng_state(generator_state)


def build_model(model_dir: Path, *, from_scratch: bool, loss: str, seed: int) -> SiglipModel:
    config = SiglipConfig.from_hf_dict(read_config(model_dir), where=f"{model_dir}/config.json")
    if not config.vision_config.vision_use_head:
        raise CheckpointError(f"{model_dir}: the vision tower has no pooling head; it cannot be trained for search")
    model = SiglipModel(config)
    if from_scratch:
        initialise_weights(model, loss, seed=seed)
        log.info("training %s from a random initialisation", model_dir)
        return model
    try:
        tensors = read_safetensors(model_dir)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}. To train this architecture from random weights, pass --from-scratch.") from exc
    load_strict(model, tensors, where=str(model_dir))
    return model


class _Images:
    """Model-ready pixels by dataset index: decoded once into memory when small enough, else per batch."""

    def __init__(self, dataset: CaptionDataset, transform: ImageTransform, on_bad_data: str) -> None:
        self.items = dataset.items
        self.transform = transform
        self.on_bad_data = on_bad_data
        height, width = transform.size
        self.preloaded: torch.Tensor | None = None
        self.bad: set[int] = set()
        if len(self.items) * 3 * height * width * 4 <= PRELOAD_BUDGET_BYTES:
            self.preloaded = self._decode(range(len(self.items)))

    def _decode_one(self, index: int) -> np.ndarray:
        item = self.items[index]
        return self.transform.to_array(open_image(item.image, target_size=self.transform.size))

    def _decode(self, indices) -> torch.Tensor:
        indices = list(indices)
        arrays: list[np.ndarray | None] = [None] * len(indices)
        issues = []
        with ThreadPoolExecutor(2, thread_name_prefix="vsearch-train-decode") as pool:
            for slot, future in enumerate([pool.submit(self._decode_one, i) for i in indices]):
                try:
                    arrays[slot] = future.result()
                except Exception as exc:  # any decode failure is a data problem of this one file
                    item = self.items[indices[slot]]
                    issues.append(DataIssue(item.where, f"cannot read image {item.image}: {exc}"))
                    self.bad.add(indices[slot])
        handle_issues(issues, self.on_bad_data, total=len(indices), what="images")
        height, width = self.transform.size
        blank = np.zeros((3, height, width), np.float32)
        return torch.from_numpy(np.stack([a if a is not None else blank for a in arrays]))

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, list[int]]:
        """Pixels for ``indices`` and the positions within the batch that are usable."""
        pixels = self.preloaded[indices] if self.preloaded is not None else self._decode(indices)
        keep = [slot for slot, index in enumerate(indices) if index not in self.bad]
        return pixels, keep


def _learning_rate(step: int, total: int, warmup: int, peak: float) -> float:
    warm = min(1.0, (step + 1) / max(1, warmup))
    return peak * warm * 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / max(1, total))))


def _param_groups(model: SiglipModel, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        plain_matrix = param.ndim >= 2 and "embedding" not in name and "probe" not in name
        (decay if plain_matrix else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train_model(
    model_dir: Path,
    dataset: CaptionDataset,
    out_dir: Path,
    config: TrainConfig,
    *,
    resume: bool = False,
    on_bad_data: str = "stop",
    device: str | torch.device = "cpu",
    on_progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train on ``dataset`` starting from ``model_dir`` and write a Hugging Face checkpoint to ``out_dir``."""
    config.validate()
    out_dir = Path(out_dir)
    if resume and not checkpoint.has_train_state(out_dir):
        raise InvalidArgumentError(f"{out_dir}: there is no training checkpoint to resume; run without --resume")
    if not resume and checkpoint.has_train_state(out_dir):
        raise InvalidArgumentError(
            f"{out_dir} holds an unfinished training run; pass --resume to continue it, or choose another --out"
        )
    fingerprint = {**asdict(config), "model_dir": str(model_dir), "dataset": dataset.source,
                   "n_items": len(dataset.items)}
    fingerprint.pop("save_every_s")

    device = torch.device(device)
    # On resume the checkpoint supplies every weight, so the base weights need not be read.
    model = build_model(model_dir, from_scratch=config.from_scratch or resume, loss=config.loss, seed=config.seed)
    model.to(device=device, dtype=torch.float32)
    if config.freeze_vision:
        model.vision_model.requires_grad_(False)
    if config.freeze_text:
        model.text_model.requires_grad_(False)
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr)

    tokenizer = TextTokenizer.from_folder(
        model_dir, max_length=model.config.text_config.max_position_embeddings, lowercase=True
    )
    transform = ImageTransform.from_folder(model_dir)
    items = dataset.items
    images = _Images(dataset, transform, on_bad_data)
    captions = [c for item in items for c in item.captions]
    token_ids = tokenizer.encode_padded(captions)
    first_caption = torch.tensor(np.cumsum([0] + [len(item.captions) for item in items])[:-1], dtype=torch.long)
    n_captions = torch.tensor([len(item.captions) for item in items], dtype=torch.long)

    batch_size = min(config.batch_size, len(items))
    if batch_size < 2:
        raise InvalidArgumentError("the dataset needs at least two usable images")
    steps_per_epoch = len(items) // batch_size
    total_steps = steps_per_epoch * config.epochs
    warmup = config.warmup_steps if config.warmup_steps is not None else min(100, max(1, total_steps // 10))

    step = 0
    if resume:
        state = checkpoint.load_train_state(out_dir, model, optimizer)
        differences = sorted(k for k in fingerprint if state["fingerprint"].get(k) != fingerprint[k])
        if differences:
            raise InvalidArgumentError(
                f"{out_dir}: the checkpoint was made with different settings ({', '.join(differences)}); resume with "
                "the same command line, or train into a new --out folder"
            )
        step = int(state["step"])
        log.info("resuming at step %d of %d", step, total_steps)

    def save_state() -> None:
        checkpoint.save_train_state(out_dir, model, optimizer, {"step": step, "fingerprint": fingerprint})

    out_dir.mkdir(parents=True, exist_ok=True)
    model.train()
    started = time.monotonic()
    last_save = started
    start_step = step
    losses: list[float] = []
    smoothed = float("nan")
    stopped = False
    try:
        while step < total_steps:
            epoch, offset = divmod(step, steps_per_epoch)
            order_gen = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
            order = torch.randperm(len(items), generator=order_gen)
            choice = torch.randint(0, 1 << 30, (len(items),), generator=order_gen)
            for batch_index in range(offset, steps_per_epoch):
                if should_stop is not None and should_stop():
                    stopped = True
                    break
                indices = order[batch_index * batch_size:(batch_index + 1) * batch_size]
                pixels, keep = images.batch(indices.tolist())
                if len(keep) < 2:
                    step += 1
                    continue
                keep_t = torch.tensor(keep)
                indices, pixels = indices[keep_t], pixels[keep_t]
                rows = first_caption[indices] + choice[indices] % n_captions[indices]
                ids = token_ids[rows].to(device)
                lr = _learning_rate(step, total_steps, warmup, config.lr)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with torch.set_grad_enabled(not config.freeze_vision):
                    image_features = model.get_image_features(pixels.to(device))
                with torch.set_grad_enabled(not config.freeze_text):
                    text_features = model.get_text_features(ids)
                logits = pair_logits(image_features, text_features, model.logit_scale, model.logit_bias)
                loss = contrastive_loss(config.loss, logits)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"training diverged at step {step + 1} (loss {value}); lower --lr (now {config.lr:g})"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                losses.append(value)
                smoothed = value if math.isnan(smoothed) else 0.9 * smoothed + 0.1 * value
                now = time.monotonic()
                rate = (step - start_step) / max(now - started, 1e-9)
                if on_progress is not None:
                    on_progress(TrainProgress(step, total_steps, epoch + 1, smoothed, rate,
                                              (total_steps - step) / rate if rate > 0 else float("inf")))
                if now - last_save >= config.save_every_s and step < total_steps:
                    save_state()
                    last_save = now
            if stopped:
                break
    except KeyboardInterrupt:
        save_state()
        log.warning("interrupted at step %d; continue with --resume", step)
        raise
    seconds = time.monotonic() - started
    if stopped:
        save_state()
        log.info("stopped at step %d of %d; continue with --resume", step, total_steps)
    else:
        model.eval()
        checkpoint.export_hf_checkpoint(model, model_dir, out_dir)
        checkpoint.remove_train_state(out_dir)
    return TrainResult(out_dir, step, total_steps, smoothed, seconds, stopped, tuple(losses))
