"""PaliGemma: a SigLIP vision tower, a linear projector and a Gemma decoder, loading the published checkpoints.

The image becomes ``num_patches`` soft tokens that replace the ``<image>`` placeholders of the prompt. The image and
prompt tokens form a prefix that attends bidirectionally; tokens after it are causal. Positions start at 1 (as the
reference implementation numbers them).

Checkpoint layouts: the published repos name the vision tower ``vision_tower.vision_model.*``; `transformers` 5.x
``save_pretrained`` writes ``vision_tower.*`` (and, unless told otherwise, a pooling head PaliGemma never uses). Our
module names follow the published layout; every other spelling is mapped by the one table ``KEY_RENAMES``.

Loading streams tensor by tensor (read from disk, converted to the target dtype, assigned): the published fp32
weights never exist in memory as a whole, so a bf16 model peaks at about its own size plus its largest tensor.
Weights about to be replaced by packed copies may instead be memory-mapped (``map_weights``), which costs a cold
start neither a copy nor the faulting-in of new memory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import mmap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vsearch_app.errors import CheckpointError
from vsearch_app.modeling.checkpoint_files import read_header
from vsearch_app.modeling.config import SiglipVisionConfig, build_config
from vsearch_app.modeling.gemma import PACKED_PROJECTIONS, GemmaConfig, GemmaForCausalLM
from vsearch_app.modeling.siglip import SiglipVisionTransformer
from vsearch_app.modeling.weights import read_config, weight_files

log = logging.getLogger(__name__)

# (stored prefix, our prefix); the first match wins, so longer spellings come first. None drops the tensor.
KEY_RENAMES: tuple[tuple[str, str | None], ...] = (
    ("vision_tower.vision_model.head.", None),  # SigLIP's pooling head: PaliGemma uses the patch features
    ("vision_tower.head.", None),
    ("vision_tower.vision_model.", "vision_tower.vision_model."),  # published checkpoints
    ("vision_tower.", "vision_tower.vision_model."),  # transformers 5.x save_pretrained
    ("model.vision_tower.vision_model.", "vision_tower.vision_model."),  # transformers 5.x module names
    ("model.vision_tower.", "vision_tower.vision_model."),
    ("model.multi_modal_projector.", "multi_modal_projector."),
    ("model.language_model.", "language_model.model."),
    ("lm_head.", "language_model.lm_head."),
)
# Vision-config fields that describe PaliGemma's wiring rather than the vision transformer.
_VISION_WIRING_KEYS = {"num_image_tokens", "projection_dim", "projector_hidden_act", "vocab_size"}
_TOP_LEVEL_IGNORED = {"ignore_index", "hidden_size", "vocab_size", "image_token_id", "tie_word_embeddings",
                      "keys_to_ignore_at_inference"}

_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}


def rename_key(key: str, tied: bool = True) -> str | None:
    """Our name for a stored tensor name, or None for tensors PaliGemma does not use."""
    for old, new in KEY_RENAMES:
        if key.startswith(old):
            if new is None:
                return None
            key = new + key[len(old):]
            break
    if tied and key == "language_model.lm_head.weight":
        return None  # a saved copy of the tied embedding
    return key


@dataclasses.dataclass(frozen=True)
class PaliGemmaConfig:
    vision_config: SiglipVisionConfig
    text_config: GemmaConfig
    image_token_index: int = 256000
    projection_dim: int = 2048

    @property
    def num_image_tokens(self) -> int:
        return self.vision_config.num_patches

    @classmethod
    def from_hf_dict(cls, data: Mapping[str, Any], where: str = "config.json") -> PaliGemmaConfig:
        model_type = data.get("model_type")
        if model_type != "paligemma":
            raise CheckpointError(
                f"{where}: model_type is {model_type!r}; the captioner needs a PaliGemma checkpoint "
                "(e.g. google/paligemma-3b-mix-224)"
            )
        top = {k: v for k, v in data.items() if k not in ("vision_config", "text_config")}
        if "image_token_id" in top and "image_token_index" not in top:
            top["image_token_index"] = top["image_token_id"]
        top_config = build_config(_Top, top, where=where, extra_ignored=_TOP_LEVEL_IGNORED)
        text_dict = dict(data.get("text_config") or {})
        text = GemmaConfig.from_hf_dict(text_dict, f"{where}: text_config")
        vision_dict = {k: v for k, v in (data.get("vision_config") or {}).items() if k not in _VISION_WIRING_KEYS}
        if vision_dict.get("model_type", "siglip_vision_model") != "siglip_vision_model":
            raise CheckpointError(f"{where}: vision tower {vision_dict.get('model_type')!r} is not SigLIP")
        vision_dict["vision_use_head"] = False  # PaliGemma reads the patch features; a saved head is dropped
        vision = SiglipVisionConfig.from_hf_dict(vision_dict, f"{where}: vision_config")
        if top_config.projection_dim != text.hidden_size:
            raise CheckpointError(
                f"{where}: projection_dim {top_config.projection_dim} differs from the decoder's hidden_size "
                f"{text.hidden_size}"
            )
        return cls(vision, text, top_config.image_token_index, top_config.projection_dim)


@dataclasses.dataclass(frozen=True)
class _Top:
    image_token_index: int = 256000
    projection_dim: int = 2048


class _VisionTower(nn.Module):
    def __init__(self, config: SiglipVisionConfig) -> None:
        super().__init__()
        self.vision_model = SiglipVisionTransformer(config)


class _Projector(nn.Module):
    def __init__(self, vision_width: int, text_width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(vision_width, text_width)


class PaliGemmaForConditionalGeneration(nn.Module):
    POSITION_OFFSET = 1  # PaliGemma numbers positions from 1

    def __init__(self, config: PaliGemmaConfig) -> None:
        super().__init__()
        self.config = config
        self.vision_tower = _VisionTower(config.vision_config)
        self.multi_modal_projector = _Projector(config.vision_config.hidden_size, config.projection_dim)
        self.language_model = GemmaForCausalLM(config.text_config)

    @property
    def dtype(self) -> torch.dtype:
        return self.language_model.model.embed_tokens.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.language_model.model.embed_tokens.weight.device

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Soft image tokens [B, num_patches, hidden] in the decoder's dtype (run once per image)."""
        features = self.vision_tower.vision_model(pixel_values)
        return self.multi_modal_projector.linear(features).to(self.dtype)

    def embed_prefix(self, input_ids: torch.Tensor, image_features: torch.Tensor) -> torch.Tensor:
        """Token embeddings with the image tokens written over the ``<image>`` placeholders (in order)."""
        image_token = self.config.image_token_index
        is_image = input_ids == image_token
        if int(is_image.sum()) != image_features.shape[0] * image_features.shape[1]:
            raise ValueError(
                f"the prompt has {int(is_image.sum())} <image> tokens but the image gives "
                f"{image_features.shape[0] * image_features.shape[1]}"
            )
        out_of_vocab = image_token >= self.config.text_config.vocab_size
        safe_ids = input_ids.masked_fill(is_image, 0) if out_of_vocab else input_ids
        embeds = self.language_model.embed(safe_ids)
        return embeds.masked_scatter(is_image[..., None], image_features.to(embeds.dtype))

    def positions(self, start: int, length: int) -> torch.Tensor:
        return torch.arange(start, start + length, device=self.device) + self.POSITION_OFFSET

    @staticmethod
    def prefix_lm_mask(total: int, prefix: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """[total, total] booleans: position i may attend j if j <= i or both are in the prefix."""
        index = torch.arange(total, device=device)
        causal = index[None, :] <= index[:, None]
        in_prefix = index < prefix
        return causal | (in_prefix[:, None] & in_prefix[None, :])

    def forward(self, input_ids: torch.Tensor, pixel_values: torch.Tensor, prefix_length: int | None = None):
        """Logits [B, T, V] for the whole sequence without a cache. The first ``prefix_length`` tokens (default: all)
        form the bidirectional prefix."""
        length = input_ids.shape[1]
        prefix = length if prefix_length is None else prefix_length
        embeds = self.embed_prefix(input_ids, self.encode_image(pixel_values))
        mask = None if prefix >= length else self.prefix_lm_mask(length, prefix, self.device)
        return self.language_model(embeds, self.positions(0, length), mask=mask)


# --- loading --------------------------------------------------------------------------------------------------------


def _read_header(path: Path) -> tuple[dict, int]:
    """The safetensors JSON header and the offset where tensor data starts."""
    try:
        with path.open("rb") as handle:
            raw = read_header(handle, path)
        header = json.loads(raw)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: damaged or unreadable safetensors file ({exc})") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: damaged safetensors file (its header is not a JSON object)")
    header.pop("__metadata__", None)
    return header, 8 + len(raw)


