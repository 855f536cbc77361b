"""Finding models on disk and fetching them from the Hugging Face hub.

Every command except ``vsearch models download`` loads with local files only, so nothing ever waits on the network:
a model is either a local checkpoint folder or a snapshot in the hub cache (the standard layout
``models--org--name/snapshots/<commit>/``, shared with other Hugging Face tools so nothing is downloaded twice).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vsearch_app.core.store.fsutil import atomic_write_bytes
from vsearch_app.core.types import DownloadProgress
from vsearch_app.errors import CheckpointError, DownloadCancelled, DownloadError, ModelNotFoundError

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


# --- downloading -----------------------------------------------------------------------------------------------------
# One file at a time through huggingface_hub's own `hf_hub_download`, so the cache layout, locking, xet transfers and
# authentication stay theirs. Its `tqdm_class` hook counts the bytes (the same hook snapshot_download uses to add up
# its files), and the transfer runs on a worker thread so that the caller's thread can report progress on a steady
# clock and return as soon as the user cancels, even while a read is blocked on a slow connection.

PROGRESS_INTERVAL_S = 0.25  # how often progress is reported while a file is fetched
CANCEL_GRACE_S = 2.0  # how long a cancelled download waits for its transfer thread before returning anyway
ETAG_TIMEOUT_S = 15
DOWNLOAD_THREAD_NAME = "vsearch-download"


@dataclass(frozen=True)
class _HubFile:
    name: str  # path inside the repo
    size: int  # bytes, as the hub lists it


class _Stop(Exception):
    """Raised inside huggingface_hub's transfer loop (from the progress hook) to end a cancelled transfer."""


class _FileTransfer:
    """The bytes of one file as huggingface_hub reports them through its progress-bar hook."""

    def __init__(self) -> None:
        self.done = 0
        self.stopping = threading.Event()

    def bar_class(self) -> type:
        transfer = self

        class _Bar:
            """The part of tqdm that huggingface_hub's downloaders call. Having ``update_transfer`` makes its xet
            path feed this single bar instead of opening a second one for network bytes."""

            def __init__(self, *args, total: int | None = None, initial: int = 0, **kwargs) -> None:
                self.n = initial
                self.total = total
                transfer.done = initial  # bytes an older huggingface_hub resumed from a .incomplete file

            def update(self, n: float | None = 1) -> None:
                transfer.check()
                self.n += int(n or 0)  # negative when a server ignored a resume request and it starts over
                transfer.done = max(0, self.n)

            def update_transfer(self, n: float | None = 1) -> None:
                transfer.check()

            def set_postfix_str(self, *args, **kwargs) -> None:
                pass

            set_transfer_postfix_str = set_description = set_description_str = refresh = set_postfix_str

            def close(self) -> None:
                pass

            def __enter__(self) -> _Bar:
                return self

            def __exit__(self, *exc_info) -> None:
                pass

        return _Bar

    def check(self) -> None:
        if self.stopping.is_set():
            raise _Stop()


class _ProgressReporter:
    """Adds finished files to the file in flight and hands DownloadProgress to the caller's callback."""

    def __init__(self, files: list[_HubFile], callback: Callable[[DownloadProgress], None] | None) -> None:
        self.total = sum(f.size for f in files)
        self.finished = 0
        self.callback = callback

    def report(self, current: _HubFile | None = None, transfer: _FileTransfer | None = None) -> None:
        if self.callback is None:
            return
        in_flight = min(transfer.done, current.size) if current is not None and transfer is not None else 0
        self.callback(DownloadProgress(self.finished + in_flight, self.total, current.name if current else None))

    def file_done(self, file: _HubFile, size_on_disk: int) -> None:
        self.total += size_on_disk - file.size  # the listing's size was wrong or missing: trust the file
        self.finished += size_on_disk


def _cancelled(repo_id: str) -> DownloadCancelled:
    return DownloadCancelled(
        f"download of {repo_id} cancelled; the files already fetched are kept, and downloading it again fetches only "
        "the rest"
    )


def _connection_errors() -> tuple[type[BaseException], ...]:
    """What "no connection" looks like from huggingface_hub, whichever HTTP client this version of it uses."""
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    found: list[type[BaseException]] = [LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError, TimeoutError]
    for client, names in (("httpx2", ("TransportError",)), ("httpx", ("TransportError",)),
                          ("requests", ("ConnectionError", "Timeout"))):
        module = sys.modules.get(client)  # only the client huggingface_hub already imported
        found.extend(c for c in (getattr(module, n, None) for n in names) if isinstance(c, type))
    return tuple(found)


@contextmanager
def _hub_errors(repo_id: str) -> Iterator[None]:
    """Turns what huggingface_hub raises into DownloadError messages that say what to do."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        yield
    except GatedRepoError as exc:
        raise DownloadError(f"access to {repo_id} was refused.{_gated_hint(repo_id) or ' It is gated.'}") from exc
    except RepositoryNotFoundError as exc:
        raise DownloadError(
            f"{repo_id} was not found on huggingface.co (check the spelling; private or gated repos also need "
            "a token: set HF_TOKEN or run `hf auth login`)."
        ) from exc
    except RevisionNotFoundError as exc:
        raise DownloadError(f"{repo_id}: revision not found ({exc})") from exc
    except _connection_errors() as exc:
        raise DownloadError(
            f"cannot download {repo_id}: no connection to huggingface.co (offline, HF_HUB_OFFLINE set, or a proxy "
            "blocks it). Connect and try again, or copy a checkpoint folder here and use it as the model.",
            param="model",
        ) from exc
    except HfHubHTTPError as exc:
        raise DownloadError(f"downloading {repo_id} failed: {exc}") from exc
    except OSError as exc:
        raise DownloadError(f"downloading {repo_id} failed: {exc.strerror or exc}") from exc


def _needed_files(repo_id: str, token: str | None, endpoint: str | None) -> tuple[str, list[_HubFile]]:
    """The commit that ``main`` points to now, and the files of it that VSearch needs with their sizes (one
    request). config.json comes last: a snapshot that has it is complete, so nothing mistakes a cancelled download
    for a model, and small files come before the weights so that a cancel keeps the most files."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects

    info = HfApi(endpoint=endpoint).model_info(repo_id, files_metadata=True, token=token)
    if not info.sha:
        raise DownloadError(f"the hub did not say which revision of {repo_id} to download; try again later")
    siblings = filter_repo_objects(info.siblings or [], allow_patterns=NEEDED_FILES, key=lambda s: s.rfilename)
    files = [_HubFile(s.rfilename, s.size or (s.lfs.size if s.lfs else 0)) for s in siblings]
    files.sort(key=lambda f: (f.name == "config.json", f.size, f.name))
    return info.sha, files


