"""The engine lanes and controller against a scripted fake service (no model): threading, latest-wins queries,
pause/resume, a busy library, errors, and the shutdown order."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QThread

from vsearch_app.core.types import ChangeEvent, IndexProgress, LibraryStatus, QueryTerm, SearchHit, Thumbnail
from vsearch_app.errors import LibraryBusyError, ModelNotFoundError
from vsearch_app.gui.engine import library_lane
from vsearch_app.gui.engine.controller import EngineController
from vsearch_app.gui.engine.lane import Lane
from vsearch_app.settings import AppSettings


class FakeResults:
    """The engine's SearchResults for a query: ``total`` hits, read a page at a time (pages are counted)."""

    def __init__(self, name: str, total: int) -> None:
        self.name = name
        self.max_total = total
        self.pages: list[tuple[int, int]] = []

    def hits(self, offset: int, count: int) -> list[SearchHit]:
        self.pages.append((offset, count))
        end = min(offset + count, self.max_total)
        return [SearchHit(Path(f"/photos/{self.name}-{i}.jpg"), 1.0 - i / (self.max_total + 1), file_id=i)
                for i in range(offset, end)]


class FakeService:
    """The session API, scripted: ``start_watching`` reports progress and a change and "watches" (a flag) until
    ``stop_watching``; ``watch_errors`` are raised by the next starts, one each."""

    def __init__(self, *, search_delay: float = 0.0, watch_errors: list[Exception] | None = None,
                 prepare_errors: list[Exception] | None = None, hits: int = 3) -> None:
        self.calls: list[str] = []
        self.search_delay = search_delay
        self.watch_errors = list(watch_errors or [])
        self.prepare_errors = list(prepare_errors or [])
        self.hits = hits
        self.watch_runs = 0
        self.watching = False
        self.paused = threading.Event()
        self.searching = threading.Event()
        self.threads: set[str] = set()
        self.closed = False
        self.folders_added: list[Path] = []
        self.models_set: list[str] = []
        self.results: list[FakeResults] = []

    def prepare(self, progress=None, cancel=None):
        self.calls.append("prepare")
        if self.prepare_errors:
            raise self.prepare_errors.pop(0)
        return True

    def start_watching(self, progress=None, on_change=None, **options):
        self.threads.add(QThread.currentThread().objectName())
        self.watch_runs += 1
        self.calls.append("watch")
        if self.watch_errors:
            raise self.watch_errors.pop(0)
        self.watching = True
        progress(IndexProgress(64, 128, 1, 10.0, 6.4))
        on_change(ChangeEvent(new=3))

    def stop_watching(self, timeout=None):
        if self.watching:
            self.watching = False
            self.calls.append("watch returned")
        return True

    @property
    def is_watching(self):
        return self.watching

    watch_error = None

    def pause_indexing(self):
        self.calls.append("pause")
        self.paused.set()

    def resume_indexing(self):
        self.calls.append("resume")
        self.paused.clear()

    @property
    def indexing_paused(self):
        return self.paused.is_set()

    def search_results(self, terms, threshold=None, folder=None, limit=None):
        name = " ".join(t.value for t in terms)
        self.calls.append(f"search {name}")
        self.searching.set()
        time.sleep(self.search_delay)
        results = FakeResults(name, self.hits if limit is None else min(limit, self.hits))
        self.results.append(results)
        return results

    def status(self):
        return LibraryStatus("fake", [], {"indexed": len(self.folders_added)}, [], None, 0)

    def folder_counts(self):
        return {path: 7 for path in self.folders_added}

    def add_folder(self, path):
        self.folders_added.append(Path(path))

    def set_model(self, model):
        self.models_set.append(model)
        return model

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
    assert states[:3] == [library_lane.STARTING, library_lane.LOADING, library_lane.WATCHING]
    assert service.calls[:2] == ["prepare", "watch"]  # the model is ready before indexing starts
    assert progress == [IndexProgress(64, 128, 1, 10.0, 6.4)]  # stored by the engine, published by a GUI timer
    assert changes == [ChangeEvent(new=3)]
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


