"""A model's identity: its name plus a fingerprint of what decides its image vectors, read without loading it."""

from __future__ import annotations

import json
import shutil
import struct

import pytest

from vsearch_app.core.engine.model_identity import display_name, identify, weights_fingerprint
from vsearch_app.errors import CheckpointError


def fake_checkpoint(folder, payload: bytes, header: dict | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    tensor = {"dtype": "F32", "shape": [len(payload) // 4], "data_offsets": [0, len(payload)]}
    head = json.dumps(header or {"w": tensor})
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(head)) + head.encode() + payload)
    (folder / "config.json").write_text('{"model_type": "siglip"}')
    return folder


def test_same_files_same_fingerprint_wherever_they_are(tmp_path):
    a = fake_checkpoint(tmp_path / "a", bytes(range(256)) * 4096)
    b = shutil.copytree(a, tmp_path / "b")
    assert weights_fingerprint(a) == weights_fingerprint(b)
    assert len(weights_fingerprint(a)) == 16


def test_retrained_weights_with_identical_header_and_size_differ(tmp_path):
    a = fake_checkpoint(tmp_path / "a", bytes(1 << 20))
    b = fake_checkpoint(tmp_path / "b", bytes(1 << 19) + b"\x01" + bytes((1 << 19) - 1))
    assert (a / "model.safetensors").stat().st_size == (b / "model.safetensors").stat().st_size
    assert weights_fingerprint(a) != weights_fingerprint(b)


def test_image_preprocessing_is_part_of_the_identity(tmp_path):
    a = fake_checkpoint(tmp_path / "a", bytes(4096))
    before = weights_fingerprint(a)
    (a / "preprocessor_config.json").write_text('{"size": {"height": 256, "width": 256}}')
    assert weights_fingerprint(a) != before


def test_a_folder_without_usable_weights_is_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        identify("mine", empty)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(CheckpointError, match="damaged"):
        weights_fingerprint(broken)


def test_key_and_display_name(tmp_path):
    identity = identify("org/name", fake_checkpoint(tmp_path / "m", bytes(64)))
    assert identity.key == f"org/name@{identity.weights}"
    assert display_name(identity.key) == "org/name"
    assert display_name("/models/with@sign") == "/models/with@sign"  # a key written before fingerprints
