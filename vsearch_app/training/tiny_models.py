"""Tiny random SigLIP checkpoints saved by `transformers`, with tokenizers built offline, in a second or two.

What the tests load instead of a hub model, and what `vsearch self-test` builds so it can prove the app works on a
machine with no network and no downloaded model. The folders look like published SigLIP checkpoints: config.json +
model.safetensors, tokenizer files and a preprocessor_config.json. Random weights rank nothing sensibly; they exist
to exercise loading, embedding, indexing and searching end to end. The same arguments give the same model (the
word-tokenizer folders are byte-identical; sentencepiece records the temporary paths it trained from).
"""

from __future__ import annotations

import json
from pathlib import Path

WORDS = (
    "a an the of on in and with photo picture image red green blue yellow black white orange purple small large big "
    "circle square triangle cat dog car bike beach sunset people kids golden retriever tree house sky water night "
    "left right top bottom"
).split()
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]


def build_word_tokenizer(folder: Path, *, max_length: int, add_bos: bool = False, add_eos: bool = True,
                         words: list[str] | tuple[str, ...] = WORDS) -> int:
    """A Gemma-like word-level tokenizer.json (<pad>=0, <eos>=1, <bos>=2, <unk>=3). Returns the vocab size."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {tok: i for i, tok in enumerate([*SPECIALS, *dict.fromkeys(words)])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(SPECIALS)
    # Special tokens come from the post-processor, as in Gemma's tokenizer.json.
    template = " ".join([*(["<bos>"] if add_bos else []), "$A", *(["<eos>"] if add_eos else [])])
    tokenizer.post_processor = processors.TemplateProcessing(
        single=template, special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])]
    )
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "pad_token": "<pad>", "eos_token": "<eos>", "bos_token": "<bos>", "unk_token": "<unk>",
        "padding_side": "right",
    }))
    return len(vocab)


def build_sentencepiece_tokenizer(folder: Path, *, max_length: int, vocab_size: int = 60) -> int:
    """A SigLIP-v1-like spiece.model trained offline on a tiny corpus. Returns the vocab size."""
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "_corpus.txt"
    corpus.write_text("\n".join(" ".join(WORDS[i:i + 6]) for i in range(0, len(WORDS), 3)) * 20)
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / "spiece"), vocab_size=vocab_size, model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
        minloglevel=2, hard_vocab_limit=False,
    )
    corpus.unlink()
    (folder / "spiece.vocab").unlink(missing_ok=True)
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "SiglipTokenizer", "model_max_length": max_length, "do_lower_case": True,
        "eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>",
    }))
    processor = spm.SentencePieceProcessor(model_file=str(folder / "spiece.model"))
    return processor.get_piece_size()


def write_preprocessor_config(folder: Path, image_size: int, *, resample: int = 2) -> None:
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "do_normalize": True, "do_rescale": True, "do_resize": True,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
        "image_processor_type": "SiglipImageProcessor", "processor_class": "SiglipProcessor",
        "resample": resample, "rescale_factor": 1 / 255, "size": {"height": image_size, "width": image_size},
    }))


def make_tiny_siglip(
    folder: Path,
    *,
    hidden: int = 32,
    heads: int = 4,
    layers: int = 2,
    intermediate: int = 64,
    text_hidden: int | None = None,
    text_heads: int | None = None,
    image_size: int = 32,
    patch_size: int = 8,
    max_length: int = 16,
    tokenizer: str = "word",
    seed: int = 0,
) -> Path:
    """Save a random SigLIP with `transformers` into ``folder`` and return it. ``tokenizer`` is "word" (a
    SigLIP-2-like tokenizer.json with </eos>) or "spiece" (SigLIP v1's sentencepiece)."""
    import torch
    from transformers import SiglipConfig, SiglipModel

    folder = Path(folder)
    if tokenizer == "spiece":
        vocab_size = build_sentencepiece_tokenizer(folder, max_length=max_length)
    else:
        vocab_size = build_word_tokenizer(folder, max_length=max_length)
    config = SiglipConfig(
        text_config=dict(
            vocab_size=vocab_size, hidden_size=text_hidden or hidden, intermediate_size=intermediate,
            num_hidden_layers=layers, num_attention_heads=text_heads or heads, max_position_embeddings=max_length,
            projection_size=hidden, pad_token_id=0, bos_token_id=None, eos_token_id=1,
        ),
        vision_config=dict(
            hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers, num_attention_heads=heads,
            image_size=image_size, patch_size=patch_size,
        ),
    )
    torch.manual_seed(seed)
    model = SiglipModel(config).eval()
    with torch.no_grad():
        # Random but not degenerate: transformers initialises these to zero.
        model.logit_scale.fill_(2.3)
        model.logit_bias.fill_(-5.0)
    model.save_pretrained(folder)
    write_preprocessor_config(folder, image_size)
    return folder
