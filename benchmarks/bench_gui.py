"""How the desktop app feels: start-up, keystroke to results, and GUI-thread stalls while indexing.

(a) Start-up: time from spawning `python -m vsearch_app` to the window's first paint (the app writes the time to
    VSEARCH_FIRST_PAINT_FILE, see gui/app.py), beside a bare PySide6 window (a QMainWindow with a line edit, same
    interpreter, same marker) spawned in the same run: their ratio is what the app adds. Goal: under 1.5 s. The app
    runs on a temporary library with a tiny model (it loads after the window shows, so the model's size does not
    matter here).
(b) Keystroke to first results painted: the time from the last key of a typed query to the first paint of the
    results grid holding its results (the 250 ms typing debounce included), in the real window. At 10k and 100k
    photos the library is FAKED: a service stub (StubLibrary below) whose search returns N hits instantly, so the
    figure is the GUI's own cost (query lane, model reset, layout, painting, placeholder thumbnails). Then the same
    on a real library (tiny random model, the photos of (c)), beside the same query through the CLI
    (`vsearch search QUERY --json`, a new process each time: interpreter, torch, model load and search) as the
    baseline.
(c) Worst GUI-thread stall while indexing: a 10 ms heartbeat timer in the real window while ~200 generated photos
    index with the tiny model (after the library is open: the one-off torch import stall is measured by (a)'s
    process, not here), beside the same heartbeat over an idle window as the baseline.

Usage:
    python benchmarks/bench_gui.py [--quick]      (--quick: small sizes, one repetition; a smoke test)
Offscreen when there is no display (QT_QPA_PLATFORM=offscreen on Linux without DISPLAY / WAYLAND_DISPLAY).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import ROOT, print_table

from vsearch_app.gui.selftest import choose_qt_platform, isolated_settings, write_sample_photos

HEARTBEAT_MS = 10
IDLE_BASELINE_S = 2.0
STARTUP_LIMIT_S = 120.0
QUERIES = ["sunset", "golden retriever", "red bike", "beach", "snow", "city at night", "birthday cake"]

BARE_WINDOW = """
import os, sys, time
from PySide6.QtWidgets import QApplication, QLineEdit, QMainWindow, QWidget, QVBoxLayout
class Surface(QWidget):
    painted = False
    def paintEvent(self, event):
        super().paintEvent(event)
        if not self.painted:
            self.painted = True
            path = os.environ["VSEARCH_FIRST_PAINT_FILE"]
            with open(path + ".partial", "w") as f:
                f.write(f"{time.time():.6f}\\n")
            os.replace(path + ".partial", path)
