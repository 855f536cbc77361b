"""Watcher: events are debounced hints; the catalog follows adds, edits, moves, deletions and unplugged roots."""

from __future__ import annotations

import errno
import os
import sys
import threading
import time

import pytest
from watchdog.events import FileCreatedEvent, FileMovedEvent

from tests.core.library_fakes import FakeEmbedder
from vsearch_app.core.library import watcher as watcher_module
from vsearch_app.core.library.library import Library
from vsearch_app.core.library.watcher import LibraryWatcher, is_network_path

TIMEOUT = 20.0


def wait_for(condition, timeout=TIMEOUT, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _photo(path, tag):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"IMG" + tag.encode() * 20)
    return path


@pytest.fixture
def embedder():
    return FakeEmbedder()


@pytest.fixture
def library(tmp_path, embedder):
    lib = Library(tmp_path / "data", model_id="fake-model", embedder_factory=lambda: embedder)
    yield lib
    lib.close()


class Running:
    """A watcher on its own thread, stopped and joined at the end of the test."""

    def __init__(self, library, **options):
        options = {"debounce": 0.2, "max_delay": 1.0, "root_check_every": 0.3, "poll_interval": 0.2, **options}
        self.watcher = LibraryWatcher(library, **options)
        self.stop = threading.Event()
        self.error = []
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self.watcher.run(self.stop)
        except BaseException as exc:  # surfaced by the test
            self.error.append(exc)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        if self.error:
            raise self.error[0]


def _state(library, path):
    row = library.catalog.get_file(path)
    return row.state if row else None


def test_follows_add_edit_rename_move_delete(tmp_path, library, embedder):
    root = tmp_path / "photos"
    first = _photo(root / "first.jpg", "first")
    library.add_folder(root)
    with Running(library) as running:
        wait_for(lambda: _state(library, first) == "indexed", what="initial index")
        added = _photo(root / "sub" / "added.jpg", "added")
        wait_for(lambda: _state(library, added) == "indexed", what="added file")
        added.write_bytes(b"IMG edited content")
        wait_for(lambda: embedder.embedded_paths.count(str(added)) == 2, what="edited file re-embedded")
        count = len(embedder.embedded_paths)
        renamed = root / "renamed.jpg"
        os.rename(first, renamed)
        wait_for(lambda: _state(library, renamed) == "indexed" and _state(library, first) is None, what="rename")
        moved = root / "other" / "moved.jpg"
        moved.parent.mkdir()
        os.rename(added, moved)
        wait_for(lambda: _state(library, moved) == "indexed" and _state(library, added) is None, what="move")
        assert len(embedder.embedded_paths) == count  # neither re-embedded
        moved.unlink()
        wait_for(lambda: _state(library, moved) is None, what="delete")
        assert running.watcher.polling_roots == set()
    assert library.catalog.counts()["indexed"] == 1
    assert len(library.vector_index()) == 1


def test_events_from_thumbnail_trash_and_hidden_folders_are_dropped(tmp_path):
    root = tmp_path / "photos"
    noted = []
    handler = watcher_module._Handler(noted.append, str(root))
    for path in [root / "@eaDir" / "a.jpg" / "SYNOPHOTO_THUMB_M.jpg", root / "x" / "#recycle" / "b.jpg",
                 root / "$RECYCLE.BIN" / "c.jpg", root / ".thumbnails" / "d.png", root / "@__thumb" / "e.jpg"]:
        handler.on_any_event(FileCreatedEvent(str(path)))
    handler.on_any_event(FileMovedEvent(str(root / "#recycle" / "f.jpg"), str(root / "back" / "f.jpg")))
    handler.on_any_event(FileCreatedEvent(str(root / "2023" / "g.jpg")))
    assert noted == [str(root / "back" / "f.jpg"), str(root / "2023" / "g.jpg")]


def test_a_nas_writing_thumbnails_adds_nothing(tmp_path, library, embedder):
    root = tmp_path / "photos"
    first = _photo(root / "first.jpg", "first")
    library.add_folder(root)
    with Running(library):
        wait_for(lambda: _state(library, first) == "indexed", what="initial index")
        thumb = _photo(root / "@eaDir" / "first.jpg" / "SYNOPHOTO_THUMB_XL.jpg", "thumb")
        later = _photo(root / "later.jpg", "later")
        wait_for(lambda: _state(library, later) == "indexed", what="the photo added after the thumbnail")
    assert _state(library, thumb) is None and library.catalog.counts()["indexed"] == 2


