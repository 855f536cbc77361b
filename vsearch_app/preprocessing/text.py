"""Tokenizers of the published checkpoints, loaded from their files without `transformers`.

Two formats exist among SigLIP checkpoints:
- ``tokenizer.json`` (SigLIP 2 and PaliGemma: a Gemma tokenizer), run with the `tokenizers` library. Whether <bos>
  and <eos> are added comes from ``tokenizer_config.json`` (``add_bos_token`` / ``add_eos_token``) when it says so,
  otherwise from the tokenizer.json post-processor.
- ``spiece.model`` (SigLIP v1), run with `sentencepiece` after SigLIP's canonicalisation (lowercase, punctuation
  removed, whitespace collapsed) and with </s> appended.

SigLIP embeds text padded to ``max_length`` with the pad token, exactly as it was trained; shorter padding or an
attention mask changes the vectors.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from vsearch_app.errors import CheckpointError

_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable ({exc})") from exc
    return data if isinstance(data, dict) else {}


def _token_text(value: object) -> str | None:
    """tokenizer_config.json stores special tokens as strings or as AddedToken dicts."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


@dataclass
class TextTokenizer:
    """Encodes text to ids for SigLIP (fixed-length, padded) and for PaliGemma (plain ids, decode)."""

    _backend: object
    kind: str  # "tokenizers" or "sentencepiece"
    lowercase: bool
    add_bos: bool
    add_eos: bool
    bos_id: int | None
    eos_id: int | None
    pad_id: int
    max_length: int

    @classmethod
    def from_folder(cls, folder: str | Path, *, max_length: int | None = None, lowercase: bool | None = None):
        """Load the tokenizer files in ``folder``. ``lowercase`` overrides the tokenizer's own setting (SigLIP 2 was
        trained on lowercased text, but its Gemma tokenizer does not lowercase by itself)."""
        folder = Path(folder)
        config = _read_json(folder / "tokenizer_config.json")
        specials = _read_json(folder / "special_tokens_map.json")
        length = int(max_length or config.get("model_max_length") or 64)
        if length > 1_000_000:  # transformers writes a huge sentinel when a tokenizer has no limit
            length = 64
        if (folder / "tokenizer.json").is_file():
            return cls._from_tokenizer_json(folder, config, specials, length, lowercase)
        if (folder / "spiece.model").is_file():
            return cls._from_sentencepiece(folder, config, specials, length, lowercase)
        raise CheckpointError(f"{folder}: no tokenizer.json or spiece.model; the model folder is incomplete")

    @classmethod
    def _from_tokenizer_json(cls, folder, config, specials, length, lowercase):
        from tokenizers import Tokenizer

        try:
            backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # the tokenizers library raises a bare Exception on bad files
            raise CheckpointError(f"{folder}/tokenizer.json: unreadable ({exc})") from exc
        backend.no_padding()
        backend.no_truncation()

        def special(name: str, fallback: str) -> int | None:
            text = _token_text(config.get(name)) or _token_text(specials.get(name)) or fallback
            return backend.token_to_id(text)

        bos, eos = special("bos_token", "<bos>"), special("eos_token", "<eos>")
        pad = special("pad_token", "<pad>")
        if pad is None:
            pad = eos if eos is not None else 0
        if "add_bos_token" in config or "add_eos_token" in config:
            add_bos = bool(config.get("add_bos_token", False))
            add_eos = bool(config.get("add_eos_token", False))
        else:
            # No explicit flags: see what the tokenizer.json post-processor adds around a plain word.
            probe_plain = backend.encode("a", add_special_tokens=False).ids
            probe_full = backend.encode("a", add_special_tokens=True).ids
            add_bos = len(probe_full) > len(probe_plain) and probe_full[0] == bos
            add_eos = len(probe_full) > len(probe_plain) and probe_full[-1] == eos
        do_lower = bool(config.get("do_lower_case", False)) if lowercase is None else lowercase
        return cls(backend, "tokenizers", do_lower, add_bos, add_eos, bos, eos, pad, length)

    @classmethod
    def _from_sentencepiece(cls, folder, config, specials, length, lowercase):
        import sentencepiece

        processor = sentencepiece.SentencePieceProcessor()
        try:
            processor.Load(str(folder / "spiece.model"))
        except (OSError, RuntimeError) as exc:
            raise CheckpointError(f"{folder}/spiece.model: unreadable ({exc})") from exc

        def special(name: str, fallback: str) -> int:
            text = _token_text(config.get(name)) or _token_text(specials.get(name)) or fallback
            return processor.piece_to_id(text)

        eos = special("eos_token", "</s>")
        pad = special("pad_token", "</s>")
        do_lower = bool(config.get("do_lower_case", True)) if lowercase is None else lowercase
        return cls(processor, "sentencepiece", do_lower, False, True, None, eos, pad, length)

    # --- encoding -------------------------------------------------------------------------------------------------

    def _normalise(self, text: str) -> str:
        if self.kind == "sentencepiece":
            # SigLIP v1's canonicalisation, as its training pipeline did it.
            text = text.lower() if self.lowercase else text
            return re.sub(r"\s+", " ", text.translate(_PUNCTUATION)).strip()
        return text.lower() if self.lowercase else text

    def _content_ids(self, text: str) -> list[int]:
        text = self._normalise(text)
        if self.kind == "sentencepiece":
            return list(self._backend.encode(text))  # type: ignore[attr-defined]
        return list(self._backend.encode(text, add_special_tokens=False).ids)  # type: ignore[attr-defined]

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        ids = self._content_ids(text)
        if not add_special_tokens:
            return ids
        prefix = [self.bos_id] if self.add_bos and self.bos_id is not None else []
        suffix = [self.eos_id] if self.add_eos and self.eos_id is not None else []
        return prefix + ids + suffix

    def encode_padded(self, texts: Sequence[str]) -> torch.Tensor:
        """[B, max_length] ids: special tokens added, truncated (keeping them) and right-padded with the pad id."""
        rows = []
        for text in texts:
            prefix = [self.bos_id] if self.add_bos and self.bos_id is not None else []
            suffix = [self.eos_id] if self.add_eos and self.eos_id is not None else []
            room = self.max_length - len(prefix) - len(suffix)
            ids = prefix + self._content_ids(text)[: max(room, 0)] + suffix
            rows.append(ids + [self.pad_id] * (self.max_length - len(ids)))
        return torch.tensor(rows, dtype=torch.long)

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        if self.kind == "sentencepiece":
            return self._backend.decode(list(ids))  # type: ignore[attr-defined]
        return self._backend.decode(list(ids), skip_special_tokens=skip_special_tokens)  # type: ignore[attr-defined]

    def token_id(self, token: str) -> int | None:
        if self.kind == "sentencepiece":
            found = self._backend.piece_to_id(token)  # type: ignore[attr-defined]
            return None if found == self._backend.unk_id() else found  # type: ignore[attr-defined]
        return self._backend.token_to_id(token)  # type: ignore[attr-defined]
