"""An event storm: thousands of files land at once in a watched folder; every one is indexed exactly once, also when
the OS loses events (an inotify queue overflow, simulated or real)."""

from __future__ import annotations

import threading
import time

import pytest

from tests.core.library_fakes import FakeEmbedder
from vsearch_app.core.library import watcher as watcher_module
from vsearch_app.core.library.library import Library
from vsearch_app.core.library.watcher import LibraryWatcher

STORM = 5_000


class Watching:
    """A watcher on its own thread, stopped and joined on exit."""

    def __init__(self, library, **options):
        options = {"debounce": 0.3, "max_delay": 2.0, "root_check_every": 1.0, **options}
        self.watcher = LibraryWatcher(library, **options)
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="test-watch")

    def _run(self):
        try:
            self.watcher.run(self.stop)
        except BaseException as exc:  # noqa: BLE001 - raised in the test thread on exit
            self.errors.append(exc)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive()
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def embedder():
    return FakeEmbedder()


@pytest.fixture
def library(tmp_path, embedder):
    lib = Library(tmp_path / "data", model_id="fake-model", embedder_factory=lambda: embedder, commit_every=500)
    yield lib
    lib.close()


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _storm(root, count=STORM):
    """``count`` distinct small files written as fast as Python can (a copy of a whole card at once)."""
    paths = []
    for i in range(count):
        path = root / f"d{i % 10}" / f"IMG_{i:05d}.jpg"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"IMG" + f"storm photo {i}".encode() * 4)
        paths.append(str(path))
    return paths


def _indexed(library):
    return library.counts()["indexed"]


def test_five_thousand_new_files_are_each_indexed_exactly_once(tmp_path, library, embedder):
    root = tmp_path / "photos"
    root.mkdir()
    library.add_folder(root)
    with Watching(library, reconcile_every=3600.0) as watching:  # no periodic pass: the events must do it
        _wait_for(lambda: watching.watcher._observers, 30, "the observer")
        paths = _storm(root)
        _wait_for(lambda: _indexed(library) == STORM, 300, f"{STORM} photos indexed")
    assert sorted(embedder.embedded_paths) == sorted(paths)  # each embedded once, none twice
    assert library.counts() == {"indexed": STORM, "failed": 0, "offline": 0, "pending": 0}


def test_events_lost_to_an_overflow_are_recovered_by_reconciliation(tmp_path, library, embedder, monkeypatch):
    """The observer's queue overflows after the first 100 events: the rest are lost, as inotify loses them."""
    kept = 100
    real_note = LibraryWatcher.note
    seen = {"events": 0}

    def overflowing_note(self, path):
        seen["events"] += 1
        if seen["events"] <= kept:
            real_note(self, path)

    monkeypatch.setattr(LibraryWatcher, "note", overflowing_note)
    root = tmp_path / "photos"
    root.mkdir()
    library.add_folder(root)
    with Watching(library, reconcile_every=3.0) as watching:
        _wait_for(lambda: watching.watcher._observers, 30, "the observer")
        paths = _storm(root, 1_000)
        _wait_for(lambda: _indexed(library) == 1_000, 300, "1,000 photos indexed")
    assert seen["events"] > kept  # events really were dropped
    assert sorted(embedder.embedded_paths) == sorted(paths)


def test_an_observer_queue_overflow_asks_for_a_full_reconciliation_at_once(tmp_path, library, embedder,
                                                                           monkeypatch):
    """watchdog only logs an inotify overflow; the watcher hears it and reconciles the roots without waiting for
    the periodic pass."""
    monkeypatch.setattr(LibraryWatcher, "note", lambda self, path: None)  # every event is lost...
    root = tmp_path / "photos"
    root.mkdir()
    library.add_folder(root)
    with Watching(library, reconcile_every=3600.0) as watching:
        _wait_for(lambda: watching.watcher._observers, 30, "the observer")
        paths = _storm(root, 200)
        watcher_module.logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost")  # ... and watchdog says so
        _wait_for(lambda: _indexed(library) == 200, 60, "200 photos indexed")
    assert sorted(embedder.embedded_paths) == sorted(paths)
