"""With the network blocked, every command works and none tries to connect; `models download` says it is offline.

Each command runs as a real `python -m vsearch_app` process with tests/faults/netguard first on PYTHONPATH: its
sitecustomize makes every connect and name lookup fail and writes it to a log, which must stay empty (the decoder
worker processes inherit the guard). HF_HUB_OFFLINE is deliberately not set here (the rest of the suite sets it), so
nothing is kept off the network by that switch: the code itself must not reach for it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.hostile_files import photo_bytes
from tests.support.tiny_paligemma import make_tiny_paligemma

GUARD = Path(__file__).with_name("netguard")
REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 300


class GuardedCli:
    def __init__(self, tmp_path: Path) -> None:
        self.log = tmp_path / "connect-attempts.log"
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        env.update({
            "PYTHONPATH": os.pathsep.join([str(GUARD), str(REPO)]),
            "VSEARCH_NETGUARD_LOG": str(self.log),
            "VSEARCH_DATA_DIR": str(tmp_path / "data"),
            "HF_HUB_CACHE": str(tmp_path / "hub"),
            "HF_HOME": str(tmp_path / "hf-home"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "QT_QPA_PLATFORM": "offscreen",
        })
        self.env = env

    def attempts(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def run(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "vsearch_app", *args], env=self.env, capture_output=True,
                              text=True, timeout=TIMEOUT)
        assert proc.returncode == expect, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        assert not self.attempts(), f"{args} tried to reach the network:\n{self.attempts()}"
        return proc


def test_the_guard_itself_blocks_and_records(tmp_path):
    cli = GuardedCli(tmp_path)
    code = ("import socket\n"
            "for attempt in (lambda: socket.create_connection(('example.org', 443), timeout=1),\n"
            "                lambda: socket.socket().connect(('192.0.2.1', 443))):\n"
            "    try:\n"
            "        attempt()\n"
            "    except OSError as e:\n"
            "        print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=cli.env, capture_output=True, text=True, timeout=60)
    assert out.stdout.count("blocked by the test's network guard") == 2, out
    assert "name lookup of 'example.org'" in cli.attempts()
    assert "connect to ('192.0.2.1', 443)" in cli.attempts()


@pytest.mark.slow
def test_every_command_works_offline_without_trying_to_connect(tmp_path, tiny_siglip_dir):
    cli = GuardedCli(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(6):
        (photos / f"p{i}.jpg").write_bytes(photo_bytes(i))
    model = str(tiny_siglip_dir)
    captioner = str(make_tiny_paligemma(tmp_path / "paligemma"))

    cli.run("--help")
    cli.run("folders", "add", str(photos))
    cli.run("folders", "list")
    cli.run("index", "--model", model)
    assert cli.run("search", "a red circle", "--json").stdout.startswith("[")
    cli.run("search", str(photos / "p0.jpg"), "--limit", "3")
    cli.run("status", "--json")
    cli.run("config", "show")
    cli.run("config", "set", "model", model)
    cli.run("config", "unset", "model")
    cli.run("embed", "--image", str(photos / "p1.jpg"), "--text", "a dog", "--model", model)
    cli.run("caption", str(photos / "p2.jpg"), "--caption-model", captioner, "--max-tokens", "3", "--dtype", "float32")
    cli.run("models", "list")
    _watch_briefly(cli, model)
    shapes = tmp_path / "shapes"
    cli.run("make-shapes", str(shapes), "--n-train", "16", "--n-test", "4")
    cli.run("train", "--data", str(shapes / "train"), "--model", str(shapes / "model"), "--out", str(tmp_path / "run"),
            "--from-scratch", "--epochs", "1", "--batch-size", "8", "--device", "cpu")
    cli.run("eval", "--data", str(shapes / "test"), "--model", str(tmp_path / "run"))
    cli.run("self-test", "--timeout", "120")
    cli.run("folders", "remove", str(photos))


def _watch_briefly(cli: GuardedCli, model: str) -> None:
    """`index --watch` until it says it is watching, then Ctrl-C."""
    proc = subprocess.Popen([sys.executable, "-m", "vsearch_app", "index", "--watch", "--model", model], env=cli.env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        seen = ""
        while "watching for changes" not in seen and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
        time.sleep(2.0)  # the watcher's initial pass and observers are up
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, seen + rest
    assert "Traceback" not in seen + rest
    assert not cli.attempts(), cli.attempts()


def test_models_download_fails_with_one_clear_line(tmp_path):
    cli = GuardedCli(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "vsearch_app", "models", "download"], env=cli.env,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no connection to huggingface.co" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert cli.attempts()  # it did try: it is the one command that should
