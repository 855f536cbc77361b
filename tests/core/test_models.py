"""Finding models in the hub cache and local folders, and failing clearly (never hanging) when they are absent."""

from __future__ import annotations

import shutil

import pytest

from vsearch_app.core.engine.hub import download_model, list_cached_models, resolve_model_dir
from vsearch_app.errors import CheckpointError, DownloadError, ModelNotFoundError


def install_in_hub_cache(source, cache, repo_id: str, commit: str = "0" * 40):
    """Lay ``source`` out as huggingface_hub does: blobs are skipped, files copied straight into the snapshot."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    shutil.copytree(source, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_resolves_a_hub_cache_snapshot(tmp_path, tiny_siglip_dir):
    snapshot = install_in_hub_cache(tiny_siglip_dir, tmp_path / "hub", "google/siglip2-base-patch16-224")
    assert resolve_model_dir("google/siglip2-base-patch16-224", tmp_path / "hub") == snapshot


def test_resolves_a_local_folder(tiny_siglip_dir, tmp_path):
    assert resolve_model_dir(str(tiny_siglip_dir), tmp_path) == tiny_siglip_dir.resolve()


def test_missing_model_says_how_to_get_it(tmp_path):
    with pytest.raises(ModelNotFoundError, match="vsearch models download google/siglip2-base-patch16-224"):
        resolve_model_dir("google/siglip2-base-patch16-224", tmp_path / "empty-cache")


def test_missing_gated_model_mentions_the_licence(tmp_path):
    with pytest.raises(ModelNotFoundError, match="licence"):
        resolve_model_dir("google/paligemma-3b-mix-224", tmp_path)


def test_folder_without_config_is_not_a_model(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(CheckpointError, match="config.json"):
        resolve_model_dir(str(tmp_path / "photos"), tmp_path)


def test_nonexistent_path_is_reported(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model_dir(str(tmp_path / "nope"), tmp_path)


# Downloads against a fake hub (needed files only, progress, cancel, gated, not found): test_model_download.py.
def test_download_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="no connection"):
        download_model("google/siglip2-base-patch16-224", tmp_path / "hub")


def test_list_shows_cached_models_with_kind(tmp_path, tiny_siglip_dir):
    assert list_cached_models(tmp_path / "none") == []
    install_in_hub_cache(tiny_siglip_dir, tmp_path / "hub", "google/siglip2-base-patch16-224")
    (found,) = list_cached_models(tmp_path / "hub")
    assert found.repo_id == "google/siglip2-base-patch16-224" and found.kind == "search" and found.size_bytes > 0
