"""Choosing the device and dtype a model runs in, from the user's `auto|cpu|cuda|mps` and `auto|float32|...`."""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import platform
import sys
from pathlib import Path

import torch

from vsearch_app.core.types import DEVICE_CHOICES, DTYPE_CHOICES
from vsearch_app.errors import InvalidArgumentError

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}  # DTYPE_CHOICES but auto


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 dot products (AVX512-BF16 or AMX), where bf16 is ~3x faster than fp32.
    Without them bf16 is emulated and gains little, so auto stays in float32."""
    if sys.platform.startswith("linux"):
        try:
            flags = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
        return " avx512_bf16" in flags or " amx_bf16" in flags
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and sys.platform != "darwin"
    except (AttributeError, RuntimeError):
        return False


def resolve_device(name: str = "auto") -> torch.device:
    if name not in DEVICE_CHOICES:
        raise InvalidArgumentError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}",
                                   param="device")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError("the device cuda was asked for, but no CUDA GPU is available to PyTorch here",
                                   param="device")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InvalidArgumentError("the device mps was asked for, but Apple's Metal backend is not available here",
                                   param="device")
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """auto: bf16 on a CPU with native bf16, fp16 on a GPU, else fp32."""
    if name == "auto":
        if device.type in ("cuda", "mps"):
            return torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    if name not in DTYPES:
        raise InvalidArgumentError(f"unknown dtype {name!r}; choose one of {', '.join(DTYPE_CHOICES)}", param="dtype")
    return DTYPES[name]


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_REUSE_UP_TO = 32 << 20  # glibc's largest mmap threshold on 64-bit
_KEEP_FREED = 256 << 20


@functools.cache
def keep_freed_memory_for_reuse() -> bool:
    """Let glibc reuse freed memory for the model's per-batch activations instead of mapping fresh pages each time.

    By default glibc serves large blocks (a few MB: one batch's activations) with their own mmap and unmaps them on
    free, so every forward pass faults its working set in again, zero-filled by the kernel. Here blocks up to 32 MB
    are served from the heap, and up to 256 MB of freed heap is kept before trimming (the gain measured with
    bench_embed is in benchmarks/RESULTS.md). Process-wide and set once; skipped where the user tuned malloc
    through its environment variables, and a no-op off glibc (macOS and Windows allocators do not unmap like this).
    Returns whether it was applied."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        applied = libc.mallopt(_M_MMAP_THRESHOLD, _REUSE_UP_TO) == 1
        applied = libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED) == 1 and applied
    except (OSError, AttributeError):
        return False
    log.debug("glibc malloc tuned for reuse: %s", applied)
    return applied
