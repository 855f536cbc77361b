"""Files VSearch writes for the user through fsutil get the mode of any new file (the umask's), never 0600."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.file_modes import modes_of, posix_modes, umask
from vsearch_app.core.store.fsutil import atomic_write_bytes, give_new_file_mode, temp_path_beside


@posix_modes
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_atomic_writes_get_the_mode_the_umask_gives_new_files(tmp_path, mask):
    target = tmp_path / "m.json"
    with umask(mask) as normal:
        atomic_write_bytes(target, b"first")
        assert modes_of(tmp_path) == {"m.json": normal}  # not mkstemp's private 0600
        atomic_write_bytes(target, b"second")
        temp = temp_path_beside(target)
    assert modes_of(tmp_path) == {"m.json": normal, temp.name: normal}
    assert target.read_bytes() == b"second"


def test_temp_files_are_fresh_hidden_names_beside_the_target(tmp_path):
    target = tmp_path / "index.hnsw"
    first, second = temp_path_beside(target), temp_path_beside(target, suffix=".part")
    assert first.parent == tmp_path and first.name.startswith(".index.hnsw.") and first.name.endswith(".tmp")
    assert second.name.endswith(".part") and first != second
    assert first.read_bytes() == b"" and not target.exists()


@posix_modes
def test_a_file_written_privately_by_a_library_gets_the_normal_mode(tmp_path):
    from safetensors.numpy import save_file

    target = tmp_path / "model.safetensors"
    with umask(0o022) as normal:
        save_file({"w": np.zeros(3, np.float32)}, str(target))  # safetensors writes through a 0600 temp file
        give_new_file_mode(target)
    assert modes_of(tmp_path) == {"model.safetensors": normal}  # and the probe file is gone
