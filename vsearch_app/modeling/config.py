"""Model configurations: frozen dataclasses named after the checkpoint's config.json fields.

Each config is built by an explicit ``from_hf_dict``. Fields a published config.json omits take the same defaults as
`transformers` (published configs leave defaults out). Keys that are Hugging Face bookkeeping or generation defaults
are ignored; any other key we do not know is an error, because silently ignoring a field that changes the maths
would give wrong vectors without a word.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from vsearch_app.errors import CheckpointError

# PretrainedConfig bookkeeping, training-only and generation fields: none of them changes inference maths.
GENERIC_IGNORED_KEYS = frozenset(
    """
    _name_or_path _commit_hash _attn_implementation _attn_implementation_autoset transformers_version model_type
    architectures auto_map torch_dtype dtype use_bfloat16 torchscript tf_legacy_loss return_dict output_hidden_states
    output_attentions pruned_heads chunk_size_feed_forward is_encoder_decoder is_decoder cross_attention_hidden_size
    add_cross_attention tie_encoder_decoder finetuning_task id2label label2id num_labels tokenizer_class prefix
    task_specific_params problem_type initializer_range initializer_factor attention_dropout dropout
    max_length min_length do_sample early_stopping num_beams num_beam_groups diversity_penalty temperature top_k top_p
    typical_p repetition_penalty length_penalty no_repeat_ngram_size encoder_no_repeat_ngram_size bad_words_ids
    num_return_sequences output_scores return_dict_in_generate forced_bos_token_id forced_eos_token_id
    remove_invalid_values exponential_decay_length_penalty suppress_tokens begin_suppress_tokens
    bos_token_id eos_token_id pad_token_id sep_token_id decoder_start_token_id use_cache
    """.split()
)

# Activations our layers implement. SigLIP and Gemma use the tanh approximation of GELU.
SUPPORTED_GELU = frozenset({"gelu_pytorch_tanh", "gelu_new", "gelu_fast", "gelu"})

C = TypeVar("C")


def build_config(cls: type[C], data: Mapping[str, Any], *, where: str, extra_ignored: Iterable[str] = ()) -> C:
    """Build dataclass ``cls`` from a config dict: known fields kept, bookkeeping ignored, anything else rejected."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    ignored = GENERIC_IGNORED_KEYS | set(extra_ignored)
    unknown = sorted(k for k in data if k not in known and k not in ignored)
    if unknown:
        raise CheckpointError(
            f"{where}: unsupported config field(s) {', '.join(unknown)}; this checkpoint is not an architecture "
            "VSearch can run faithfully"
        )
    values = {k: v for k, v in data.items() if k in known}
    try:
        return cls(**values)  # type: ignore[call-arg]
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: invalid config: {exc}") from exc


def _check_activation(name: str, where: str) -> None:
    if name not in SUPPORTED_GELU:
        raise CheckpointError(f"{where}: activation {name!r} is not supported (expected a GELU variant)")


def _square(value: int | list[int] | tuple[int, ...], field: str) -> int:
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise ValueError(f"{field} must be square, got {value}")
        return int(value[0])
    return int(value)


@dataclasses.dataclass(frozen=True)
class SiglipVisionConfig:
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_channels: int = 3
    image_size: int = 224
    patch_size: int = 16
    hidden_act: str = "gelu_pytorch_tanh"
    layer_norm_eps: float = 1e-6
    vision_use_head: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", _square(self.image_size, "image_size"))
        object.__setattr__(self, "patch_size", _square(self.patch_size, "patch_size"))
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")

    @property
    def num_patches(self) -> int:
        # Not always a whole division: so400m-patch14-384 has 27 x 27 patches and the strided convolution drops
        # the last 6 pixel rows and columns, as in the original model.
        return (self.image_size // self.patch_size) ** 2

    @classmethod
    def from_hf_dict(cls, data: Mapping[str, Any], where: str = "vision_config") -> SiglipVisionConfig:
        config = build_config(cls, data, where=where, extra_ignored={"projection_dim"})
        _check_activation(config.hidden_act, where)
        return config


@dataclasses.dataclass(frozen=True)
class SiglipTextConfig:
    vocab_size: int = 32000
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    max_position_embeddings: int = 64
    hidden_act: str = "gelu_pytorch_tanh"
    layer_norm_eps: float = 1e-6
    projection_size: int | None = None

    def __post_init__(self) -> None:
        if self.projection_size is None:
            object.__setattr__(self, "projection_size", self.hidden_size)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")

    @classmethod
    def from_hf_dict(cls, data: Mapping[str, Any], where: str = "text_config") -> SiglipTextConfig:
        config = build_config(cls, data, where=where)
        _check_activation(config.hidden_act, where)
        return config


@dataclasses.dataclass(frozen=True)
class SiglipConfig:
    text_config: SiglipTextConfig
    vision_config: SiglipVisionConfig

    @classmethod
    def from_hf_dict(cls, data: Mapping[str, Any], where: str = "config.json") -> SiglipConfig:
        model_type = data.get("model_type", "siglip")
        if model_type != "siglip":
            raise CheckpointError(
                f"{where}: model_type is {model_type!r}; VSearch's search model must be a SigLIP checkpoint "
                "(model_type 'siglip', e.g. google/siglip2-base-patch16-224)"
            )
        top = {k: v for k, v in data.items() if k not in ("text_config", "vision_config")}
        build_config(_Empty, top, where=where)  # rejects unknown top-level keys
        text = SiglipTextConfig.from_hf_dict(data.get("text_config") or {}, f"{where}: text_config")
        vision = SiglipVisionConfig.from_hf_dict(data.get("vision_config") or {}, f"{where}: vision_config")
        if text.projection_size != vision.hidden_size:
            raise CheckpointError(
                f"{where}: text projection_size {text.projection_size} differs from vision hidden_size "
                f"{vision.hidden_size}; image and text vectors would not share one space"
            )
        return cls(text_config=text, vision_config=vision)

    @property
    def embed_dim(self) -> int:
        return self.vision_config.hidden_size


@dataclasses.dataclass(frozen=True)
class _Empty:
    """A config with no fields: used to vet top-level keys that must all be ignorable."""