def _read_tensor(handle, info: Mapping[str, Any], data_start: int, path: Path) -> torch.Tensor:
    dtype = _SAFETENSORS_DTYPES.get(info.get("dtype"))
    if dtype is None:
        raise CheckpointError(f"{path}: unsupported tensor dtype {info.get('dtype')!r}")
    begin, end = info["data_offsets"]
    tensor = torch.empty(info["shape"], dtype=dtype)
    if tensor.numel() * tensor.element_size() != end - begin:
        raise CheckpointError(f"{path}: tensor size does not match its shape; the file is damaged")
    handle.seek(data_start + begin)
    if tensor.numel():
        # Read straight into the tensor's memory: no mmap (which would count the whole file as resident) and no copy.
        view = memoryview(tensor.view(-1).view(torch.uint8).numpy())
        if handle.readinto(view) != end - begin:
            raise CheckpointError(f"{path}: file is truncated")
    return tensor


def _map_tensor(handle, info: Mapping[str, Any], data_start: int, path: Path) -> torch.Tensor | None:
    """The tensor as a private (copy-on-write) memory map of its bytes in the file: no copy and no new memory, the
    pages are the page cache's. None when it cannot be mapped (empty, odd dtype); the caller then reads it."""
    dtype = _SAFETENSORS_DTYPES.get(info.get("dtype"))
    begin, end = info["data_offsets"]
    if dtype is None or end <= begin:
        return None
    numel = 1
    for size in info["shape"]:
        numel *= size
    if numel * dtype.itemsize != end - begin:
        raise CheckpointError(f"{path}: tensor size does not match its shape; the file is damaged")
    offset = data_start + begin
    aligned = offset - offset % mmap.ALLOCATIONGRANULARITY  # a mapping starts on a page boundary
    try:
        mapping = mmap.mmap(handle.fileno(), offset + (end - begin) - aligned, offset=aligned,
                            access=mmap.ACCESS_COPY)
    except ValueError as exc:  # the file is shorter than its header says
        raise CheckpointError(f"{path}: file is truncated ({exc})") from exc
    except OSError:
        return None  # a file system without mmap: read it instead
    # The tensor holds the only reference to the mapping, which is unmapped when the tensor is freed.
    return torch.frombuffer(mapping, dtype=dtype, count=numel, offset=offset - aligned).view(info["shape"])


