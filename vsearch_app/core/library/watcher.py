"""Keeping the library current while the user works: file-system events, debounced, as hints for reconciliation.

One watchdog observer per root feeds paths into a "dirty" set. The watcher's loop (``run`` blocks its caller; the
session runs it on its "vsearch-watch" thread, core/library/index_writer.py) waits until the events have been quiet
for ``debounce`` seconds (or ``max_delay`` has passed since the first one, so a long copy cannot starve it), then
reconciles exactly the reported paths with the catalog (core/library/reconcile.py):

- a file is taken only once its size and mtime are the same at two checks ``debounce`` apart (a photo still being
  copied is left alone until it settles); a file whose size and mtime equal a row that vanished in the same batch
  is a move and is taken at once;
- moves and renames keep their vector: watchdog reports them as a move, or (across roots, or when the OS reports
  it so) as a delete plus a create; both end in the same batch and the scanner pairs them by fingerprint;
- new and changed files become 'pending' and are embedded right away, in small committed batches.

While ``pause`` is set the watcher keeps following events and recording them in the catalog (``on_change`` still
fires), but embeds nothing: a run in progress stops after its batch in flight, and the pending photos are embedded
once ``pause`` is cleared. ``request_pass()`` asks for a full reconciliation and indexing pass now (an "Index now"
while watching) and gives a Future of its IndexReport. Progress events have phases (core.types.IndexProgress);
"idle" follows every completed indexing pass.

Events are hints: inotify drops events when its queue overflows and Windows when its buffer does, so a full
reconciliation runs at start and every ``reconcile_every`` seconds. An inotify overflow that watchdog reports (in its
log: it tells its handlers nothing) starts one at once (``events_lost``). Roots are checked for presence every
``root_check_every`` seconds: a root that disappears (an unplugged drive) goes offline and its observer stops; when
it returns it is reconciled (files come back without re-embedding) and watched again.

Watching falls back to a PollingObserver when the OS refuses a watch (ENOSPC: inotify watch limit; EMFILE/ENFILE:
too many open files) or when the root is on a network file system, where change notifications are unreliable.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future

from watchdog.events import (
    DirModifiedEvent,
    FileClosedNoWriteEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from vsearch_app.core.library.library import Library
from vsearch_app.core.library.phases import AnyEvent
from vsearch_app.core.library.reconcile import ChangeReport
from vsearch_app.core.library.scanner import FileStat, is_skipped_below
from vsearch_app.core.types import FileState, IndexProgress, IndexReport
from vsearch_app.errors import OperationCancelled

log = logging.getLogger(__name__)

NETWORK_FILESYSTEMS = frozenset(
    "nfs nfs4 cifs smbfs smb3 ncpfs afs 9p fuse.sshfs sshfs davfs fuse.davfs2 glusterfs fuse.glusterfs ceph "
    "fuse.rclone lustre afpfs webdav fuse.s3fs".split()
)
_WATCH_LIMIT_ERRORS = (errno.ENOSPC, errno.EMFILE, errno.ENFILE)
MOUNTS_FILE = "/proc/mounts"


def is_network_path(path: str | os.PathLike[str]) -> bool:
    """Best effort: is ``path`` on a network share (where OS change notifications cannot be trusted)?"""
    text = os.path.realpath(os.fspath(path))
    if sys.platform == "win32":
        if text.startswith("\\\\"):
            return True
        try:
            import ctypes

            drive = os.path.splitdrive(text)[0] + "\\"
            return ctypes.windll.kernel32.GetDriveTypeW(drive) == 4  # DRIVE_REMOTE
        except (AttributeError, OSError):
            return False
    try:
        with open(MOUNTS_FILE, encoding="utf-8", errors="replace") as handle:
            mounts = [line.split()[:3] for line in handle if len(line.split()) >= 3]
    except OSError:
        return False  # not Linux (macOS: FSEvents does report changes made on this machine to a share)
    best, fstype = "", ""
    for _, mount_point, kind in mounts:
        mount_point = mount_point.replace("\\040", " ")
        if (text == mount_point or text.startswith(mount_point.rstrip("/") + "/")) and len(mount_point) > len(best):
            best, fstype = mount_point, kind
    return fstype in NETWORK_FILESYSTEMS


class _Handler(FileSystemEventHandler):
    def __init__(self, note: Callable[[str], None], root: str) -> None:
        self._note = note
        self._root = root

    def on_any_event(self, event: FileSystemEvent) -> None:
        # A directory's own "modified" fires for every change inside it (the file's event already covers that);
        # opening and reading a file changes nothing.
        if isinstance(event, DirModifiedEvent | FileOpenedEvent | FileClosedNoWriteEvent):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = os.fsdecode(raw) if raw else ""
            # Hidden, thumbnail and trash folders are never indexed: a NAS writing thumbnails into @eaDir must not
            # cost a reconciliation. (A move out of such a folder still reports its destination.)
            if path and not is_skipped_below(path, self._root):
                self._note(path)


# watchdog recovers its own watches after an inotify queue overflow and says so only in its log: the events lost in
# it are gone. Every running watcher listens for that line and reconciles its roots at once.
_OVERFLOW_LOGGER = "watchdog.observers.inotify_c"
_running_watchers: weakref.WeakSet[LibraryWatcher] = weakref.WeakSet()
_listener_lock = threading.Lock()


class _OverflowListener(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            for watcher in list(_running_watchers):
                watcher.events_lost()


def _listen_for_overflows() -> None:
    with _listener_lock:
        source = logging.getLogger(_OVERFLOW_LOGGER)
        if any(isinstance(h, _OverflowListener) for h in source.handlers):
            return
        source.addHandler(_OverflowListener(logging.WARNING))
        if source.getEffectiveLevel() > logging.WARNING:  # the line must reach the handler even when logs are quiet
            source.setLevel(logging.WARNING)


class LibraryWatcher:
    def __init__(
        self,
        library: Library,
        *,
        debounce: float = 1.0,
        max_delay: float = 5.0,
        reconcile_every: float = 300.0,
        root_check_every: float = 2.0,
        save_every: float = 30.0,
        poll_interval: float = 30.0,  # a snapshot walks the whole tree: cheap locally, not over SMB
        force_polling: bool = False,
        progress: Callable[[IndexProgress], None] | None = None,
        on_change: Callable[[ChangeReport], None] | None = None,
        pause: threading.Event | AnyEvent | None = None,
    ) -> None:
        self.library = library
        self.debounce = debounce
        self.max_delay = max_delay
        self.reconcile_every = reconcile_every
        self.root_check_every = root_check_every
        self.save_every = save_every
        self.poll_interval = poll_interval
        self.force_polling = force_polling
        self.progress = progress
        self.on_change = on_change
        self.pause = pause
        self._owed = False  # changes were recorded that may have left photos to embed
        self._requests: list[Future] = []  # request_pass() calls not started yet
        self._lost_events = False  # the OS lost events (a queue overflow): reconcile every root soon
        self._answering: list[Future] = []  # ... and those whose pass has reconciled and waits to index
        self._lock = threading.Lock()
        self._dirty: set[str] = set()
        self._first_event = 0.0
        self._last_event = 0.0
        self._last_stat: dict[str, tuple[int, int]] = {}
        self._observers: dict[str, object] = {}
        self.polling_roots: set[str] = set()
        self._online: dict[str, bool] = {}
        self._held: dict[str, float] = {}  # vanished paths -> when to forget them
        self.hold_gone = max_delay + 2 * debounce

    # --- events -------------------------------------------------------------------------------------------------

    def note(self, path: str) -> None:
        """Record a path reported by an observer (called on observer threads)."""
        now = time.monotonic()
        with self._lock:
            if not self._dirty:
                self._first_event = now
            self._dirty.add(path)
            self._last_event = now

    def _take_ready(self, now: float) -> set[str]:
        with self._lock:
            if not self._dirty:
                return set()
            quiet = now - self._last_event >= self.debounce
            overdue = now - self._first_event >= self.max_delay
            if not (quiet or overdue):
                return set()
            ready, self._dirty = self._dirty, set()
            return ready

    def _dirty_soon(self) -> bool:
        """Events are waiting (or files are settling): a held row may still find its new path."""
        with self._lock:
            return bool(self._dirty)

    def _settled(self, st: FileStat) -> bool:
        """True when the file looked the same at the previous check (at least one debounce ago)."""
        current = (st.size, st.mtime_ns)
        previous = self._last_stat.get(st.path)
        if previous == current:
            del self._last_stat[st.path]
            return True
        self._last_stat[st.path] = current
        return False

    # --- observers ----------------------------------------------------------------------------------------------

    def _start_observer(self, root: str) -> None:
        handler = _Handler(self.note, root)
        if not self.force_polling and not is_network_path(root):
            observer = Observer()
            try:
                observer.schedule(handler, root, recursive=True)
                observer.start()
            except OSError as exc:
                _stop_quietly(observer)
                reason = "the OS watch limit is reached" if exc.errno in _WATCH_LIMIT_ERRORS else str(exc)
                log.warning("cannot watch %s natively (%s); polling it every %.0f s instead", root, reason,
                            self.poll_interval)
            else:
                self._observers[root] = observer
                return
        else:
            log.info("watching %s by polling every %.0f s", root, self.poll_interval)
        observer = PollingObserver(timeout=self.poll_interval)
        observer.schedule(handler, root, recursive=True)
        observer.start()
        self._observers[root] = observer
        self.polling_roots.add(root)

    def _stop_observer(self, root: str) -> None:
        observer = self._observers.pop(root, None)
        self.polling_roots.discard(root)
        if observer is not None:
            _stop_quietly(observer)

    def _stop_all(self) -> None:
        for root in list(self._observers):
            self._stop_observer(root)

    # --- the loop -----------------------------------------------------------------------------------------------

    def request_pass(self) -> Future:
        """Ask for a full reconciliation and an indexing pass as soon as possible (thread-safe). The Future gets the
        pass's IndexReport; a watcher that stops first gives IndexReport(cancelled=True) (or its error)."""
        future: Future = Future()
        with self._lock:
            self._requests.append(future)
        return future

    def events_lost(self) -> None:
        """The OS dropped change events (thread-safe): reconcile every root at the next tick."""
        log.warning("file-system events were lost; checking every watched folder")
        with self._lock:
            self._lost_events = True

    def _take_lost(self) -> bool:
        with self._lock:
            lost, self._lost_events = self._lost_events, False
        return lost

    def _paused(self) -> bool:
        return self.pause is not None and self.pause.is_set()

    def run(self, stop: threading.Event, *, initial_index: bool = True) -> None:
        """Watch until ``stop`` is set. Blocks; every thread it starts is joined before it returns."""
        try:
            self._run(stop, initial_index)
        except OperationCancelled:  # a scan stopped by ``stop``
            if not stop.is_set():
                raise
            self._answer(IndexReport(cancelled=True))
        except BaseException as exc:
            self._answer(None, exc)
            raise
        else:
            self._answer(IndexReport(cancelled=True))

    def _answer(self, report: IndexReport | None, error: BaseException | None = None) -> None:
        """Settle the requested passes waiting for an answer (all of them when the watcher ends)."""
        with self._lock:
            waiting = self._answering + (self._requests if report is None or report.cancelled else [])
            self._answering = []
            if report is None or report.cancelled:
                self._requests = []
        for future in waiting:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(report)

    def _run(self, stop: threading.Event, initial_index: bool) -> None:
        lib = self.library
        _listen_for_overflows()
        _running_watchers.add(self)
        try:
            # Observers first: a file that lands during the initial index is then reported, not missed.
            for root, online in lib.roots_online():
                self._online[str(root.path)] = online
                if online:
                    self._start_observer(str(root.path))
            if initial_index:
                first = lib.reconcile(progress=self.progress, cancel=stop)
                self._owed = True
                self._caught_up(self._index_owed(stop), first)
            now = time.monotonic()
            next_reconcile = now + self.reconcile_every
            next_root_check = now + self.root_check_every
            last_save = now
            tick = min(0.25, self.debounce / 2) if self.debounce > 0 else 0.05
            while not stop.wait(tick):
                now = time.monotonic()
                report = ChangeReport()
                if not self._paused() and (self._take_requests() | self._take_lost()):  # both taken: no `or`
                    report = report + lib.reconcile(progress=self.progress, cancel=stop)
                    next_reconcile = now + self.reconcile_every
                    self._owed = True
                if now >= next_root_check:
                    report = report + self._check_roots()
                    next_root_check = now + self.root_check_every
                if now >= next_reconcile:
                    log.debug("periodic reconciliation")
                    report = report + lib.reconcile(cancel=stop)
                    next_reconcile = now + self.reconcile_every
                ready = self._take_ready(now)
                if ready:
                    # Vanished files are held back for a moment and looked at again with every batch: the other
                    # half of a move may arrive in a later batch (a new folder is watched only after its first
                    # event; a copy across devices settles later).
                    result = lib.reconcile_paths(ready | set(self._held), accept=self._settled, keep_gone=True)
                    log.debug("reconciled %d reported path(s): %s; %d not settled yet, %d vanished", len(ready),
                              result.report, len(result.deferred), len(result.gone))
                    report = report + result.report
                    for path in result.deferred:
                        self.note(path)
                    # Every unsettled file is in ``deferred`` (and comes back in the next batch); other entries
                    # belong to files that settled or vanished.
                    self._last_stat = {p: v for p, v in self._last_stat.items() if p in result.deferred}
                    self._held = {p: self._held.get(p, now + self.hold_gone) for p in result.gone}
                # Forget held rows once things are quiet, or after twice the hold even if events keep coming.
                busy = self._dirty_soon()
                expired = [p for p, deadline in self._held.items()
                           if deadline <= now and (not busy or deadline + self.hold_gone <= now)]
                if expired:
                    removed = lib.forget_missing(expired)
                    for path in expired:
                        del self._held[path]
                    report = report + ChangeReport(gone=removed)
                if report.any:
                    self._owed = True
                self._caught_up(self._index_owed(stop), report)  # _index_owed: also work left by a lifted pause
                if now - last_save >= self.save_every:
                    lib.save_index()
                    last_save = now
        finally:
            _running_watchers.discard(self)
            self._stop_all()
            lib.save_index()

    def _take_requests(self) -> bool:
        with self._lock:
            taken, self._requests = self._requests, []
            self._answering.extend(taken)
        return bool(taken)

    def _index_owed(self, stop: threading.Event) -> IndexReport | None:
        """Embed what the recorded changes left pending, unless paused (then later). A pause during the run stops
        it after its batch in flight: the rest stays owed, and the watcher goes on following events meanwhile.
        Returns the report of a pass that ended, None when none ran or it was paused."""
        if not self._owed or self._paused() or stop.is_set():
            return None
        self._owed = False
        report = IndexReport()
        if self.library.counts()[FileState.PENDING]:
            report = self.library.index(progress=self.progress, cancel=AnyEvent(stop, self.pause), reconcile=False)
        if report.cancelled and not stop.is_set():
            self._owed = True  # paused: finish after resume_indexing()
            return None
        self._answer(report)
        return report

    def _caught_up(self, indexed: IndexReport | None, changes: ChangeReport) -> None:
        """Tell the listeners: ``on_change`` for recorded changes, then "idle" after a pass that ended."""
        if changes.any and self.on_change is not None:
            self.on_change(changes)
        if indexed is not None and self.progress is not None:
            count = indexed.embedded + indexed.failed
            self.progress(IndexProgress(count, count, indexed.failed, 0.0, None, phase="idle"))

    def _check_roots(self) -> ChangeReport:
        report = ChangeReport()
        roots = {str(root.path): (root, online) for root, online in self.library.roots_online()}
        for path in list(self._observers):
            if path not in roots:  # removed from the library meanwhile
                self._stop_observer(path)
        for path, (root, online) in roots.items():
            was = self._online.get(path)
            if online == was:
                continue
            self._online[path] = online
            if not online:
                log.warning("%s disappeared; its files are offline until it returns", path)
                self._stop_observer(path)
            report = report + self.library.reconcile([root])
            if online:
                if was is False:
                    log.info("%s is back", path)
                self._start_observer(path)
        return report


def _stop_quietly(observer) -> None:
    try:
        observer.stop()
        if observer.is_alive():
            observer.join(timeout=10)
    except (OSError, RuntimeError) as exc:
        log.debug("stopping an observer: %s", exc)


