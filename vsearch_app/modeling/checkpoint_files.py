"""Which files hold a checkpoint's weights, and the header of one, without importing torch (the library asks this to
identify a model)."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import BinaryIO

from vsearch_app.errors import CheckpointError

SINGLE_FILE = "model.safetensors"
SHARD_INDEX = "model.safetensors.index.json"
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.ckpt")
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit; a bigger "header" means a damaged file


def weight_files(folder: str | Path) -> list[Path]:
    """The safetensors files of a checkpoint: one file, or the shards its index names."""
    folder = Path(folder)
    index = folder / SHARD_INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{index}: unreadable shard index ({exc})") from exc
        shards = [folder / name for name in dict.fromkeys(weight_map.values())]
        missing = [s.name for s in shards if not s.is_file()]
        if missing:
            raise CheckpointError(f"{folder}: shard(s) {', '.join(missing)} listed in {SHARD_INDEX} are missing")
        return shards
    single = folder / SINGLE_FILE
    if single.is_file():
        return [single]
    if any((folder / name).exists() for name in PICKLE_FILES):
        raise CheckpointError(
            f"{folder}: this checkpoint only has pickle weights (pytorch_model.bin); VSearch loads safetensors only, "
            "because pickle files can run code. Use a revision of the model that ships model.safetensors."
        )
    raise CheckpointError(f"{folder}: no {SINGLE_FILE} or {SHARD_INDEX} found")


def read_header(handle: BinaryIO, path: str | Path) -> bytes:
    """The JSON header of the safetensors file open in ``handle`` (positioned at its start), as the bytes stored; the
    tensor data starts at ``8 + len(header)``. CheckpointError (naming ``path``) for a file too short to have a
    header, or whose header length cannot be right. Read errors (OSError) are the caller's to word."""
    size = os.fstat(handle.fileno()).st_size
    head = handle.read(8)
    if len(head) < 8:
        raise CheckpointError(f"{path}: the weights file is empty or truncated")
    length = struct.unpack("<Q", head)[0]
    if length > min(MAX_HEADER_BYTES, size - 8):
        raise CheckpointError(f"{path}: not a safetensors file (damaged header)")
    return handle.read(length)
