"""Saving what training produces, without pickle: safetensors for tensors, JSON for everything else.

- ``export_hf_checkpoint``: the trained model as a Hugging Face SigLIP folder (config.json, model.safetensors, the
  base model's tokenizer and image-processor files), loadable by our engine and by ``transformers.SiglipModel``.
- ``save_train_state`` / ``load_train_state``: a resumable snapshot under ``OUT/checkpoint/``: model weights,
  AdamW moments, the step, and RNG states, replaced atomically so an interrupted save never leaves a torn one.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from vsearch_app.core.store.fsutil import atomic_write_bytes, give_new_file_mode
from vsearch_app.errors import CheckpointError

log = logging.getLogger(__name__)

# Files that describe how to feed the model; copied from the base checkpoint next to the new weights.
SIDE_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "spiece.model",
    "tokenizer.model", "preprocessor_config.json", "processor_config.json",
)
STATE_DIR = "checkpoint"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "trainer_state.json"


def _tensors_for_saving(module: nn.Module) -> dict[str, torch.Tensor]:
    # safetensors refuses views and shared storage; every tensor gets its own contiguous CPU copy.
    return {key: value.detach().to("cpu").contiguous().clone() for key, value in module.state_dict().items()}


def _atomic_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=2).encode("utf-8"))


def export_hf_checkpoint(model: nn.Module, base_dir: Path, out_dir: Path) -> Path:
    """Write ``model`` as a Hugging Face SigLIP checkpoint into ``out_dir``, with config and side files from
    ``base_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (MODEL_FILE + ".tmp")
    save_file(_tensors_for_saving(model), str(tmp), metadata={"format": "pt"})
    give_new_file_mode(tmp)  # safetensors writes 0600; the user's model is a file like any other
    os.replace(tmp, out_dir / MODEL_FILE)
    config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    config.setdefault("architectures", ["SiglipModel"])
    config.setdefault("model_type", "siglip")
    _atomic_json(out_dir / "config.json", config)
    for name in SIDE_FILES:
        source = base_dir / name
        if source.is_file() and source.resolve() != (out_dir / name).resolve():
            shutil.copyfile(source, out_dir / name)
    log.info("wrote the trained model to %s", out_dir)
    return out_dir


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().to("cpu").contiguous().clone()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if not key.startswith("state."):
            continue
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for index, values in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    return {"state": state, "param_groups": groups}


def save_train_state(out_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> Path:
    """Snapshot model, optimizer, RNG states and ``state`` (step, fingerprint ...) into ``out_dir/checkpoint``."""
    final = out_dir / STATE_DIR
    staging = out_dir / (STATE_DIR + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file(_tensors_for_saving(model), str(staging / MODEL_FILE), metadata={"format": "pt"})
    opt_tensors, opt_meta = _flatten_optimizer(optimizer)
    opt_tensors["rng.torch"] = torch.get_rng_state()
    save_file(opt_tensors, str(staging / OPTIMIZER_FILE))
    for name in (MODEL_FILE, OPTIMIZER_FILE):
        give_new_file_mode(staging / name)
    version, internal, gauss = random.getstate()
    document = {**state, "optimizer": opt_meta, "python_random": [version, list(internal), gauss]}
    (staging / STATE_FILE).write_text(json.dumps(document, indent=2), encoding="utf-8")
    # Swap in the new snapshot; the old one is removed only once the new one is complete.
    old = out_dir / (STATE_DIR + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)
    log.debug("saved a resumable checkpoint at step %s to %s", state.get("step"), final)
    return final


def has_train_state(out_dir: Path) -> bool:
    return (out_dir / STATE_DIR / STATE_FILE).is_file()


def load_train_state(out_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore a snapshot written by ``save_train_state`` into ``model`` and ``optimizer``; returns its state dict."""
    folder = out_dir / STATE_DIR
    try:
        document = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        weights = load_file(str(folder / MODEL_FILE))
        opt_tensors = load_file(str(folder / OPTIMIZER_FILE))
    except (OSError, json.JSONDecodeError, SafetensorError) as exc:
        raise CheckpointError(f"{folder}: the training checkpoint is unreadable ({exc}); start again without --resume "
                              "into a new --out folder") from exc
    device = next(model.parameters()).device
    try:
        model.load_state_dict({k: v.to(device) for k, v in weights.items()}, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{folder}: the checkpoint does not fit this model ({exc})") from exc
    rng = opt_tensors.pop("rng.torch", None)
    optimizer_state = _unflatten_optimizer({k: v.to(device) for k, v in opt_tensors.items()}, document["optimizer"])
    for entry in optimizer_state["state"].values():
        if isinstance(entry.get("step"), torch.Tensor):
            entry["step"] = entry["step"].to("cpu")  # AdamW keeps its step counter on the CPU
    optimizer.load_state_dict(optimizer_state)
    if rng is not None:
        torch.set_rng_state(rng)
    version, internal, gauss = document["python_random"]
    random.setstate((version, tuple(internal), gauss))
    return document


def remove_train_state(out_dir: Path) -> None:
    """Drop the resumable snapshot once the final model is written (it holds a model-sized copy plus the moments)."""
    shutil.rmtree(out_dir / STATE_DIR, ignore_errors=True)
