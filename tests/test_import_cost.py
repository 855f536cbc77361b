"""`vsearch --help` and the desktop app's first window must not wait for torch (4.4 s to import on the project's
machine): building the CLI parser and importing core.service, core.types and settings leave it unloaded. Each check
runs in a fresh interpreter, since this test process has usually imported torch already."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECKS = {
    "cli parser": "from vsearch_app.cli.main import build_parser; build_parser().format_help()",
    "core.service": "import vsearch_app.core.service",
    "core.types": "import vsearch_app.core.types",
    "settings": "import vsearch_app.settings",
    "training.api": "import vsearch_app.training.api",
}


def _modules_after(code: str) -> set[str]:
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


@pytest.mark.parametrize("name", list(CHECKS))
def test_torch_is_not_imported(name):
    loaded = _modules_after(CHECKS[name])
    assert "torch" not in loaded, f"{name} imports torch"
    assert "vsearch_app.core.engine.embedder" not in loaded and "vsearch_app.core.engine.captioner" not in loaded


def test_the_probe_sees_torch_when_it_is_imported():
    """The check above can fail: the model code, imported, does bring torch."""
    assert "torch" in _modules_after("import vsearch_app.core.engine.embedder")


def test_the_trainer_classes_still_come_from_the_api():
    from vsearch_app.training import api, trainer

    assert api.TrainProgress is trainer.TrainProgress and api.TrainingDiverged is trainer.TrainingDiverged
    with pytest.raises(AttributeError):
        api.no_such_name  # noqa: B018
