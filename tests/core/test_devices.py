"""Device and dtype choice: explicit values are honoured, impossible ones are clear errors, auto is sensible."""

from __future__ import annotations

import pytest
import torch

from vsearch_app.core import devices
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
    with pytest.raises(InvalidArgumentError):
        devices.resolve_dtype("int4", torch.device("cpu"))
    with pytest.raises(InvalidArgumentError):
        devices.resolve_device("tpu")


def test_unavailable_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InvalidArgumentError, match="no CUDA GPU"):
        devices.resolve_device("cuda")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert devices.resolve_device("auto") == torch.device("cpu")