def test_move_between_roots_keeps_the_vector(tmp_path, library, embedder):
    left, right = tmp_path / "left", tmp_path / "right"
    photo = _photo(left / "p.jpg", "p")
    right.mkdir()
    library.add_folder(left)
    library.add_folder(right)
    with Running(library):
        wait_for(lambda: _state(library, photo) == "indexed")
        os.rename(photo, right / "p.jpg")
        wait_for(lambda: _state(library, right / "p.jpg") == "indexed" and _state(library, photo) is None)
    assert embedder.embedded_paths == [str(photo)]


def test_unplugged_root_goes_offline_and_returns_intact(tmp_path, library, embedder):
    root = tmp_path / "drive"
    photos = [_photo(root / f"{i}.jpg", str(i)) for i in range(3)]
    library.add_folder(root)
    with Running(library):
        wait_for(lambda: library.catalog.counts()["indexed"] == 3)
        os.rename(root, tmp_path / "away")
        wait_for(lambda: library.catalog.counts()["offline"] == 3, what="offline")
        os.rename(tmp_path / "away", root)
        wait_for(lambda: library.catalog.counts()["indexed"] == 3, what="back online")
        _photo(root / "after.jpg", "after")  # and it is watched again
        wait_for(lambda: _state(library, root / "after.jpg") == "indexed", what="watched again")
    assert sorted(embedder.embedded_paths) == sorted([str(p) for p in photos] + [str(root / "after.jpg")])


def test_file_is_taken_only_once_its_size_and_mtime_settle(tmp_path, library, embedder):
    root = tmp_path / "photos"
    root.mkdir()
    library.add_folder(root)
    watcher = LibraryWatcher(library)
    growing = _photo(root / "copying.jpg", "part")
    result = library.reconcile_paths([str(growing)], accept=watcher._settled)
    assert result.deferred == {str(growing)} and not result.report.any  # first sighting: wait
    with open(growing, "ab") as handle:
        handle.write(b"more")
    result = library.reconcile_paths([str(growing)], accept=watcher._settled)
    assert result.deferred == {str(growing)}  # it changed meanwhile: wait again
    result = library.reconcile_paths([str(growing)], accept=watcher._settled)
    assert result.deferred == set() and result.report.new == 1


def test_falls_back_to_polling_when_the_watch_limit_is_hit(tmp_path, library, monkeypatch):
    class Exhausted(watcher_module.Observer):
        def start(self):
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(watcher_module, "Observer", Exhausted)
    root = tmp_path / "photos"
    root.mkdir()
    library.add_folder(root)
    with Running(library) as running:
        wait_for(lambda: running.watcher.polling_roots == {str(root)}, what="polling fallback")
        photo = _photo(root / "x.jpg", "x")
        wait_for(lambda: _state(library, photo) == "indexed", what="polled change")


def test_network_share_is_polled(tmp_path, library, monkeypatch):
    monkeypatch.setattr(watcher_module, "is_network_path", lambda path: True)
    root = tmp_path / "nas"
    root.mkdir()
    library.add_folder(root)
    with Running(library) as running:
        wait_for(lambda: running.watcher.polling_roots == {str(root)})


def test_periodic_reconciliation_catches_lost_events(tmp_path, library, monkeypatch):
    class Deaf:  # an observer whose events are all lost (inotify queue overflow)
        def __init__(self, *args, **kwargs):
            pass

        def schedule(self, *args, **kwargs):
            pass

        def start(self):
            pass

        def stop(self):
            pass

        def is_alive(self):
            return False

    monkeypatch.setattr(watcher_module, "Observer", Deaf)
    root = tmp_path / "photos"
    root.mkdir()
    library.add_folder(root)
    with Running(library, reconcile_every=0.5):
        photo = _photo(root / "x.jpg", "x")
        wait_for(lambda: _state(library, photo) == "indexed", what="reconciliation")


@pytest.mark.skipif(sys.platform == "win32", reason="reads a Linux mount table")
def test_network_file_systems_are_recognised(tmp_path, monkeypatch):
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sda1 / ext4 rw 0 0\nserver:/export /mnt/nas nfs4 rw 0 0\n"
                      "//host/share /mnt/my\\040share cifs rw 0 0\n")
    monkeypatch.setattr(watcher_module, "MOUNTS_FILE", str(mounts))
    assert is_network_path("/mnt/nas/photos/2020")
    assert is_network_path("/mnt/my share/x")
    assert not is_network_path("/mnt/nasty")
    assert not is_network_path("/home/user/Pictures")
