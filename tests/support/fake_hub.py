"""A Hugging Face hub on 127.0.0.1, so model downloads are tested through the real huggingface_hub client (its cache
layout, locks and progress hooks) without the network.

It answers the three requests a download makes: the model's file listing (``GET /api/models/<id>?blobs=true``), a
file's metadata (``HEAD /<id>/resolve/<rev>/<file>``) and the file itself (``GET``, with ``Range`` for resumes),
with the headers and error codes (``X-Error-Code: RepoNotFound / GatedRepo / EntryNotFound``) the real hub sends.
Files can be streamed slowly, and every request is recorded, so tests can cancel mid-file and count what was fetched.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STREAM_CHUNK = 16 * 1024


@dataclass
class FakeRepo:
    repo_id: str
    files: dict[str, bytes]
    commit: str
    gated: bool = False
    slow: dict[str, float] = field(default_factory=dict)  # file -> seconds to wait between streamed chunks
    stall: dict[str, threading.Event] = field(default_factory=dict)  # file -> sends one chunk, then waits for it


class FakeHub:
    """Use as a context manager; ``url`` is the endpoint to pass to the download code."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path without the query)
        self.authorizations: set[str | None] = set()  # Authorization headers seen
        self.fetched: Counter[tuple[str, str]] = Counter()  # (repo_id, file) -> GET requests
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-hub", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, repo_id: str, files: dict[str, bytes], *, gated: bool = False,
            slow: dict[str, float] | None = None) -> FakeRepo:
        commit = hashlib.sha1(repo_id.encode() + b"".join(sorted(files.values()))).hexdigest()
        repo = FakeRepo(repo_id, dict(files), commit, gated, dict(slow or {}))
        self.repos[repo_id] = repo
        return repo

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    info_path = re.compile(r"^/api/models/([^/]+/[^/]+)(?:/revision/[^/]+)?$")
    file_path = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args) -> None:  # noqa: A002 - quiet test output
            pass

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, *, send_body: bool) -> None:
            path = self.path.split("?", 1)[0]
            hub.requests.append((self.command, path))
            hub.authorizations.add(self.headers.get("Authorization"))
            if match := info_path.match(path):
                return self._listing(match.group(1))
            if match := file_path.match(path):
                return self._file(match.group(1), match.group(3), send_body=send_body)
            self._error(404, None)

        def _listing(self, repo_id: str) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound")
            siblings = [{"rfilename": name, "size": len(data), "blobId": _etag(data)[:40]}
                        for name, data in repo.files.items()]
            body = json.dumps({"id": repo_id, "modelId": repo_id, "sha": repo.commit, "private": False,
                               "gated": "manual" if repo.gated else False, "siblings": siblings}).encode()
            self._send(200, {"Content-Type": "application/json"}, body)

        def _file(self, repo_id: str, name: str, *, send_body: bool) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound")
            if repo.gated:
                return self._error(403, "GatedRepo")
            if name not in repo.files:
                return self._error(404, "EntryNotFound", {"X-Repo-Commit": repo.commit})
            data = repo.files[name]
            headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{_etag(data)}"', "Accept-Ranges": "bytes"}
            start = 0
            if send_body:
                hub.fetched[(repo_id, name)] += 1
                if match := re.match(r"bytes=(\d+)-$", self.headers.get("Range", "")):
                    start = int(match.group(1))
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            headers["Content-Length"] = str(len(data) - start)
            self.send_response(206 if start else 200)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if not send_body:
                return
            delay = repo.slow.get(name, 0.0)
            try:
                for offset in range(start, len(data), STREAM_CHUNK):
                    self.wfile.write(data[offset:offset + STREAM_CHUNK])
                    self.wfile.flush()
                    if delay:
                        time.sleep(delay)
                    if name in repo.stall:
                        repo.stall[name].wait(30)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: a cancelled download

        def _error(self, status: int, code: str | None, extra: dict[str, str] | None = None) -> None:
            headers = {"Content-Type": "application/json", **(extra or {})}
            if code:
                headers["X-Error-Code"] = code
            self._send(status, headers, json.dumps({"error": code or "not found"}).encode())

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler


@contextmanager
def serving_fake_hub(monkeypatch) -> Iterator[FakeHub]:
    """A running FakeHub with huggingface_hub allowed to reach it: the test suite runs with HF_HUB_OFFLINE=1 (so a
    stray real download fails fast), and this hub is local. Chunks are made small so that progress and cancel
    happen inside a file, as they do with real multi-GB checkpoints."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "DOWNLOAD_CHUNK_SIZE", STREAM_CHUNK)
    with FakeHub() as hub:
        yield hub
