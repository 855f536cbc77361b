"""One writer per data folder (issue 10, defect 4): core/store/writer_lock.py and LibraryService.index/watch using it.

The lock is held by a real child process, because the point is the inter-process behaviour: a second writer is
refused with a message naming the holder, and a holder killed with SIGKILL leaves no stale lock.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.core.library_fakes import FakeEmbedder
from vsearch_app.core.library.library import Library
from vsearch_app.core.service import LibraryService
from vsearch_app.core.store.writer_lock import LOCK_FILENAME, WriterLock, read_holder
from vsearch_app.errors import DataDirError, LibraryBusyError
from vsearch_app.settings import AppSettings

REPO = Path(__file__).resolve().parents[2]
HOLDER = """
import sys
from vsearch_app.core.store.writer_lock import WriterLock
lock = WriterLock(sys.argv[1], "watching").acquire()
print("held", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin (or kills us)
lock.release()
print("released", flush=True)
"""


@pytest.fixture
def holder(tmp_path):
    """Start a child process that holds the writer lock of tmp_path/data; returns a function that starts it."""
    children = []

    def start(data_dir=None):
        data_dir = data_dir or tmp_path / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        child = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True, env=env)
        children.append(child)
        assert child.stdout.readline().strip() == "held"
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            if stream and not stream.closed:
                stream.close()


def _busy_message(data_dir) -> str:
    with pytest.raises(LibraryBusyError) as refused:
        WriterLock(data_dir, "indexing").acquire()
    return str(refused.value)


def test_second_writer_is_refused_with_who_holds_it(tmp_path, holder):
    data = tmp_path / "data"
    child = holder(data)
    message = _busy_message(data)
    assert message.startswith(f"another VSearch process (pid {child.pid}, `")
    assert re.search(r", since \d\d:\d\d\) is indexing this library", message), message
    assert f"({data}); wait for it to finish or stop it." in message
    assert message.endswith("Searching and `vsearch status` still work.")
    assert "\n" not in message
    recorded = read_holder(data)
    assert recorded.pid == child.pid and recorded.purpose == "watching" and abs(recorded.started - time.time()) < 600


def test_lock_is_free_once_the_holder_releases_it(tmp_path, holder):
    data = tmp_path / "data"
    child = holder(data)
    child.stdin.close()
    assert child.stdout.readline().strip() == "released"
    assert child.wait(timeout=30) == 0
    with WriterLock(data) as lock:
        assert lock.held and read_holder(data).pid == os.getpid()
    assert read_holder(data) is None  # the record is cleared on release


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_holder_leaves_no_stale_lock(tmp_path, holder):
    data = tmp_path / "data"
    child = holder(data)
    _busy_message(data)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert (data / LOCK_FILENAME).exists()  # the file stays (never unlinked); the OS dropped the lock itself
    lock = WriterLock(data).acquire()
    try:
        assert read_holder(data).pid == os.getpid()  # the dead holder's record is replaced
    finally:
        lock.release()


def test_release_is_idempotent_and_the_lock_is_not_reentrant(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    lock = WriterLock(data)
    lock.release()  # never taken: nothing happens
    lock.acquire()
    assert lock.acquire() is lock  # acquiring a held lock object again is a no-op
    with pytest.raises(LibraryBusyError, match=rf"pid {os.getpid()}"):
        WriterLock(data).acquire()  # a second lock, even in this process, is a second writer
    lock.release()
    lock.release()
    with pytest.raises(RuntimeError), WriterLock(data):
        raise RuntimeError("the body failed")
    WriterLock(data).acquire().release()  # the context manager released it


def test_an_unreadable_record_still_gives_a_clear_refusal(tmp_path, holder):
    data = tmp_path / "data"
    holder(data)
    (data / LOCK_FILENAME).write_bytes(b"\x00garbage")  # the lock is on the open file, not on its content
    message = _busy_message(data)
    assert message.startswith(f"another VSearch process is indexing this library ({data});")


def test_a_lock_file_that_cannot_be_opened_is_a_data_dir_error(tmp_path):
    data = tmp_path / "data"
    (data / LOCK_FILENAME).mkdir(parents=True)
    with pytest.raises(DataDirError, match=r"cannot open the lock file .*writer.lock: it is a folder"):
        WriterLock(data).acquire()


# --- LibraryService: index and watch take the lock, readers do not ------------------------------------------------


@pytest.fixture
def service(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(5):
        (root / f"p{i}.jpg").write_bytes(b"IMG" + bytes([i]) * 30)
    settings = AppSettings.resolve(tmp_path / "data", model="fake-model")
    embedder = FakeEmbedder()
    library = Library(settings.data_dir, model_id="fake-model", embedder_factory=lambda: embedder)
    svc = LibraryService(settings, library)
    svc.add_folder(root)
    yield svc
    svc.close()


def test_service_index_and_watch_are_refused_while_another_process_indexes(service, holder):
    service.index()
    WriterLock(service.settings.data_dir).acquire().release()  # index() released it
    child = holder(service.settings.data_dir)
    with pytest.raises(LibraryBusyError, match=f"pid {child.pid}"):
        service.index()
    stop = threading.Event()
    stop.set()
    with pytest.raises(LibraryBusyError, match=f"pid {child.pid}"):
        service.watch(stop)
    # Readers still work beside the writer.
    assert len(service.search("anything", limit=10)) == 5
    assert service.status().counts["indexed"] == 5
    assert [f.path.name for f in service.folders()] == ["photos"]
    child.stdin.close()
    child.wait(timeout=30)
    assert service.index().embedded == 0


def test_service_holds_the_lock_for_the_whole_run_and_releases_it_after_a_failure(service, monkeypatch):
    data = service.settings.data_dir
    seen = []

    def index_while_checking(**kwargs):
        seen.append(read_holder(data))
        with pytest.raises(LibraryBusyError):
            WriterLock(data).acquire()
        raise OSError("disk trouble")

    monkeypatch.setattr(service._library, "index", index_while_checking)
    with pytest.raises(OSError, match="disk trouble"):
        service.index()
    assert seen[0].pid == os.getpid() and seen[0].purpose == "indexing"
    WriterLock(data).acquire().release()  # released in spite of the failure


def test_service_watch_holds_the_lock_until_stopped(service):
    data = service.settings.data_dir
    stop = threading.Event()
    errors = []

    def watch():
        try:
            service.watch(stop, debounce=0.05)
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while (read_holder(data) is None or service.status().counts["indexed"] < 5) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert read_holder(data).purpose == "watching"
        with pytest.raises(LibraryBusyError):
            WriterLock(data).acquire()
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not errors and not thread.is_alive()
    WriterLock(data).acquire().release()
