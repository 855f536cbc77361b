"""`vsearch models download`: a progress line on a terminal, the same errors as before, against a fake hub."""

from __future__ import annotations

import functools
import io
import sys

import pytest

from tests.support.fake_hub import serving_fake_hub
from vsearch_app.cli.main import main
from vsearch_app.cli.models_cmd import ProgressLine
from vsearch_app.core.engine import hub as model_hub
from vsearch_app.core.types import DownloadProgress

REPO = "org/tiny-siglip"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def hub(monkeypatch):
    """The real download code, pointed at a fake hub (the CLI has no endpoint option; HF_ENDPOINT is read once)."""
    with serving_fake_hub(monkeypatch) as fake:
        monkeypatch.setattr(model_hub, "download_model", functools.partial(model_hub.download_model, endpoint=fake.url))
        yield fake


def checkpoint(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_download_shows_a_progress_line_on_a_terminal(hub, tiny_siglip_dir, tmp_path, monkeypatch, capsys):
    hub.add(REPO, checkpoint(tiny_siglip_dir))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["--data-dir", str(tmp_path / "lib"), "models", "download", REPO]) == 0
    shown = terminal.getvalue()
    assert shown.startswith(f"\rDownloading {REPO}: 0 B of ") and shown.endswith("\n")
    assert "(100%)" in shown.rsplit("\r", 1)[-1]
    assert "model.safetensors" in shown
    assert f"{REPO} is ready in " in capsys.readouterr().out
    assert main(["--data-dir", str(tmp_path / "lib"), "models", "list"]) == 0
    assert capsys.readouterr().out.startswith(f"{REPO}\tsearch\t")


def test_download_writes_no_progress_into_a_pipe(hub, tiny_siglip_dir, tmp_path, capsys):
    hub.add(REPO, checkpoint(tiny_siglip_dir))
    assert main(["--data-dir", str(tmp_path / "lib"), "models", "download", REPO]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and f"{REPO} is ready in " in captured.out


def test_download_errors_are_one_line_after_the_progress_line(hub, tmp_path, monkeypatch):
    hub.add("google/paligemma-3b-mix-224", {"config.json": b"{}"}, gated=True)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["--data-dir", str(tmp_path / "lib"), "models", "download", "google/paligemma-3b-mix-224"]) == 2
    last_line = terminal.getvalue().rstrip("\n").rsplit("\n", 1)[-1]
    assert last_line.startswith("vsearch: access to google/paligemma-3b-mix-224 was refused")
    assert "accept its licence" in last_line and "Traceback" not in terminal.getvalue()


def test_download_offline_says_so(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path / "lib"), "models", "download", REPO]) == 2  # the tests run offline
    assert "no connection to huggingface.co" in capsys.readouterr().err


def test_progress_line_pads_over_a_longer_previous_line():
    terminal = Terminal()
    line = ProgressLine("org/m", terminal)
    line.show(DownloadProgress(0, 2_000_000, "tokenizer.json"))
    line.show(DownloadProgress(2_000_000, 2_000_000, None))
    line.close()
    first, second = terminal.getvalue().split("\r")[1:]
    assert first == "Downloading org/m: 0 B of 2.0 MB (0%), tokenizer.json"
    assert second.rstrip() == "Downloading org/m: 2.0 MB of 2.0 MB (100%)" and len(second) == len(first) + 1
    assert second.endswith("\n")