app = QApplication(sys.argv[:1])
window = QMainWindow()
surface = Surface()
QVBoxLayout(surface).addWidget(QLineEdit())
window.setCentralWidget(surface)
window.resize(1180, 760)
window.show()
app.exec()
"""


# --- (a) start-up ---------------------------------------------------------------------------------------------------


def time_to_first_paint(args: list[str], env: dict[str, str], work: Path) -> float:
    """Spawn ``python ARGS``, wait for its first-paint marker, close it (SIGTERM: the app's normal close) and return
    the seconds from spawn to first paint."""
    marker = work / f"first-paint-{time.monotonic_ns()}"
    env = {**env, "VSEARCH_FIRST_PAINT_FILE": str(marker)}
    started = time.time()
    process = subprocess.Popen([sys.executable, *args], env=env, cwd=work, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        while not marker.exists():
            if process.poll() is not None:
                raise RuntimeError(f"{args} exited with {process.returncode} before painting: "
                                   f"{process.stderr.read()[-2000:]}")
            if time.time() - started > STARTUP_LIMIT_S:
                raise RuntimeError(f"{args} did not paint within {STARTUP_LIMIT_S:.0f} s")
            time.sleep(0.005)
        painted = float(marker.read_text())
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return painted - started


def bench_startup(work: Path, model_dir: Path, env: dict[str, str], runs: int) -> list[list[str]]:
    app_args = ["-m", "vsearch_app", "--data-dir", str(work / "startup-data"), "--model", str(model_dir),
                "--device", "cpu", "--dtype", "float32"]
    bare, app = [], []
    for _ in range(runs):  # interleaved, so drift on a shared machine hits both alike
        bare.append(time_to_first_paint(["-c", BARE_WINDOW], env, work))
        app.append(time_to_first_paint(app_args, env, work))
    b, a = statistics.median(bare), statistics.median(app)
    return [["bare PySide6 window", f"{b:.2f}", ", ".join(f"{x:.2f}" for x in bare), ""],
            ["VSearch window (python -m vsearch_app)", f"{a:.2f}", ", ".join(f"{x:.2f}" for x in app),
             f"{a / b:.2f}x"]]


# --- (b) keystroke to results ---------------------------------------------------------------------------------------


class StubResults:
    """A query's ranking as core.search.SearchResults gives it to the window: pages of hits, an upper bound."""

    def __init__(self, hits: list) -> None:
        self._hits = hits
        self.max_total = len(hits)

    def hits(self, offset: int, count: int) -> list:
        return self._hits[offset:offset + count]


class StubLibrary:
    """Stands in for LibraryService behind the window's lanes: one folder of ``count`` photos, every search returns
    all of them at once (no model, no index), thumbnails are flat colour squares. Only the GUI's costs remain.
    Implements both the blocking ``watch`` and the session methods (start_watching, search_page ...)."""

    def __init__(self, count: int, folder: Path) -> None:
        import numpy as np

        from vsearch_app.core.types import SearchHit

        self.folder = folder
        self.hits = [SearchHit(folder / f"IMG_{i:06d}.jpg", 1.0 - i / (count + 1)) for i in range(count)]
        self._square = np.full((64, 64, 3), 128, dtype=np.uint8)
        self._stop = threading.Event()
        self.is_watching = False
        self.watch_error = None

    def prepare(self, progress=None, cancel=None) -> None:
        pass

    def watch(self, stop, progress=None, initial_index=True, **options) -> None:
        stop.wait()

    def start_watching(self, progress=None, on_change=None) -> None:
        self.is_watching = True

    def stop_watching(self) -> None:
        self.is_watching = False

    def pause_indexing(self) -> None:
        pass

    def resume_indexing(self) -> None:
        pass

    def close(self) -> None:
        self._stop.set()

    def folders(self) -> list:
        from vsearch_app.core.types import FolderInfo

        return [FolderInfo(self.folder, True)]

    def status(self):
        from vsearch_app.core.types import LibraryStatus

        return LibraryStatus(model="stub", roots=self.folders(), counts={"indexed": len(self.hits), "failed": 0,
                             "offline": 0, "pending": 0}, failed=[], index_path=None, index_bytes=0)

    def search(self, query, limit=None, threshold=None, folder=None) -> list:
        return self.hits[:limit] if limit else list(self.hits)

    def search_page(self, query, offset, count, threshold=None, folder=None) -> list:
        return self.hits[offset:offset + count]

    def search_results(self, query, threshold=None, folder=None, limit=None) -> StubResults:
        return StubResults(self.hits[:limit] if limit else self.hits)

    def folder_counts(self) -> dict:
        return {self.folder: len(self.hits)}

    def thumbnail(self, path, max_side=256):
        from vsearch_app.core.types import Thumbnail

        return Thumbnail(Path(path), self._square)


def wait_until(condition, timeout_s: float = 120.0, what: str = "") -> None:
    from PySide6.QtTest import QTest

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        QTest.qWait(2)


class PaintClock:
    """Records when the results grid's viewport paints while it holds rows (an event filter; GUI thread)."""

    def __init__(self, window) -> None:
        from PySide6.QtCore import QEvent, QObject

        clock = self

        class Filter(QObject):
            def eventFilter(self, watched, event) -> bool:
                if event.type() == QEvent.Type.Paint and window.results_model.rowCount() and clock.armed:
                    clock.painted_at = time.perf_counter()
                    clock.armed = False
                return False

        self.armed = False
        self.painted_at: float | None = None
        self._filter = Filter(window)
        window.results_view.viewport().installEventFilter(self._filter)


def keystroke_to_results(window, queries: list[str]) -> list[float]:
    """Type each query (after Esc cleared the last one); seconds from its last key to the grid's first paint with
    results."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    clock = PaintClock(window)
    line = window.query_bar.line_edit
    times = []
    for query in queries:
        QTest.keyClick(line, Qt.Key.Key_Escape)
        wait_until(lambda: window.results_model.rowCount() == 0 and not line.text(), 10, "the query to clear")
        window.query_bar.focus_text()
        QTest.keyClicks(line, query[:-1])
        clock.painted_at, clock.armed = None, True
        started = time.perf_counter()
        QTest.keyClick(line, query[-1])
        wait_until(lambda: clock.painted_at is not None, 120, f"results for {query!r}")
        times.append(clock.painted_at - started)
    return times


def open_window(settings, work: Path, service_factory=None, result_limit: int | None = None):
    from vsearch_app.gui.engine.controller import EngineController
    from vsearch_app.gui.ui_state import UiState
    from vsearch_app.gui.views.main_window import MainWindow

    options = {} if result_limit is None else {"result_limit": result_limit}
    controller = EngineController(settings, service_factory=service_factory, **options)
    window = MainWindow(controller, UiState(work / f"ui-state-{time.monotonic_ns()}.ini"))
    window.show()
    controller.start()
    wait_until(lambda: controller.ready and controller.status is not None, 300, "the library to open")
    return window


def close_window(window) -> None:
    window.close()
    wait_until(lambda: window.controller.is_stopped, 120, "the window to close")
    window.controller.wait_for_threads(30_000)
    window.deleteLater()


def bench_stub_sizes(work: Path, model_dir: Path, sizes: list[int], reps: int) -> list[list[str]]:
    rows = []
    for size in sizes:
        stub = StubLibrary(size, work / "stub-photos")
        window = open_window(isolated_settings(work / f"stub-{size}", model_dir), work,
                             service_factory=lambda settings, stub=stub: stub, result_limit=size)
        try:
            times = keystroke_to_results(window, QUERIES[:reps])
            if window.results_model.total != size:
                raise RuntimeError(f"the grid holds {window.results_model.total} results, not {size}")
        finally:
            close_window(window)
        rows.append([f"GUI, stub library of {size:,} photos (all returned)", f"{statistics.median(times) * 1000:.0f}",
                     ", ".join(f"{t * 1000:.0f}" for t in times)])
    return rows


# --- (c) stalls while indexing, and the real-library comparison ----------------------------------------------------


class Heartbeat:
    """A GUI-thread timer every HEARTBEAT_MS; the gaps between its ticks are how long the GUI thread was busy."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self._last = 0.0
        self._timer = QTimer()
        self._timer.setInterval(HEARTBEAT_MS)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.gaps.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> list[float]:
        self._timer.stop()
        return list(self.gaps)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append((now - self._last) * 1000)
        self._last = now


def stall_row(label: str, gaps: list[float], seconds: float) -> list[str]:
    p99 = statistics.quantiles(gaps, n=100)[98] if len(gaps) >= 100 else max(gaps)
    return [label, f"{max(gaps):.0f}", f"{p99:.0f}", f"{len(gaps)}", f"{seconds:.1f}"]


def bench_real_library(work: Path, model_dir: Path, env: dict[str, str], photos: int, reps: int,
                       cli_runs: int) -> tuple[list[list[str]], list[list[str]]]:
    from PySide6.QtTest import QTest

    folder = work / "Photos"
    write_sample_photos(folder, photos)
    settings = isolated_settings(work / "real", model_dir)
    window = open_window(settings, work)
    heartbeat = Heartbeat()
    try:
        heartbeat.start()
        QTest.qWait(round(IDLE_BASELINE_S * 1000))
        idle = heartbeat.stop()

        heartbeat.start()
        started = time.perf_counter()
        window.add_folder(folder)
        status = lambda: window.controller.status  # noqa: E731
        wait_until(lambda: status().counts.get("indexed", 0) >= photos and not status().counts.get("pending"),
                   600, f"{photos} photos to index")
        indexing_s = time.perf_counter() - started
        busy = heartbeat.stop()
        gui_times = keystroke_to_results(window, QUERIES[:reps])
    finally:
        close_window(window)
    stalls = [stall_row("idle window (baseline)", idle, IDLE_BASELINE_S),
              stall_row(f"indexing {photos} photos (tiny model)", busy, indexing_s)]

    cli_times = []
    for query in QUERIES[:cli_runs]:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "vsearch_app", "search", query, "--json", "--data-dir",
                               str(settings.data_dir), "--model", str(model_dir), "--device", "cpu", "--dtype",
                               "float32"], env=env, cwd=work, capture_output=True, text=True, timeout=300)
        cli_times.append(time.perf_counter() - started)
        if done.returncode != 0 or len(json.loads(done.stdout)) == 0:
            raise RuntimeError(f"vsearch search failed: {done.stderr[-2000:]}")
    latency = [[f"GUI, real library of {photos} photos (tiny model)",
                f"{statistics.median(gui_times) * 1000:.0f}", ", ".join(f"{t * 1000:.0f}" for t in gui_times)],
               ["CLI `vsearch search Q --json`, same library (baseline: new process)",
                f"{statistics.median(cli_times) * 1000:.0f}", ", ".join(f"{t * 1000:.0f}" for t in cli_times)]]
    return latency, stalls


