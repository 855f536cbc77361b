"""PaliGemma's input layout: ``<image>`` x num_image_tokens, ``<bos>``, the prompt, and a newline.

This is the layout PaliGemma was trained on (and what `transformers`' PaliGemmaProcessor builds): the image tokens and
the prompt up to and including the newline form the prefix; the model's answer follows it and ends with ``<eos>``
(or, for captions, often a newline). The prompt and its newline are tokenised as one piece of text, exactly as the
processor does after the ``<bos>`` special token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vsearch_app.errors import CheckpointError, InvalidArgumentError

if TYPE_CHECKING:  # only annotations here; text.py imports torch, and core.service imports this module
    from vsearch_app.preprocessing.text import TextTokenizer

IMAGE_TOKEN = "<image>"
DEFAULT_PROMPT = "caption en"


@dataclass(frozen=True)
class PaliGemmaPrompt:
    input_ids: list[int]
    stop_token_ids: tuple[int, ...]  # <eos> and the newline


def check_prompt(prompt: str) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidArgumentError("the prompt is empty; try 'caption en', 'describe en' or 'question: what is this?'")
    if IMAGE_TOKEN in prompt:
        raise InvalidArgumentError(f"the prompt must not contain {IMAGE_TOKEN}; the image is added automatically")
    return prompt


def build_prompt(
    tokenizer: TextTokenizer, prompt: str, *, num_image_tokens: int, image_token_id: int
) -> PaliGemmaPrompt:
    check_prompt(prompt)
    if tokenizer.bos_id is None:
        raise CheckpointError("the caption model's tokenizer has no <bos> token; it is not a PaliGemma tokenizer")
    ids = [image_token_id] * num_image_tokens + [tokenizer.bos_id]
    ids += tokenizer.encode(prompt + "\n", add_special_tokens=False)
    stops = [tokenizer.eos_id, tokenizer.token_id("\n")]
    return PaliGemmaPrompt(ids, tuple(t for t in stops if t is not None))


class StreamingDecoder:
    """Turns generated token ids into text pieces as they arrive. It re-decodes the whole answer each time (so
    tokens that only make sense together, like byte-fallback pieces of one character, come out right) and holds
    back text that still ends in an incomplete character."""

    def __init__(self, tokenizer: TextTokenizer) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.emitted = ""

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd") or not text.startswith(self.emitted):
            return ""
        piece, self.emitted = text[len(self.emitted):], text
        return piece

    def text(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=True)
