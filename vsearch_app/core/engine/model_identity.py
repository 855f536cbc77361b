"""Which model a library's vectors belong to: a name plus a fingerprint of the weights, read without loading them.

A checkpoint retrained into the same folder keeps its name and, with the same architecture, its safetensors
headers and file sizes too, so neither the name nor the headers tell the two apart. The fingerprint therefore also
hashes samples of the tensor data (16 slices of 64 KiB spread over each file: about 1 MiB read per file, a few
milliseconds even for a multi-GB checkpoint) and the two files that change image vectors without touching the
weights (config.json and preprocessor_config.json). The tokenizer is left out: it only affects queries, never the
stored vectors.

The catalog files vectors under ``ModelIdentity.key`` ("<name>@<16 hex>"), so a changed checkpoint is a new model:
its photos are embedded again and never mixed with the old vectors, which are kept (switching back is instant).
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from vsearch_app.errors import CheckpointError
from vsearch_app.modeling.checkpoint_files import read_header, weight_files

SAMPLES_PER_FILE = 16
SAMPLE_BYTES = 64 * 1024
CONFIG_FILES = ("config.json", "preprocessor_config.json")
_KEY = re.compile(r"^(?P<name>.+)@(?P<weights>[0-9a-f]{16})$")


@dataclass(frozen=True)
class ModelIdentity:
    name: str  # what the user chose: a hub id, or the resolved path of a local checkpoint folder
    folder: Path  # where its files are
    weights: str  # fingerprint of the weights and image-side configuration (16 hex digits)

    @property
    def key(self) -> str:
        """The id the catalog and the vector index file this model's vectors under."""
        return f"{self.name}@{self.weights}"


def identify(name: str, folder: str | os.PathLike[str]) -> ModelIdentity:
    """The identity of the checkpoint in ``folder``; CheckpointError when it has no readable safetensors weights."""
    folder = Path(folder)
    return ModelIdentity(name, folder, weights_fingerprint(folder))


def weights_fingerprint(folder: str | os.PathLike[str]) -> str:
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(weight_files(folder), key=lambda p: p.name):
        digest.update(path.name.encode())
        _hash_safetensors(path, digest)
    for name in CONFIG_FILES:
        path = folder / name
        if path.is_file():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _hash_safetensors(path: Path, digest: hashlib._Hash) -> None:
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            header = read_header(fh, path)
            digest.update(struct.pack("<Q", size))
            digest.update(header)
            data_start = 8 + len(header)
            span = size - data_start
            for i in range(SAMPLES_PER_FILE):
                fh.seek(data_start + span * i // SAMPLES_PER_FILE)
                digest.update(fh.read(SAMPLE_BYTES))
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the weights ({exc.strerror or exc})") from exc


def display_name(key: str) -> str:
    """The model's name from a catalog key (keys written before identities had a fingerprint are names)."""
    match = _KEY.match(key)
    return match["name"] if match else key
