"""Reading Hugging Face checkpoint folders: config.json and safetensors weights, strictly, never pickle.

Loading builds the module on the meta device and then assigns the checkpoint's tensors, converted one by one to the
requested dtype and device, so a bf16 model never exists as a transient fp32 copy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from vsearch_app.errors import CheckpointError
from vsearch_app.modeling.checkpoint_files import weight_files

log = logging.getLogger(__name__)

# Buffers that older `transformers` versions saved with the weights; they are recomputed, never parameters.
IGNORED_KEY_SUFFIXES = ("position_ids",)

M = TypeVar("M", bound=nn.Module)


def read_config(folder: str | Path) -> dict:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{folder}: no config.json; this folder is not a Hugging Face model checkpoint")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable config ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def read_safetensors(folder: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint, by key, as stored (dtype unchanged)."""
    tensors: dict[str, torch.Tensor] = {}
    for path in weight_files(folder):
        try:
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open handles are not mappings
                    tensors[key] = handle.get_tensor(key)
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{path}: damaged or unreadable safetensors file ({exc})") from exc
    return tensors


def _describe(keys: Iterable[str], limit: int = 8) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")


def load_strict(
    module: nn.Module,
    tensors: dict[str, torch.Tensor],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    where: str = "checkpoint",
) -> None:
    """Assign ``tensors`` to ``module``'s parameters one-to-one. Missing, unexpected or mis-shaped weights are a
    CheckpointError naming them. Floating tensors are cast to ``dtype`` (if given) as they are assigned.

    ``tensors`` is consumed (emptied) so that each source tensor can be freed as soon as its converted copy exists.
    """
    expected = dict(module.state_dict(keep_vars=True))
    for key in [k for k in tensors if k.endswith(IGNORED_KEY_SUFFIXES)]:
        del tensors[key]
    given = tensors
    missing = expected.keys() - given.keys()
    unexpected = given.keys() - expected.keys()
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing weights: {_describe(missing)}")
        if unexpected:
            parts.append(f"unexpected weights: {_describe(unexpected)}")
        raise CheckpointError(f"{where}: weights do not match the model ({'; '.join(parts)})")
    mismatched = [f"{k} {tuple(given[k].shape)} != {tuple(p.shape)}" for k, p in expected.items()
                  if tuple(given[k].shape) != tuple(p.shape)]
    if mismatched:
        raise CheckpointError(f"{where}: weight shapes do not match the config: {_describe(mismatched, 4)}")
    converted = {}
    for key in list(given):
        tensor = given.pop(key)
        target_dtype = dtype if (dtype is not None and tensor.is_floating_point()) else tensor.dtype
        converted[key] = tensor.to(device=device, dtype=target_dtype)
    module.load_state_dict(converted, strict=True, assign=True)


def instantiate_and_load(
    factory: Callable[[], M],
    folder: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    rename: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> M:
    """Build a model with ``factory`` on the meta device (no memory) and load the folder's weights into it."""
    tensors = read_safetensors(folder)
    if rename is not None:
        tensors = rename(tensors)
    with torch.device("meta"):
        module = factory()
    load_strict(module, tensors, device=device, dtype=dtype, where=str(folder))
    return module
