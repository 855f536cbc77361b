"""Device and dtype choice: explicit values are honoured, impossible ones are clear errors, auto is sensible."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest
import torch

from vsearch_app.core.engine import devices
from vsearch_app.core.types import DEVICE_CHOICES, DTYPE_CHOICES
from vsearch_app.errors import InvalidArgumentError


def test_auto_dtype_follows_the_hardware(monkeypatch):
    assert devices.resolve_dtype("auto", torch.device("cuda")) == torch.float16
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)
    assert devices.resolve_dtype("auto", torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: False)
    assert devices.resolve_dtype("auto", torch.device("cpu")) == torch.float32


def test_explicit_dtype_is_honoured():
    assert devices.resolve_dtype("float16", torch.device("cpu")) == torch.float16


def test_unknown_values_are_rejected():
    with pytest.raises(InvalidArgumentError) as dtype_error:
        devices.resolve_dtype("int4", torch.device("cpu"))
    with pytest.raises(InvalidArgumentError) as device_error:
        devices.resolve_device("tpu")
    assert (dtype_error.value.param, device_error.value.param) == ("dtype", "device")


def test_every_choice_the_front_ends_offer_resolves():
    """The choices live in core.types (no torch for the front ends); each one must mean something here."""
    assert {devices.resolve_dtype(name, torch.device("cpu")) for name in DTYPE_CHOICES} <= set(devices.DTYPES.values())
    assert set(DTYPE_CHOICES) == {"auto", *devices.DTYPES}
    assert devices.resolve_device(DEVICE_CHOICES[0]) in (torch.device(n) for n in DEVICE_CHOICES[1:])


def test_unavailable_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InvalidArgumentError, match="no CUDA GPU"):
        devices.resolve_device("cuda")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert devices.resolve_device("auto") == torch.device("cpu")


_FAULTS_PROBE = r"""
import ctypes, resource, sys
from vsearch_app.core.engine import devices
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
SIZE = 12 << 20  # one batch's activations, give or take

def faults_for_ten_batches():
    # A forward pass holds several activation blocks at once, then frees them all.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        blocks = [libc.malloc(SIZE) for _ in range(4)]
        for block in blocks:
            ctypes.memset(block, 1, SIZE)
        for block in blocks:
            libc.free(block)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = faults_for_ten_batches()
applied = devices.keep_freed_memory_for_reuse()
faults_for_ten_batches()  # the first block after the change grows the heap once
print(applied, default, faults_for_ten_batches())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_activation_memory_is_reused_instead_of_faulted_in_again():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", _FAULTS_PROBE], capture_output=True, text=True, env=env, check=True)
    applied, default, tuned = out.stdout.split()
    assert applied == "True"
    assert int(default) > 10 * 3000  # most batches mapped and zero-filled their blocks anew (3,000 pages each)
    assert int(tuned) < int(default) // 10


def test_malloc_settings_from_the_environment_win(monkeypatch):
    devices.keep_freed_memory_for_reuse.cache_clear()
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    try:
        assert devices.keep_freed_memory_for_reuse() is False
    finally:
        devices.keep_freed_memory_for_reuse.cache_clear()