# --- main -----------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition (a smoke test)")
    args = parser.parse_args()
    choose_qt_platform()
    startup_runs, sizes, reps, photos, cli_runs = (1, [1_000, 10_000], 2, 40, 1) if args.quick else \
        (5, [10_000, 100_000], 5, 200, 3)
    print(f"bench_gui: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"QT_QPA_PLATFORM={os.environ.get('QT_QPA_PLATFORM', '(default)')}{' (quick)' if args.quick else ''}")

    from PySide6.QtWidgets import QApplication  # gui.qtfix is applied already: gui.selftest imported vsearch_app.gui

    from vsearch_app.training.tiny_models import make_tiny_siglip

    with tempfile.TemporaryDirectory(prefix="bench-gui-") as tmp:
        work = Path(tmp)
        # The spawned apps and CLIs keep to the temporary folder too (data, caches, Qt settings).
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               "VSEARCH_DATA_DIR": str(work / "user-data"), "XDG_CONFIG_HOME": str(work / "config"),
               "XDG_CACHE_HOME": str(work / "cache"), "HF_HUB_CACHE": str(work / "hub")}
        model_dir = make_tiny_siglip(work / "model")

        startup = bench_startup(work, model_dir, env, startup_runs)
        print_table(f"(a) process start to first paint, seconds (median of {startup_runs}; goal < 1.5 s)",
                    ["window", "median", "runs", "ratio"], startup)

        app = QApplication.instance() or QApplication(sys.argv[:1])
        app.setQuitOnLastWindowClosed(False)
        stub_rows = bench_stub_sizes(work, model_dir, sizes, reps)
        latency, stalls = bench_real_library(work, model_dir, env, photos, reps, cli_runs)
        print_table(f"(b) last keystroke to first results painted, ms (median of {reps}; typing debounce included)",
                    ["where", "median", "runs"], stub_rows + latency)
        print_table(f"(c) GUI-thread heartbeat every {HEARTBEAT_MS} ms: gaps between ticks, ms",
                    ["while", "worst", "p99", "ticks", "seconds"], stalls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
