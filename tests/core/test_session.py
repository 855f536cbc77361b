"""LibraryService as a long-lived session (issue 11): one index writer per process, the watcher on a session thread,
pause and resume, progress phases, change events, saves that never block a search, and a close that leaves nothing
running and loses nothing committed."""

from __future__ import annotations

import shutil
import threading
import time

import pytest

from tests.core.library_fakes import FakeEmbedder
from vsearch_app.core.library.library import INDEX_DIRNAME, Library
from vsearch_app.core.service import LibraryService
from vsearch_app.core.store import index_files
from vsearch_app.core.store.writer_lock import WriterLock
from vsearch_app.core.types import ChangeEvent
from vsearch_app.errors import CheckpointError, LibraryBusyError, LibraryClosedError
from vsearch_app.settings import AppSettings

TIMEOUT = 60.0
QUICK_WATCH = {"debounce": 0.05, "max_delay": 0.5, "root_check_every": 0.2, "poll_interval": 0.2}


def wait_for(condition, what, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def photo(root, i):
    path = root / f"p{i:02d}.jpg"
    path.write_bytes(b"IMG" + bytes([i]) * 40)
    return path


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(8):
        photo(root, i)
    return root


def open_session(tmp_path, embedder, photos=None, **library_options):
    settings = AppSettings.resolve(tmp_path / "data", model="fake-model")
    options = {"commit_every": 2, "batch_size": 1, **library_options}
    library = Library(settings.data_dir, model_id="fake-model", embedder_factory=lambda: embedder, **options)
    service = LibraryService(settings, library)
    if photos is not None:
        service.add_folder(photos)
    return service


class InThread:
    """Runs ``fn`` on a test thread and keeps its result or error."""

    def __init__(self, fn):
        self.result = self.error = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            self.result = fn()
        except BaseException as exc:  # surfaced by get()
            self.error = exc

    def get(self):
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "the call did not return"
        if self.error is not None:
            raise self.error
        return self.result


def new_threads(before):
    return sorted(t.name for t in threading.enumerate() if t not in before and t.is_alive())


# --- one writer -----------------------------------------------------------------------------------------------------


def test_two_concurrent_index_requests_embed_each_photo_once(tmp_path, photos):
    embedder = FakeEmbedder()
    service = open_session(tmp_path, embedder, photos)
    first_batch, go = threading.Event(), threading.Event()

    def hold_first_batch(paths):
        if not first_batch.is_set():
            first_batch.set()
            go.wait(TIMEOUT)

    embedder.before_batch = hold_first_batch
    try:
        seen_a, seen_b = [], []
        a = InThread(lambda: service.index(progress=seen_a.append))
        assert first_batch.wait(TIMEOUT)
        b = InThread(lambda: service.index(progress=seen_b.append))
        wait_for(lambda: len(service._writer._run.progress._listeners) == 2, "the second request to join the run")
        go.set()
        report_a, report_b = a.get(), b.get()
        assert report_a is report_b and report_a.embedded == 8
        assert sorted(embedder.embedded_paths) == sorted(str(p) for p in photos.iterdir())  # each photo once
        assert any(p.phase == "embedding" for p in seen_b)  # the joiner follows the shared run
        assert service.index().embedded == 0
        assert service.status().counts["indexed"] == 8
    finally:
        go.set()
        service.close()


def test_index_while_watching_asks_the_watcher_for_a_pass(tmp_path, photos):
    embedder = FakeEmbedder()
    service = open_session(tmp_path, embedder, photos)
    phases = []
    try:
        # Events are slow to act on here, so the new photo is found by the pass index() asks for.
        service.start_watching(lambda p: phases.append(p.phase), debounce=30.0, max_delay=60.0)
        wait_for(lambda: "idle" in phases, "the initial index")
        assert len(embedder.embedded_paths) == 8
        late = photo(photos, 20)
        report = service.index()
        assert report.embedded == 1 and not report.cancelled
        assert embedder.embedded_paths.count(str(late)) == 1 and len(embedder.embedded_paths) == 9
        assert service.is_watching
        with pytest.raises(LibraryBusyError, match="already being watched"):
            service.start_watching()
    finally:
        service.close()
    assert not service.is_watching


# --- close ----------------------------------------------------------------------------------------------------------


def _assert_everything_committed(tmp_path, embedder):
    """A new Library on the same folder sees exactly the photos that were embedded, in the catalog and the index."""
    again = Library(tmp_path / "data", model_id="fake-model", embedder_factory=FakeEmbedder)
    try:
        embedded = set(embedder.embedded_paths)
        indexed = {str(r.path) for r in again.catalog.files_under(tmp_path / "photos") if r.state == "indexed"}
        assert indexed == embedded and embedded
        assert len(again.vector_index()) == len(embedded)
    finally:
        again.close()


def test_close_while_indexing_stops_every_thread_and_keeps_what_was_committed(tmp_path, photos):
    before = set(threading.enumerate())
    embedder = FakeEmbedder()
    service = open_session(tmp_path, embedder, photos)
    calls = []

    def hold_second_batch(paths):
        calls.append(paths)
        if len(calls) == 2:
            wait_for(service._writer.closing.is_set, "close() to begin")

    embedder.before_batch = hold_second_batch
    run = InThread(service.index)
    wait_for(lambda: len(calls) == 2, "the second batch")
    service.close()
    report = run.get()
    assert report.cancelled and 2 <= report.embedded < 8
    assert new_threads(before) == []
    service.close()  # a second close is harmless
    for call in (service.status, service.index, service.folders, lambda: service.search("x"), service.prepare,
                 service.start_watching, service.pause_indexing):
        with pytest.raises(LibraryClosedError, match="closed"):
            call()
    WriterLock(tmp_path / "data").acquire().release()  # released
    _assert_everything_committed(tmp_path, embedder)


def test_close_while_watching_stops_every_thread_and_keeps_what_was_committed(tmp_path, photos):
    before = set(threading.enumerate())
    embedder = FakeEmbedder()
    service = open_session(tmp_path, embedder, photos)
    calls = []

    def hold_third_batch(paths):
        calls.append(paths)
        if len(calls) == 3:
            wait_for(service._writer.closing.is_set, "close() to begin")

    embedder.before_batch = hold_third_batch
    service.start_watching(**QUICK_WATCH)
    wait_for(lambda: len(calls) == 3, "the third batch")
    assert "vsearch-watch" in new_threads(before)
    service.close()
    assert new_threads(before) == []  # the watcher and its file-system observers are joined
    assert not service.is_watching and service.watch_error is None
    WriterLock(tmp_path / "data").acquire().release()
    _assert_everything_committed(tmp_path, embedder)
    assert 4 <= len(embedder.embedded_paths) < 8


# --- saves never block searches -------------------------------------------------------------------------------------


def test_a_search_during_an_index_save_returns_before_the_save_finishes(tmp_path, photos, monkeypatch):
    service = open_session(tmp_path, FakeEmbedder(), photos)
    real_hash = index_files.sha256_of
    in_save, release = threading.Event(), threading.Event()

    def held_hash(path):
        if threading.current_thread().name == "vsearch-index" and path.name.startswith("."):  # a save's temp file
            in_save.set()
            release.wait(TIMEOUT)
        return real_hash(path)

    try:
        service.index()
        monkeypatch.setattr(index_files, "sha256_of", held_hash)
        photo(photos, 30)
        saving = InThread(service.index)
        assert in_save.wait(TIMEOUT)
        hits = service.search('"anything"', limit=20)
        assert len(hits) == 9  # the new photo too: the index was synced before the save
        assert saving.thread.is_alive()  # the save is still held
        release.set()
        assert saving.get().embedded == 1
    finally:
        release.set()
        service.close()


# --- pause, progress, changes ---------------------------------------------------------------------------------------


def test_pause_stops_embedding_between_batches_and_resume_continues(tmp_path, photos):
    embedder = FakeEmbedder()
    service = open_session(tmp_path, embedder, photos)
    calls = []

    def pause_after_first(paths):
        calls.append(paths)
        if len(calls) == 1:
            service.pause_indexing()

    embedder.before_batch = pause_after_first
    try:
        seen = []
        run = InThread(lambda: service.index(progress=seen.append))
        wait_for(lambda: any(p.phase == "embedding" for p in seen), "the first batch")
        assert service.indexing_paused
        run.thread.join(0.5)
        assert run.thread.is_alive() and len(calls) == 1  # held between batches
        service.resume_indexing()
        report = run.get()
        assert report.embedded == 8 and len(calls) == 4 and not service.indexing_paused
    finally:
        service.resume_indexing()
        service.close()


def test_a_paused_watcher_records_changes_and_embeds_them_after_resume(tmp_path, photos):
    embedder = FakeEmbedder()
    service = open_session(tmp_path, embedder, photos)
    changes, phases = [], []
    try:
        service.start_watching(lambda p: phases.append(p.phase), changes.append, **QUICK_WATCH)
        wait_for(lambda: "idle" in phases, "the initial index")
        service.pause_indexing()
        late = photo(photos, 40)
        wait_for(lambda: ChangeEvent(new=1) in changes, "the change event")
        assert service.status().counts["pending"] == 1 and str(late) not in embedder.embedded_paths
        service.resume_indexing()
        wait_for(lambda: service.status().counts["indexed"] == 9, "the paused photo to be embedded")
        assert embedder.embedded_paths.count(str(late)) == 1
    finally:
        service.close()


def test_on_change_fires_for_a_new_photo_once_it_can_be_found(tmp_path, photos):
    service = open_session(tmp_path, FakeEmbedder(), photos)
    found = []

    def on_change(event):
        found.append((event, {h.path.name for h in service.search('"x"', limit=50)}))

    try:
        service.start_watching(on_change=on_change, **QUICK_WATCH)
        wait_for(lambda: service.status().counts["indexed"] == 8, "the initial index")
        photo(photos, 50)
        wait_for(lambda: any(event == ChangeEvent(new=1) for event, _ in found), "a change event")
        searchable = next(names for event, names in found if event == ChangeEvent(new=1))
        assert "p50.jpg" in searchable
    finally:
        service.close()


def _phases(events):
    order = []
    for event in events:
        if not order or order[-1] != event.phase:
            order.append(event.phase)
    return order


def test_progress_shows_the_phases_and_prepare_rebuilds_the_index(tmp_path, photos):
    seen = []
    with open_session(tmp_path, FakeEmbedder(), photos) as service:
        service.index(progress=seen.append)
    assert _phases(seen) == ["scanning", "embedding", "saving"]  # a first run makes its index at its first batch
    assert seen[0].current is not None and seen[0].current.name == "photos"
    embedding = [p for p in seen if p.phase == "embedding"]
    assert embedding[-1].done == embedding[-1].total == 8 and embedding[-1].current.parent == photos
    assert (seen[-1].done, seen[-1].total) == (8, 8)  # saving keeps the run's counters

    shutil.rmtree(tmp_path / "data" / INDEX_DIRNAME)
    rebuilt = []
    with open_session(tmp_path, FakeEmbedder(), photos) as service:
        cancelled = threading.Event()
        cancelled.set()
        assert service.prepare(cancel=cancelled) is False
        assert service.prepare(progress=rebuilt.append) is True
        assert {p.phase for p in rebuilt} == {"rebuilding"} and (rebuilt[-1].done, rebuilt[-1].total) == (8, 8)
        assert len(service.search('"x"', limit=20)) == 8

    shutil.rmtree(tmp_path / "data" / INDEX_DIRNAME)
    photo(photos, 60)
    again = []
    with open_session(tmp_path, FakeEmbedder(), photos) as service:
        assert service.index(progress=again.append).embedded == 1
    assert _phases(again) == ["scanning", "rebuilding", "embedding", "saving"]


def test_a_watcher_that_fails_reports_why_and_lets_go_of_the_library(tmp_path, photos):
    def broken():
        raise CheckpointError("the model's weights are damaged")

    settings = AppSettings.resolve(tmp_path / "data", model="fake-model")
    service = LibraryService(settings, Library(settings.data_dir, model_id="fake-model", embedder_factory=broken))
    service.add_folder(photos)
    try:
        service.start_watching(**QUICK_WATCH)
        wait_for(lambda: not service.is_watching, "the watcher to stop")
        assert isinstance(service.watch_error, CheckpointError)
        WriterLock(tmp_path / "data").acquire().release()
        with pytest.raises(CheckpointError, match="damaged"):
            service.watch(threading.Event(), **QUICK_WATCH)
    finally:
        service.close()


# --- end to end with a real (tiny) model ----------------------------------------------------------------------------


def test_session_end_to_end_with_the_tiny_model(tmp_path, tiny_siglip_dir):
    from PIL import Image

    before = set(threading.enumerate())
    root = tmp_path / "pics"
    root.mkdir()
    for name, rgb in {"red": (230, 20, 20), "green": (20, 200, 30), "blue": (20, 30, 220)}.items():
        Image.new("RGB", (40, 30), rgb).save(root / f"{name}.png")
    settings = AppSettings.resolve(tmp_path / "data", model=str(tiny_siglip_dir), dtype="float32")
    phases, changes = [], []
    with LibraryService.open(settings) as service:
        service.add_folder(root)
        assert service.prepare() is True
        service.start_watching(lambda p: phases.append(p.phase), changes.append, **QUICK_WATCH)
        wait_for(lambda: "idle" in phases, "the initial index")
        Image.new("RGB", (40, 30), (250, 250, 250)).save(root / "white.png")
        wait_for(lambda: ChangeEvent(new=1) in changes, "the new photo")
        hits = service.search(str(root / "white.png"), limit=4)
        assert hits[0].path == root / "white.png" and len(hits) == 4
        assert service.stop_watching(timeout=TIMEOUT)
        assert not service.is_watching
    assert {"scanning", "embedding", "saving", "idle"} <= set(phases)
    assert new_threads(before) == []