def _repo_folder(hub_cache_dir: str | Path, repo_id: str) -> Path:
    """The hub cache's documented layout: models--org--name/{blobs,refs,snapshots/<commit>}."""
    return Path(hub_cache_dir) / f"models--{repo_id.replace('/', '--')}"


def _point_ref_at(repo_folder: Path, ref: str, commit: str) -> None:
    """refs/<ref> names the snapshot that lookups by name (try_to_load_from_cache, every other command) use. It is
    written only once every file is there, atomically, so a cancelled download never hides a complete older one."""
    path = repo_folder / "refs" / ref
    if path.is_file() and path.read_text(encoding="utf-8").strip() == commit:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, commit.encode("utf-8"))


def _stop_xet_transfers() -> None:
    """Best effort for a transfer that ignored the stop request: xet downloads run in Rust and report progress
    through a callback whose exceptions may not end them. This is what huggingface_hub itself does on Ctrl-C."""
    try:
        from huggingface_hub.utils._xet import abort_xet_session
    except ImportError:
        return
    abort_xet_session()


def _fetch(repo_id: str, file: _HubFile, commit: str, hub_cache_dir: str | Path, *, token: str | None,
           endpoint: str | None, reporter: _ProgressReporter, cancel: threading.Event) -> None:
    from huggingface_hub import hf_hub_download

    transfer = _FileTransfer()
    outcome: list[BaseException] = []

    def work() -> None:
        try:
            hf_hub_download(repo_id, file.name, revision=commit, cache_dir=str(hub_cache_dir), token=token,
                            endpoint=endpoint, etag_timeout=ETAG_TIMEOUT_S, tqdm_class=transfer.bar_class())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, which raises it
            outcome.append(exc)

    worker = threading.Thread(target=work, name=DOWNLOAD_THREAD_NAME, daemon=True)
    worker.start()
    try:
        reporter.report(file, transfer)
        while worker.is_alive():
            worker.join(PROGRESS_INTERVAL_S)
            if cancel.is_set():
                break
            reporter.report(file, transfer)
    finally:
        # Cancel, Ctrl-C or a failing progress callback: the transfer stops at its next chunk. huggingface_hub
        # removes its partial file (or, before 1.0, keeps the .incomplete file to resume from).
        if worker.is_alive():
            transfer.stopping.set()
            worker.join(CANCEL_GRACE_S)
            if worker.is_alive():
                _stop_xet_transfers()
    if cancel.is_set():
        raise _cancelled(repo_id)
    if outcome:
        raise outcome[0]


def download_model(
    repo_id: str,
    hub_cache_dir: str | Path,
    *,
    token: str | None = None,
    progress: Callable[[DownloadProgress], None] | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
) -> Path:
    """Fetch the files a checkpoint needs (NEEDED_FILES) into the hub cache and return its snapshot folder.

    ``progress`` gets DownloadProgress a few times a second, on the caller's thread; totals come from the hub's
    file listing. Setting ``cancel`` ends the download within about PROGRESS_INTERVAL_S with DownloadCancelled; the
    files already fetched stay in the cache and a later call fetches only the rest (huggingface_hub 1.x and later
    restart a file that was cut off; older versions resume it). ``token`` defaults to HF_TOKEN or the stored
    `hf auth login` token, ``endpoint`` to HF_ENDPOINT (huggingface.co). Errors: DownloadError with what to do."""
    if not looks_like_repo_id(repo_id):
        raise DownloadError(f"{repo_id!r} is not a Hugging Face model id (expected 'organisation/name')")
    cancel = cancel or threading.Event()
    with _hub_errors(repo_id):
        commit, files = _needed_files(repo_id, token, endpoint)
    if not any(f.name == "config.json" for f in files):
        raise DownloadError(f"{repo_id} has no config.json; it is not a model VSearch can use")
    repo_folder = _repo_folder(hub_cache_dir, repo_id)
    snapshot = repo_folder / "snapshots" / commit
    reporter = _ProgressReporter(files, progress)
    missing = []
    for file in files:  # files kept from an earlier download that was cut off count as done from the start
        if (snapshot / file.name).is_file():
            reporter.file_done(file, (snapshot / file.name).stat().st_size)
        else:
            missing.append(file)
    reporter.report()
    for file in missing:
        if cancel.is_set():
            raise _cancelled(repo_id)
        with _hub_errors(repo_id):
            _fetch(repo_id, file, commit, hub_cache_dir, token=token, endpoint=endpoint, reporter=reporter,
                   cancel=cancel)
        reporter.file_done(file, (snapshot / file.name).stat().st_size)
        reporter.report()
    _point_ref_at(repo_folder, "main", commit)
    log.info("downloaded %s (%d files, commit %s) into %s", repo_id, len(files), commit, snapshot)
    return snapshot


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
