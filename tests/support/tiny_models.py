"""The tests' tiny checkpoints: the builders live in the package (vsearch_app/training/tiny_models.py) so that
`vsearch self-test` can use them too; this module keeps the tests' import path."""

from vsearch_app.training.tiny_models import (
    SPECIALS,
    WORDS,
    build_sentencepiece_tokenizer,
    build_word_tokenizer,
    make_tiny_siglip,
    write_preprocessor_config,
)

__all__ = [
    "SPECIALS", "WORDS", "build_sentencepiece_tokenizer", "build_word_tokenizer", "make_tiny_siglip",
    "write_preprocessor_config",
]
