"""Our tokenizers give the ids transformers' tokenizers give, padded the way SigLIP was trained."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from tests.support.tiny_models import build_sentencepiece_tokenizer, build_word_tokenizer
from vsearch_app.errors import CheckpointError
from vsearch_app.preprocessing.text import TextTokenizer

TEXTS = ["a red bike", "Kids on the beach, at sunset!", "", "the the the the the the the the the the the the the"]


def test_tokenizer_json_matches_transformers(tmp_path):
    build_word_tokenizer(tmp_path, max_length=8)
    reference = AutoTokenizer.from_pretrained(tmp_path)
    ours = TextTokenizer.from_folder(tmp_path)
    expected = reference(TEXTS, padding="max_length", max_length=8, truncation=True)["input_ids"]
    assert ours.encode_padded(TEXTS).tolist() == expected
    assert expected[0][3] == ours.eos_id  # the comparison covers the </eos> SigLIP 2 appends


def test_tokenizer_config_flags_override_the_post_processor(tmp_path):
    import json

    build_word_tokenizer(tmp_path, max_length=6, add_bos=False, add_eos=True)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config.update(add_bos_token=True, add_eos_token=False)  # as Gemma tokenizer configs state them
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    ours = TextTokenizer.from_folder(tmp_path)
    row = ours.encode_padded(["red circle"])[0].tolist()
    assert row[0] == ours.bos_id and ours.eos_id not in row and row[-1] == ours.pad_id


def test_lowercase_override(tmp_path):
    build_word_tokenizer(tmp_path, max_length=6)
    assert TextTokenizer.from_folder(tmp_path).encode("RED")[0] == 3  # <unk>: Gemma does not lowercase itself
    assert TextTokenizer.from_folder(tmp_path, lowercase=True).encode("RED") == \
        TextTokenizer.from_folder(tmp_path).encode("red")


def test_sentencepiece_matches_siglip_tokenizer(tmp_path):
    build_sentencepiece_tokenizer(tmp_path, max_length=12)
    reference = AutoTokenizer.from_pretrained(tmp_path)
    ours = TextTokenizer.from_folder(tmp_path)
    texts = ["a red bike", "Kids on the BEACH, at sunset!", "golden retriever"]
    expected = reference(texts, padding="max_length", max_length=12, truncation=True)["input_ids"]
    assert ours.encode_padded(texts).tolist() == expected


def test_folder_without_tokenizer_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="tokenizer"):
        TextTokenizer.from_folder(tmp_path)