def replaced_by_packing(name: str) -> bool:
    """Whether ``name`` is a decoder weight that packing (GemmaForCausalLM.packing_steps) replaces and frees."""
    return name.startswith("language_model.model.layers.") and name.endswith(PACKED_PROJECTIONS)


def load_paligemma(
    folder: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    map_weights: Callable[[str], bool] | None = None,
) -> PaliGemmaForConditionalGeneration:
    """Load a PaliGemma checkpoint folder strictly (missing or unexpected weights are a CheckpointError naming them).

    ``map_weights(name)`` True: that weight is memory-mapped from the file instead of read into new memory, when it
    is stored in ``dtype`` and loads to the CPU. Meant for weights that are soon replaced (``replaced_by_packing``):
    a cold start then neither copies them nor faults in gigabytes of fresh memory. A mapped weight must not outlive
    changes to its file (as with every memory-mapped loader, truncating the file under it would crash the process),
    so it should not be kept for long."""
    folder = Path(folder)
    config = PaliGemmaConfig.from_hf_dict(read_config(folder), where=f"{folder}/config.json")
    with torch.device("meta"):
        model = PaliGemmaForConditionalGeneration(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    tied = config.text_config.tie_word_embeddings

    plan: dict[Path, list[tuple[str, str, dict]]] = {}
    headers = {}
    found: dict[str, str] = {}
    for path in weight_files(folder):
        header, data_start = _read_header(path)
        headers[path] = data_start
        for stored, info in header.items():
            ours = rename_key(stored, tied)
            if ours is None or stored.endswith("position_ids"):
                continue
            if ours in found:
                raise CheckpointError(f"{folder}: weight {ours} is stored twice ({found[ours]} and {stored})")
            found[ours] = stored
            plan.setdefault(path, []).append((ours, stored, info))
    missing = sorted(expected.keys() - found.keys())
    unexpected = sorted(found.keys() - expected.keys())
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing weights: {', '.join(missing[:8])}" + (" ..." if len(missing) > 8 else ""))
        if unexpected:
            parts.append(f"unexpected weights: {', '.join(unexpected[:8])}" + (" ..." if len(unexpected) > 8 else ""))
        raise CheckpointError(f"{folder}: weights do not match a PaliGemma model ({'; '.join(parts)})")

    state: dict[str, torch.Tensor] = {}
    for path, entries in plan.items():
        with path.open("rb") as handle:
            for ours, _stored, info in entries:
                if tuple(info["shape"]) != expected[ours]:
                    raise CheckpointError(
                        f"{folder}: {ours} has shape {tuple(info['shape'])}, the config implies {expected[ours]}"
                    )
                tensor = None
                if map_weights is not None and torch.device(device).type == "cpu" and \
                        _SAFETENSORS_DTYPES.get(info.get("dtype")) == dtype and map_weights(ours):
                    tensor = _map_tensor(handle, info, headers[path], path)
                if tensor is None:
                    tensor = _read_tensor(handle, info, headers[path], path)
                target = dtype if tensor.is_floating_point() else tensor.dtype
                state[ours] = tensor.to(device=device, dtype=target)
                del tensor
    model.load_state_dict(state, strict=True, assign=True)
    model.language_model._init_buffers(torch.device(device))
    log.info("loaded PaliGemma from %s (%s, %s)", folder, device, dtype)
    return model.eval()
