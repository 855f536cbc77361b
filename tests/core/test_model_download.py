"""Downloading a model: progress totals, cancel, fetching only what is missing, the hub cache layout and the errors,
all through the real huggingface_hub client against a fake hub on 127.0.0.1 (tests/support/fake_hub.py)."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from tests.support.fake_hub import serving_fake_hub
from vsearch_app.core.engine.hub import DOWNLOAD_THREAD_NAME, download_model, list_cached_models, resolve_model_dir
from vsearch_app.errors import DownloadCancelled, DownloadError, ModelNotFoundError

REPO = "org/tiny-siglip"
UNNEEDED = {"pytorch_model.bin": b"pickle!" * 100, "flax_model.msgpack": b"flax" * 100, "README.md": b"# tiny",
            "onnx/model.onnx": b"onnx" * 100}


@pytest.fixture
def hub(monkeypatch):
    with serving_fake_hub(monkeypatch) as fake:
        yield fake


def checkpoint_files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def wait_for_download_threads() -> None:
    """A cancelled transfer ends at its next chunk; let it finish so no thread outlives the test."""
    for thread in threading.enumerate():
        if thread.name == DOWNLOAD_THREAD_NAME:
            thread.join(30)


def test_download_reports_progress_and_lays_out_the_hub_cache(tmp_path, hub, tiny_siglip_dir):
    needed = checkpoint_files(tiny_siglip_dir)
    repo = hub.add(REPO, {**needed, **UNNEEDED})
    reports = []

    path = download_model(REPO, tmp_path / "hub", endpoint=hub.url, progress=reports.append)

    repo_folder = tmp_path / "hub" / "models--org--tiny-siglip"
    assert path == repo_folder / "snapshots" / repo.commit
    assert (repo_folder / "refs" / "main").read_text() == repo.commit
    assert checkpoint_files(path) == needed
    if os.name == "posix":  # the snapshot links into blobs/, as huggingface_hub lays it out
        assert all((path / name).is_symlink() for name in needed)
        assert {p.name for p in (repo_folder / "blobs").iterdir()} == {
            os.path.basename(os.readlink(path / name)) for name in needed}
    assert resolve_model_dir(REPO, tmp_path / "hub") == path
    assert [m.repo_id for m in list_cached_models(tmp_path / "hub")] == [REPO]

    assert set(name for _, name in hub.fetched) == set(needed)  # pickles, Flax, ONNX and READMEs are never fetched
    assert all(count == 1 for count in hub.fetched.values())

    total = sum(len(data) for data in needed.values())
    assert {r.total_bytes for r in reports} == {total}
    assert reports[0].done_bytes == 0 and reports[-1].done_bytes == total and reports[-1].current_file is None
    assert all(a.done_bytes <= b.done_bytes for a, b in zip(reports, reports[1:], strict=False))
    assert {r.current_file for r in reports} - {None} <= set(needed)
    assert "model.safetensors" in {r.current_file for r in reports}


def test_a_second_download_fetches_nothing(tmp_path, hub, tiny_siglip_dir):
    hub.add(REPO, checkpoint_files(tiny_siglip_dir))
    first = download_model(REPO, tmp_path / "hub", endpoint=hub.url)
    fetched = sum(hub.fetched.values())
    reports = []
    assert download_model(REPO, tmp_path / "hub", endpoint=hub.url, progress=reports.append) == first
    assert sum(hub.fetched.values()) == fetched
    assert reports and all(r.done_bytes == r.total_bytes for r in reports)


def test_cancel_stops_mid_file_and_the_next_download_fetches_only_the_rest(tmp_path, hub):
    weights = os.urandom(1024 * 1024)
    files = {"config.json": b'{"model_type": "siglip"}', "tokenizer.json": b"{}" * 500, "model.safetensors": weights}
    hub.add(REPO, files, slow={"model.safetensors": 0.02})
    small = len(files["tokenizer.json"])
    cancel = threading.Event()
    reports = []

    def progress(report):
        reports.append(report)
        if report.current_file == "model.safetensors" and report.done_bytes > small:
            cancel.set()  # some of the weights have arrived

    with pytest.raises(DownloadCancelled, match=f"download of {REPO} cancelled"):
        download_model(REPO, tmp_path / "hub", endpoint=hub.url, progress=progress, cancel=cancel)
    wait_for_download_threads()
    assert not [t for t in threading.enumerate() if t.name == DOWNLOAD_THREAD_NAME]
    assert small < reports[-1].done_bytes < small + len(weights)

    # The cut-off model is invisible: no ref, no config.json, not listed; what was complete is kept.
    repo_folder = tmp_path / "hub" / "models--org--tiny-siglip"
    assert not (repo_folder / "refs" / "main").exists()
    with pytest.raises(ModelNotFoundError, match="not downloaded yet"):
        resolve_model_dir(REPO, tmp_path / "hub")
    assert list_cached_models(tmp_path / "hub") == []
    assert hub.fetched[(REPO, "tokenizer.json")] == 1 and hub.fetched[(REPO, "config.json")] == 0

    reports.clear()
    cancel.clear()
    hub.repos[REPO].slow.clear()
    path = download_model(REPO, tmp_path / "hub", endpoint=hub.url, progress=reports.append, cancel=cancel)
    assert checkpoint_files(path) == files
    assert hub.fetched[(REPO, "tokenizer.json")] == 1  # kept from the cancelled run, not fetched again
    assert hub.fetched[(REPO, "config.json")] == 1 and hub.fetched[(REPO, "model.safetensors")] == 2
    assert reports[0].done_bytes == small and reports[-1].done_bytes == reports[-1].total_bytes == sum(
        map(len, files.values()))
    assert not list(repo_folder.rglob("*.incomplete"))
    assert resolve_model_dir(REPO, tmp_path / "hub") == path


def test_cancel_before_the_first_file_fetches_nothing(tmp_path, hub, tiny_siglip_dir):
    hub.add(REPO, checkpoint_files(tiny_siglip_dir))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DownloadCancelled):
        download_model(REPO, tmp_path / "hub", endpoint=hub.url, cancel=cancel)
    assert not hub.fetched


def test_a_cancelled_update_keeps_the_complete_older_snapshot(tmp_path, hub):
    old = download_model_from(hub, tmp_path, {"config.json": b'{"v": 1}', "model.safetensors": b"old" * 10})
    hub.add(REPO, {"config.json": b'{"v": 2}', "model.safetensors": os.urandom(512 * 1024)},
            slow={"model.safetensors": 0.02})
    cancel = threading.Event()

    def progress(report):
        if report.current_file == "model.safetensors" and report.done_bytes > 0:
            cancel.set()

    with pytest.raises(DownloadCancelled):
        download_model(REPO, tmp_path / "hub", endpoint=hub.url, progress=progress, cancel=cancel)
    wait_for_download_threads()
    assert resolve_model_dir(REPO, tmp_path / "hub") == old


def download_model_from(hub, tmp_path, files):
    hub.add(REPO, files)
    return download_model(REPO, tmp_path / "hub", endpoint=hub.url)


def test_gated_model_explains_the_licence(tmp_path, hub, tiny_siglip_dir):
    hub.add("google/paligemma-3b-mix-224", checkpoint_files(tiny_siglip_dir), gated=True)
    with pytest.raises(DownloadError, match="accept its licence at https://huggingface.co/google/paligemma"):
        download_model("google/paligemma-3b-mix-224", tmp_path / "hub", endpoint=hub.url)
    assert not (tmp_path / "hub" / "models--google--paligemma-3b-mix-224" / "refs").exists()


def test_unknown_model_says_check_the_spelling(tmp_path, hub):
    with pytest.raises(DownloadError, match="was not found on huggingface.co"):
        download_model("org/no-such-model", tmp_path / "hub", endpoint=hub.url)


def test_a_repo_without_config_is_refused_before_fetching(tmp_path, hub):
    hub.add(REPO, {"model.safetensors": b"x" * 100})
    with pytest.raises(DownloadError, match="no config.json"):
        download_model(REPO, tmp_path / "hub", endpoint=hub.url)
    assert not hub.fetched


def test_unreachable_hub_is_a_clear_error(tmp_path, hub):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match="no connection to huggingface.co"):
        download_model(REPO, tmp_path / "hub", endpoint=f"http://127.0.0.1:{port}")


def test_offline_mode_is_a_clear_error_without_a_request(tmp_path, hub, monkeypatch):
    hub.add(REPO, {"config.json": b"{}"})
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(DownloadError, match="no connection"):
        download_model(REPO, tmp_path / "hub", endpoint=hub.url)
    assert hub.requests == []


def test_a_failing_progress_callback_stops_the_transfer(tmp_path, hub):
    hub.add(REPO, {"config.json": b"{}", "model.safetensors": os.urandom(256 * 1024)},
            slow={"model.safetensors": 0.02})

    def progress(report):
        if report.current_file == "model.safetensors":
            raise RuntimeError("the window went away")

    with pytest.raises(RuntimeError, match="went away"):
        download_model(REPO, tmp_path / "hub", endpoint=hub.url, progress=progress)
    wait_for_download_threads()
    assert not [t for t in threading.enumerate() if t.name == DOWNLOAD_THREAD_NAME]


def test_the_token_is_sent_with_every_request(tmp_path, hub, tiny_siglip_dir):
    hub.add(REPO, checkpoint_files(tiny_siglip_dir))
    download_model(REPO, tmp_path / "hub", endpoint=hub.url, token="hf_secret")
    assert hub.authorizations == {"Bearer hf_secret"}


def test_cancel_returns_even_while_the_transfer_waits_on_a_silent_server(tmp_path, hub, monkeypatch):
    """A read blocked on the network cannot be interrupted; the caller gets control back anyway and the transfer
    thread ends once the server speaks again."""
    monkeypatch.setattr("vsearch_app.core.engine.hub.CANCEL_GRACE_S", 0.1)
    server_waits = threading.Event()
    hub.add(REPO, {"config.json": b"{}", "model.safetensors": os.urandom(256 * 1024)})
    hub.repos[REPO].stall["model.safetensors"] = server_waits
    cancel = threading.Event()

    def progress(report):
        if report.current_file == "model.safetensors" and report.done_bytes > 0:
            cancel.set()  # the first chunk arrived; the server now sends nothing more

    try:
        with pytest.raises(DownloadCancelled):
            download_model(REPO, tmp_path / "hub", endpoint=hub.url, progress=progress, cancel=cancel)
        # Returned while the transfer is still stuck in its read (the server has not been released yet).
        assert [t for t in threading.enumerate() if t.name == DOWNLOAD_THREAD_NAME]
    finally:
        server_waits.set()
    wait_for_download_threads()
    with pytest.raises(ModelNotFoundError):
        resolve_model_dir(REPO, tmp_path / "hub")
