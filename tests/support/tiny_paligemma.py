"""Tiny random PaliGemma checkpoints saved by `transformers`, rewritten to the published key layout, with a
Gemma-like word tokenizer (``<image>`` and a newline token included) built offline."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.tiny_models import WORDS

PALIGEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]
CAPTION_WORDS = [*WORDS, "caption", "describe", "en", "question", "what", "is", "this", "building", "?"]


def build_paligemma_tokenizer(folder: Path) -> dict[str, int]:
    """tokenizer.json + tokenizer_config.json; returns the vocabulary (<image> last, newline before it)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    tokens = [*PALIGEMMA_SPECIALS, *dict.fromkeys(CAPTION_WORDS), "\n", "<image>"]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    tokenizer.add_special_tokens([*PALIGEMMA_SPECIALS, "<image>"])
    tokenizer.add_tokens([AddedToken("\n", normalized=False)])
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GemmaTokenizer", "add_bos_token": True, "add_eos_token": False,
        "pad_token": "<pad>", "eos_token": "<eos>", "bos_token": "<bos>", "unk_token": "<unk>",
        "model_max_length": 1000000000000000019884624838656,
    }))
    return vocab


def to_published_layout(folder: Path) -> None:
    """Rewrite save_pretrained's ``vision_tower.*`` keys as the hub's ``vision_tower.vision_model.*``."""
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    tensors = load_file(str(path))
    renamed = {}
    for key, value in tensors.items():
        if key.startswith("vision_tower.") and not key.startswith("vision_tower.vision_model."):
            key = "vision_tower.vision_model." + key[len("vision_tower."):]
        renamed[key] = value.contiguous()
    save_file(renamed, str(path), metadata={"format": "pt"})


def make_tiny_paligemma(
    folder: Path,
    *,
    hidden: int = 32,
    heads: int = 4,
    kv_heads: int = 1,
    head_dim: int = 16,
    layers: int = 2,
    intermediate: int = 64,
    vision_hidden: int = 24,
    vision_heads: int = 2,
    image_size: int = 32,
    patch_size: int = 8,
    rope_theta: float = 10000.0,
    layout: str = "published",
    seed: int = 0,
) -> Path:
    import torch
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration

    folder = Path(folder)
    vocab = build_paligemma_tokenizer(folder)
    config = PaliGemmaConfig(
        vision_config=dict(
            hidden_size=vision_hidden, intermediate_size=2 * vision_hidden, num_hidden_layers=layers,
            num_attention_heads=vision_heads, image_size=image_size, patch_size=patch_size, vision_use_head=False,
        ),
        text_config=dict(
            hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers, num_attention_heads=heads,
            num_key_value_heads=kv_heads, head_dim=head_dim, vocab_size=len(vocab),
            rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
            pad_token_id=0, eos_token_id=1, bos_token_id=2,
        ),
        image_token_index=vocab["<image>"], projection_dim=hidden, vocab_size=len(vocab),
        pad_token_id=0, eos_token_id=1, bos_token_id=2,
    )
    torch.manual_seed(seed)
    model = PaliGemmaForConditionalGeneration(config).eval()
    with torch.no_grad():
        # Well-spread random weights (transformers' init is near zero, which makes every logit alike and leaves the
        # norms at exactly zero, so a wrong (1 + weight) would go unnoticed).
        for name, param in model.named_parameters():
            if param.dim() >= 2:
                fan_in = param[0].numel()
                # Layer outputs outweigh the token's own embedding in the residual stream; otherwise a tied-head
                # random model just repeats its input token and greedy tests compare constant sequences.
                gain = 8.0 if name.endswith(("o_proj.weight", "down_proj.weight")) else 1.0
                param.copy_(torch.randn_like(param) * gain / fan_in**0.5)
            elif "norm" in name:
                param.copy_(torch.randn_like(param) * 0.2)
            else:
                param.copy_(torch.randn_like(param) * 0.05)
    model.save_pretrained(folder)
    if layout == "published":
        to_published_layout(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "do_normalize": True, "do_rescale": True, "do_resize": True, "do_convert_rgb": None,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
        "image_seq_length": (image_size // patch_size) ** 2,
        "image_processor_type": "SiglipImageProcessor", "processor_class": "PaliGemmaProcessor",
        "resample": 3, "rescale_factor": 1 / 255, "size": {"height": image_size, "width": image_size},
    }))
    return folder
