"""Smoke test: the loss benchmark's quick mode runs and prints both losses and the ratio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_losses.py"


@pytest.mark.slow
def test_quick_mode_runs():
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "sigmoid" in done.stdout and "softmax" in done.stdout
    assert "sigmoid / softmax t2i R@1 ratio" in done.stdout


def test_spike_counter():
    sys.path.insert(0, str(SCRIPT.parent))
    from bench_losses import count_spikes

    smooth = [1.0 - 0.001 * i for i in range(100)]
    assert count_spikes(smooth, skip=10) == 0
    spiky = list(smooth)
    spiky[60] = 3.0
    assert count_spikes(spiky, skip=10) == 1
