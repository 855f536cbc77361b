"""The engine lanes and controller against a scripted fake service (no model): threading, latest-wins queries,
pause/resume, a busy library, errors, and the shutdown order."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QThread

from vsearch_app.core.types import IndexProgress, LibraryStatus, QueryTerm, SearchHit, Thumbnail
from vsearch_app.errors import LibraryBusyError, ModelNotFoundError
from vsearch_app.gui.engine import library_lane
from vsearch_app.gui.engine.controller import EngineController
from vsearch_app.gui.engine.lane import Lane
from vsearch_app.settings import AppSettings


class FakeService:
    """Records calls; ``watch`` reports progress and a change, then blocks until stopped."""

    def __init__(self, *, search_delay: float = 0.0, watch_errors: list[Exception] | None = None) -> None:
        self.calls: list[str] = []
        self.search_delay = search_delay
        self.watch_errors = list(watch_errors or [])
        self.watch_runs = 0
        self.watch_stops: list[threading.Event] = []
        self.searching = threading.Event()
        self.threads: set[str] = set()
        self.closed = False
        self.folders_added: list[Path] = []

    def watch(self, stop, progress=None, *, on_change=None, **options):
        self.threads.add(QThread.currentThread().objectName())
        self.watch_runs += 1
        self.calls.append("watch")
        if self.watch_errors:
            raise self.watch_errors.pop(0)
        self.watch_stops.append(stop)
        progress(IndexProgress(64, 128, 1, 10.0, 6.4))
        on_change({"new": 3})
        stop.wait()
        self.calls.append("watch returned")

    def search(self, text, limit=20, threshold=None, folder=None):
        self.calls.append(f"search {text}")
        self.searching.set()
        time.sleep(self.search_delay)
        return [SearchHit(Path(f"/photos/{text}-{i}.jpg"), 1.0 - i / 10) for i in range(3)]

    def status(self):
        return LibraryStatus("fake", [], {"indexed": len(self.folders_added)}, [], None, 0)

    def add_folder(self, path):
        self.folders_added.append(Path(path))

    def thumbnail(self, path, max_side=256):
        return Thumbnail(Path(path), None, "fake")

    def close(self):
        self.calls.append("close")
        self.closed = True


@pytest.fixture
def settings(tmp_path):
    return AppSettings.resolve(tmp_path / "data")


@pytest.fixture
def make_controller(qtbot, settings):
    made: list[EngineController] = []

    def make(service: FakeService | Exception, **kwargs) -> EngineController:
        def factory(_settings):
            if isinstance(service, Exception):
                raise service
            return service

        controller = EngineController(settings, service_factory=factory, **kwargs)
        made.append(controller)
        return controller

    yield make
    for controller in made:
        if not controller.is_stopped:
            with qtbot.waitSignal(controller.stopped, timeout=20_000):
                controller.shutdown()
        assert controller.wait_for_threads(10_000)


def text(value: str) -> list[QueryTerm]:
    return [QueryTerm("text", value, 1.0)]


def test_start_opens_watches_and_reports_progress_status_and_changes(qtbot, make_controller):
    service = FakeService()
    controller = make_controller(service)
    states: list[str] = []
    progress: list[IndexProgress] = []
    changes: list[object] = []
    controller.stateChanged.connect(lambda state, _message: states.append(state))
    controller.progress.connect(progress.append)
    controller.libraryChanged.connect(changes.append)
    with qtbot.waitSignals([controller.engineReady, controller.statusChanged], timeout=10_000):
        controller.start()
    qtbot.waitUntil(lambda: bool(progress and changes), timeout=10_000)
    assert states[:2] == [library_lane.STARTING, library_lane.WATCHING]
    assert progress == [IndexProgress(64, 128, 1, 10.0, 6.4)]  # stored by the engine, published by a GUI timer
    assert changes == [{"new": 3}]
    assert service.threads == {"vsearch-library"}


def test_callbacks_and_signals_arrive_in_the_gui_thread(qtbot, make_controller):
    controller = make_controller(FakeService())
    seen: list[bool] = []
    controller.resultsReady.connect(lambda *_: seen.append(QThread.currentThread() is controller.thread()))
    controller.start()
    with qtbot.waitSignal(controller.resultsReady, timeout=10_000):
        controller.search(text("cat"))
    assert seen == [True]


def test_lane_runs_jobs_in_its_own_thread_and_reports_errors(qtbot):
    lane = Lane("test-lane")
    ran_in: list[str] = []
    errors: list[Exception] = []
    results: list[object] = []
    lane.start()
    lane.submit(lambda: ran_in.append(QThread.currentThread().objectName()))
    lane.submit(lambda: 1 / 0, on_error=errors.append)
    lane.submit(lambda: "after the error", on_done=results.append)
    with qtbot.waitSignal(lane.finished, timeout=10_000):
        lane.stop()
    assert ran_in == ["test-lane"]
    assert isinstance(errors[0], ZeroDivisionError)
    assert results == ["after the error"]
    assert lane.submit(lambda: None).cancelled  # nothing is queued after stop


def test_stale_queries_are_dropped_not_queued(qtbot, make_controller):
    service = FakeService(search_delay=0.5)
    controller = make_controller(service)
    delivered: list[int] = []
    controller.resultsReady.connect(lambda generation, results: delivered.append(generation))
    controller.start()
    qtbot.waitUntil(lambda: controller.ready, timeout=10_000)
    controller.search(text("first"))
    assert service.searching.wait(10)
    for word in ("b", "bi", "bik"):
        controller.search(text(word))
    last = controller.search(text("bike"))
    qtbot.waitUntil(lambda: bool(delivered), timeout=10_000)
    qtbot.wait(700)
    searches = [c for c in service.calls if c.startswith("search")]
    assert searches == ["search first", "search bike"]  # the three in between never ran
    assert delivered == [last]  # "first" finished after newer queries existed: dropped


def test_query_typed_before_the_library_opens_runs_once_it_is_open(qtbot, make_controller):
    controller = make_controller(FakeService())
    generation = controller.search(text("early"))  # before start(): waits in the query lane... once it starts
    with qtbot.waitSignal(controller.resultsReady, timeout=10_000) as blocker:
        controller.start()
    assert blocker.args[0] == generation
    assert blocker.args[1].total == 3
    assert [h.path.name for h in blocker.args[1].page(1, 5)] == ["early-1.jpg", "early-2.jpg"]


def test_pause_stops_watching_and_resume_runs_it_again(qtbot, make_controller):
    service = FakeService()
    controller = make_controller(service)
    controller.start()
    qtbot.waitUntil(lambda: service.watch_runs == 1 and controller.state == library_lane.WATCHING, timeout=10_000)
    with qtbot.waitSignal(controller.stateChanged, check_params_cb=lambda s, m: s == library_lane.PAUSED,
                          timeout=10_000):
        controller.pause_indexing()
    assert controller.paused
    assert service.watch_stops[0].is_set()
    controller.resume_indexing()
    qtbot.waitUntil(lambda: service.watch_runs == 2, timeout=10_000)
    assert not controller.paused


def test_a_busy_library_is_reported_and_retried(qtbot, make_controller, monkeypatch):
    monkeypatch.setattr(library_lane, "BUSY_RETRY_S", 0.2)
    service = FakeService(watch_errors=[LibraryBusyError("another VSearch (pid 42, indexing) is indexing")])
    controller = make_controller(service)
    messages: list[tuple[str, str]] = []
    controller.stateChanged.connect(lambda state, message: messages.append((state, message)))
    controller.start()
    qtbot.waitUntil(lambda: service.watch_runs == 2, timeout=10_000)
    assert (library_lane.BUSY, "another VSearch (pid 42, indexing) is indexing") in messages


def test_a_missing_model_is_a_problem_with_its_message_and_search_still_runs(qtbot, make_controller):
    service = FakeService(watch_errors=[ModelNotFoundError("model google/x is not downloaded")])
    controller = make_controller(service)
    controller.start()
    qtbot.waitUntil(lambda: controller.state == library_lane.PROBLEM, timeout=10_000)
    assert controller.state_message == "model google/x is not downloaded"
    with qtbot.waitSignal(controller.resultsReady, timeout=10_000):
        controller.search(text("cat"))
    controller.resume_indexing()  # "Try Again" once the user has installed the model
    qtbot.waitUntil(lambda: service.watch_runs == 2 and controller.state == library_lane.WATCHING, timeout=10_000)


def test_a_library_that_cannot_open_fails_searches_with_the_reason(qtbot, make_controller):
    from vsearch_app.errors import DataDirError

    controller = make_controller(DataDirError("cannot use /proc/x as the data folder"))
    controller.start()
    with qtbot.waitSignal(controller.searchFailed, timeout=10_000) as blocker:
        controller.search(text("cat"))
    assert blocker.args[1].message == "cannot use /proc/x as the data folder"
    assert controller.state == library_lane.PROBLEM
    assert controller.thumbnail(Path("/x.jpg"), 64).reason == "cannot use /proc/x as the data folder"


def test_folder_changes_refresh_the_status(qtbot, make_controller, tmp_path):
    service = FakeService()
    controller = make_controller(service)
    controller.start()
    qtbot.waitUntil(lambda: controller.ready, timeout=10_000)
    with qtbot.waitSignal(controller.statusChanged, check_params_cb=lambda s: s.counts["indexed"] == 1,
                          timeout=10_000):
        controller.add_folder(tmp_path)
    assert service.folders_added == [tmp_path]


def test_shutdown_stops_watching_lets_the_search_finish_then_closes(qtbot, make_controller):
    service = FakeService(search_delay=0.5)
    controller = make_controller(service)
    controller.start()
    qtbot.waitUntil(lambda: service.watch_runs == 1, timeout=10_000)
    controller.search(text("running"))
    assert service.searching.wait(10)
    controller.search(text("waiting"))  # dropped by the shutdown
    with qtbot.waitSignals([controller.finishing, controller.stopped], timeout=10_000):
        controller.shutdown()
    assert controller.wait_for_threads(5_000)
    assert service.closed and not controller.timed_out
    assert service.calls.index("close") > service.calls.index("search running")
    assert service.calls.index("close") > service.calls.index("watch returned")
    assert "search waiting" not in service.calls


def test_shutdown_before_start_still_stops(qtbot, make_controller):
    controller = make_controller(FakeService())
    with qtbot.waitSignal(controller.stopped, timeout=5_000):
        controller.shutdown()


def test_thumbnails_wait_for_the_library(qtbot, make_controller):
    controller = make_controller(FakeService())
    got: list[Thumbnail] = []
    waiter = threading.Thread(target=lambda: got.append(controller.thumbnail(Path("/p.jpg"), 64)))
    waiter.start()
    time.sleep(0.2)
    assert not got
    controller.start()
    qtbot.waitUntil(lambda: bool(got), timeout=10_000)
    waiter.join()
    assert got[0].reason == "fake"
