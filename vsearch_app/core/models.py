"""Finding models on disk and fetching them from the Hugging Face hub.

Every command except ``vsearch models download`` loads with local files only, so nothing ever waits on the network:
a model is either a local checkpoint folder or a snapshot in the hub cache (the standard layout
``models--org--name/snapshots/<commit>/``, shared with other Hugging Face tools so nothing is downloaded twice).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from vsearch_app.errors import CheckpointError, DownloadError, ModelNotFoundError

log = logging.getLogger(__name__)

# What a checkpoint needs; everything else in a repo (pickles, TF/Flax/ONNX/GGUF weights) is never fetched.
NEEDED_FILES = [
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model-*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "spiece.model",
    "tokenizer.model",
    "preprocessor_config.json",
    "processor_config.json",
]
GATED_PREFIXES = ("google/paligemma",)


def _is_gated(repo_id: str) -> bool:
    return repo_id.lower().startswith(GATED_PREFIXES)


def looks_like_repo_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "~")) and "\\" not in text


def _gated_hint(repo_id: str) -> str:
    if not _is_gated(repo_id):
        return ""
    return (
        f" {repo_id} is gated: first accept its licence at https://huggingface.co/{repo_id} while logged in, then "
        "provide a token (set HF_TOKEN, or run `hf auth login`)."
    )


def resolve_model_dir(model: str, hub_cache_dir: str | Path, *, param: str = "model") -> Path:
    """The local folder holding ``model`` (a folder path or a hub id), without touching the network. ``param``: the
    setting that named the model, for the errors (VSearchError.param)."""
    candidate = Path(model).expanduser()
    if candidate.is_dir():
        if not (candidate / "config.json").is_file():
            raise CheckpointError(f"{candidate}: this folder has no config.json; it is not a model checkpoint")
        return candidate.resolve()
    if not looks_like_repo_id(model):
        raise ModelNotFoundError(f"model folder {model!r} does not exist", param=param)
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model, "config.json", cache_dir=str(hub_cache_dir))
    if isinstance(cached, str):
        return Path(cached).parent
    raise ModelNotFoundError(
        f"model {model} is not downloaded yet.{_gated_hint(model)} Run `vsearch models download {model}` once "
        "(needs internet), or use a local checkpoint folder as the model.", param=param
    )


def download_model(repo_id: str, hub_cache_dir: str | Path, *, token: str | None = None) -> Path:
    """Fetch the files a checkpoint needs into the hub cache, with huggingface_hub's progress bars on stderr.
    ``token`` defaults to HF_TOKEN or the stored `hf auth login` token (huggingface_hub reads both)."""
    if not looks_like_repo_id(repo_id):
        raise DownloadError(f"{repo_id!r} is not a Hugging Face model id (expected 'organisation/name')")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        folder = snapshot_download(
            repo_id, cache_dir=str(hub_cache_dir), allow_patterns=NEEDED_FILES, token=token, etag_timeout=15
        )
    except GatedRepoError as exc:
        raise DownloadError(f"access to {repo_id} was refused.{_gated_hint(repo_id) or ' It is gated.'}") from exc
    except RepositoryNotFoundError as exc:
        raise DownloadError(
            f"{repo_id} was not found on huggingface.co (check the spelling; private or gated repos also need "
            "a token: set HF_TOKEN or run `hf auth login`)."
        ) from exc
    except RevisionNotFoundError as exc:
        raise DownloadError(f"{repo_id}: revision not found ({exc})") from exc
    except LocalEntryNotFoundError as exc:
        raise DownloadError(
            f"cannot download {repo_id}: no connection to huggingface.co (offline, HF_HUB_OFFLINE set, or a proxy "
            "blocks it). Connect and try again, or copy a checkpoint folder here and use it as the model.",
            param="model",
        ) from exc
    except HfHubHTTPError as exc:
        raise DownloadError(f"downloading {repo_id} failed: {exc}") from exc
    except OSError as exc:
        raise DownloadError(f"downloading {repo_id} failed: {exc.strerror or exc}") from exc
    path = Path(folder)
    if not (path / "config.json").is_file():
        raise DownloadError(f"{repo_id} has no config.json; it is not a model VSearch can use")
    return path


@dataclass(frozen=True)
class CachedModel:
    repo_id: str
    kind: str  # "search", "caption" or "other"
    size_bytes: int
    path: Path


def _kind_of(snapshot: Path) -> str:
    try:
        model_type = json.loads((snapshot / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return "other"
    return {"siglip": "search", "paligemma": "caption"}.get(model_type, "other")


def list_cached_models(hub_cache_dir: str | Path) -> list[CachedModel]:
    """Models in the hub cache that have a config.json, newest revision each."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(str(hub_cache_dir))
    except CacheNotFound:
        return []
    found = []
    for repo in info.repos:
        if repo.repo_type != "model":
            continue
        revisions = sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True)
        snapshot = next((r.snapshot_path for r in revisions if (r.snapshot_path / "config.json").is_file()), None)
        if snapshot is not None:
            found.append(CachedModel(repo.repo_id, _kind_of(snapshot), repo.size_on_disk, snapshot))
    return sorted(found, key=lambda m: m.repo_id)