def test_pause_and_resume_go_through_the_session_and_keep_watching(qtbot, make_controller):
    service = FakeService()
    controller = make_controller(service)
    controller.start()
    qtbot.waitUntil(lambda: service.watch_runs == 1 and controller.state == library_lane.WATCHING, timeout=10_000)
    with qtbot.waitSignal(controller.stateChanged, check_params_cb=lambda s, m: s == library_lane.PAUSED,
                          timeout=10_000):
        controller.pause_indexing()
    assert controller.paused and service.indexing_paused
    assert service.watching  # the watcher keeps watching while paused: no stop, no restart
    with qtbot.waitSignal(controller.stateChanged, check_params_cb=lambda s, m: s == library_lane.WATCHING,
                          timeout=10_000):
        controller.resume_indexing()
    assert not controller.paused and not service.indexing_paused
    qtbot.wait(300)
    assert service.watch_runs == 1 and service.watching
    assert [c for c in service.calls if c in ("pause", "resume", "watch", "watch returned")] == [
        "watch", "pause", "resume"]


def test_first_page_comes_with_the_results_and_later_pages_from_the_kept_ranking(qtbot, make_controller):
    service = FakeService(hits=2_500)
    controller = make_controller(service)
    controller.start()
    with qtbot.waitSignal(controller.resultsReady, timeout=10_000) as blocker:
        controller.search(text("sea"))
    results = blocker.args[1]
    assert results.total == 2_500  # no 1,000 cap
    assert service.results[0].pages == [(0, 1000)]  # read on the lane
    assert [h.path.name for h in results.page(998, 2)] == ["sea-998.jpg", "sea-999.jpg"]
    assert service.results[0].pages == [(0, 1000)]  # served from the first page
    assert [h.path.name for h in results.page(2_000, 1000)][-1] == "sea-2499.jpg"
    assert service.results[0].pages[-1] == (2_000, 1000)


def test_a_model_folder_chosen_by_the_user_is_remembered_and_watching_starts_again(qtbot, make_controller,
                                                                                    tmp_path):
    service = FakeService(prepare_errors=[ModelNotFoundError("model google/x is not downloaded")])
    controller = make_controller(service)
    controller.start()
    qtbot.waitUntil(lambda: controller.state == library_lane.MODEL_MISSING, timeout=10_000)
    assert controller.state_message == "model google/x is not downloaded"
    controller.model_ready(tmp_path / "my-model")
    qtbot.waitUntil(lambda: controller.state == library_lane.WATCHING, timeout=10_000)
    assert service.models_set == [str(tmp_path / "my-model")]
    assert service.calls.count("prepare") == 2 and service.watch_runs == 1


def test_a_busy_library_is_reported_and_retried(qtbot, make_controller, monkeypatch):
    monkeypatch.setattr(library_lane, "BUSY_RETRY_S", 0.2)
    service = FakeService(watch_errors=[LibraryBusyError("another VSearch (pid 42, indexing) is indexing")])
    controller = make_controller(service)
    messages: list[tuple[str, str]] = []
    controller.stateChanged.connect(lambda state, message: messages.append((state, message)))
    controller.start()
    qtbot.waitUntil(lambda: service.watch_runs == 2, timeout=10_000)
    assert (library_lane.BUSY, "another VSearch (pid 42, indexing) is indexing") in messages


def test_a_missing_model_is_reported_with_its_message_and_search_still_runs(qtbot, make_controller):
    service = FakeService(watch_errors=[ModelNotFoundError("model google/x is not downloaded")])
    controller = make_controller(service)
    controller.start()
    qtbot.waitUntil(lambda: controller.state == library_lane.MODEL_MISSING, timeout=10_000)
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
    qtbot.waitUntil(lambda: controller.folder_counts == {tmp_path: 7}, timeout=10_000)  # read with the status


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
