"""The one safetensors header reader (model identity and the PaliGemma loader both use it): damage is a
CheckpointError naming the file, never a struct error or a 100 GB read."""

from __future__ import annotations

import json
import struct

import pytest

from vsearch_app.errors import CheckpointError
from vsearch_app.modeling.checkpoint_files import read_header


def _write(path, header_bytes: bytes, declared: int | None = None, data: bytes = b"\0" * 16):
    length = len(header_bytes) if declared is None else declared
    path.write_bytes(struct.pack("<Q", length) + header_bytes + data)
    return path


def test_reads_the_header_and_leaves_the_handle_at_the_data(tmp_path):
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    path = _write(tmp_path / "model.safetensors", header)
    with open(path, "rb") as handle:
        assert read_header(handle, path) == header
        assert handle.tell() == 8 + len(header)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty or truncated"),
        (b"\x01\x02\x03", "empty or truncated"),
        (struct.pack("<Q", 10**12) + b"{}", "damaged header"),  # a length far past the end of the file
    ],
)
def test_damage_is_a_checkpoint_error_that_names_the_file(tmp_path, content, reason):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with open(path, "rb") as handle, pytest.raises(CheckpointError, match=reason) as info:
        read_header(handle, path)
    assert str(path) in str(info.value)
