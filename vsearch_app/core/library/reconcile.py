"""Reconciliation: making the catalog agree with what is on disk, without embedding anything.

``Reconciler`` compares folders (``roots``: whole watched roots, at start and periodically) or a few paths (``paths``:
what the watcher reported) with the catalog's rows through core.library.scanner, and records the differences in one
catalog transaction: new and changed files become 'pending', gone files are forgotten, moved files keep their row
(and so their vector and index label), unreachable ones go 'offline'. ``Library`` owns one per call and syncs its
vector index afterwards.

Safety rules that live here:

- a root that is missing, unreadable or suddenly empty turns its files 'offline' and nothing is deleted; when it
  returns its files are 'indexed' again without re-embedding (then the normal diff picks up real changes);
- a gone file and a new file with the same size and content fingerprint are a move, also between roots and when the
  watcher reports the two halves in different batches;
- user files are only ever opened for reading.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from vsearch_app.core.library.phases import ScanReporter
from vsearch_app.core.library.scanner import (
    FileStat,
    KnownFile,
    RootSet,
    ScanDiff,
    WalkResult,
    diff_root,
    fingerprint,
    is_photo_name,
    is_skipped_below,
    is_within,
    match_moves,
    stat_file,
    walk_root,
)
from vsearch_app.core.store.catalog import Catalog, FileRecord, RootRecord
from vsearch_app.core.types import FileState, IndexProgress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChangeReport:
    """What one reconciliation changed in the catalog."""

    new: int = 0
    changed: int = 0
    gone: int = 0
    moved: int = 0
    offline: int = 0
    returned: int = 0
    errors: tuple[tuple[str, str], ...] = ()  # (folder or file, reason) that could not be read

    def __add__(self, other: ChangeReport) -> ChangeReport:
        return ChangeReport(self.new + other.new, self.changed + other.changed, self.gone + other.gone,
                            self.moved + other.moved, self.offline + other.offline,
                            self.returned + other.returned, self.errors + other.errors)

    @property
    def any(self) -> bool:
        return bool(self.new or self.changed or self.gone or self.moved or self.offline or self.returned)


@dataclass(frozen=True)
class PathsReconciled:
    report: ChangeReport
    deferred: set[str]  # files not settled yet: look again later
    gone: set[str]  # vanished rows kept for now (keep_gone=True)


class Reconciler:
    """Records the differences between the disk and ``catalog`` (see the module docstring). ``model_id()`` is asked
    only when a returning file needs it (whether it has a vector of the search model), so reconciling never needs
    the model otherwise."""

    def __init__(self, catalog: Catalog, data_dir: Path, model_id: Callable[[], str]) -> None:
        self.catalog = catalog
        self.data_dir = data_dir  # never scanned, even inside a watched root
        self._model_id = model_id

    def roots(
        self,
        roots: Iterable[RootRecord] | None = None,
        *,
        progress: Callable[[IndexProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> ChangeReport:
        """Compare whole roots with the disk and record every difference (no embedding happens here). Reports
        "scanning" to ``progress``; ``cancel`` stops the walk (OperationCancelled) before anything is recorded,
        except roots found unreachable, which are marked offline as soon as they are seen.

        The roots' diffs are merged before they are applied, so a photo moved from one root to another is
        recognised as a move (its vector kept), not as a deletion plus a new photo."""
        report = ChangeReport()
        merged = ScanDiff()
        errors: list[tuple[str, str]] = []
        scan = ScanReporter(progress, cancel)
        for root in list(roots) if roots is not None else self.catalog.roots():
            part, diff, walk_errors = self._diff_root(root, scan)
            report = report + part
            errors.extend(walk_errors)
            if diff is not None:
                _merge(merged, diff)
        if merged.gone and merged.new:  # what is left unmatched inside each root may be a move between roots
            moved, merged.new, merged.gone, fingerprints = match_moves(merged.gone, merged.new)
            merged.moved.extend(moved)
            merged.new_fingerprints.update(fingerprints)
        return report + self._apply(merged, errors)

    def _diff_root(
        self, root: RootRecord, scan: ScanReporter | None = None
    ) -> tuple[ChangeReport, ScanDiff | None, list[tuple[str, str]]]:
        """Walk one root; an unreachable root is marked offline at once (and gives no diff)."""
        walk = walk_root(root.path, exclude=[self.data_dir], roots=[r.path for r in self.catalog.roots()],
                         visit=scan)
        if scan is not None:
            scan.root_done(len(walk.files))
        diff = diff_root(walk, [_known(r) for r in self.catalog.files_under(root.path)])
        if diff.root_offline:
            changed = 0
            if root.online or diff.offline:
                changed = self.catalog.set_offline(root.path)
                log.warning("%s is not reachable: %d file(s) marked offline (nothing is deleted)", root.path,
                            changed)
            return ChangeReport(offline=changed), None, walk.errors
        report = ChangeReport()
        if not root.online:
            returned = self.catalog.set_online(root.path)
            log.info("%s is back: %d file(s) online again, without re-embedding", root.path, returned)
            report = ChangeReport(returned=returned)
            diff = diff_root(walk, [_known(r) for r in self.catalog.files_under(root.path)])
        return report, diff, walk.errors

    def paths(
        self,
        paths: Iterable[str],
        *,
        accept: Callable[[FileStat], bool] | None = None,
        keep_gone: bool = False,
    ) -> PathsReconciled:
        """Reconcile only ``paths`` (files or folders, existing or not), as reported by the watcher.

        ``accept(stat)`` can hold back files that are not settled yet (still being written): such files are left
        out on both sides of the diff and come back in ``deferred`` so the caller can look again later.
        With ``keep_gone`` vanished rows are not deleted but returned in ``gone``: the watcher holds them for a
        moment, because the other half of a move (the new path) may be reported later or may not have settled."""
        roots = {str(r.path): r for r in self.catalog.roots()}
        owners = RootSet(roots, [self.data_dir])
        disk: dict[str, FileStat] = {}
        known: dict[str, FileRecord] = {}
        errors: list[tuple[str, str]] = []
        deferred: set[str] = set()
        for raw in paths:
            path = os.path.abspath(raw)
            root = _root_of(path, roots)
            if root is None or not os.path.isdir(root) or not self._visible(path, root):
                continue
            if owners.listed_elsewhere(path, is_dir=os.path.isdir(path)):
                continue  # a symlink to a photo (or folder) that is indexed under its real path
            if os.path.isdir(path):
                walk = walk_root(path, exclude=[self.data_dir], roots=roots)
                disk.update(walk.files)
                errors.extend(walk.errors)
            elif is_photo_name(path):
                st = stat_file(path)
                if st is not None:
                    disk[path] = st
            known.update((os.fspath(r.path), r) for r in self.catalog.files_under(path))
        if accept is not None:
            # A file with the size and mtime of a row that just vanished is a move (rename keeps both): take it
            # now, so the pair meets in this batch; so is a file that the catalog already knows as it is.
            vanished = {(r.size, r.mtime_ns) for p, r in known.items() if p not in disk}
            for path, st in list(disk.items()):
                row = known.get(path)
                if (st.size, st.mtime_ns) in vanished or (row is not None and (row.size, row.mtime_ns) == (
                        st.size, st.mtime_ns)):
                    continue
                if not accept(st):
                    deferred.add(path)
                    del disk[path]
                    known.pop(path, None)
        walk = WalkResult(root="", online=True, files=disk, errors=errors)
        diff = diff_root(walk, [_known(r) for r in known.values()], detect_unmount=False)
        self._match_vanished_rows(diff)
        gone = {row.path for row in diff.gone} if keep_gone else set()
        if keep_gone:
            diff.gone = []
        return PathsReconciled(self._apply(diff, errors), deferred, gone)

    def _match_vanished_rows(self, diff: ScanDiff) -> None:
        """Pair new files with catalog rows outside this diff whose file is missing (same size and fingerprint):
        the other half of a move that the OS reported earlier, later or from another root's observer."""
        still_new = []
        for item in diff.new:
            try:
                fp = diff.new_fingerprints.get(item.path) or fingerprint(item.path, item.size)
            except OSError:
                still_new.append(item)
                continue
            diff.new_fingerprints[item.path] = fp
            match = None
            for row in self.catalog.find_by_fingerprint(fp, item.size):
                old = os.fspath(row.path)
                root = self.catalog.root_for(old)
                # The old path must be truly gone: its root is there (not an unplugged drive) and the file is not.
                if old != item.path and root is not None and root.path.is_dir() and stat_file(old) is None:
                    match = row
                    break
            if match is None:
                still_new.append(item)
            else:
                diff.moved.append((_known(match), item, fp))
                diff.gone = [g for g in diff.gone if g.path != os.fspath(match.path)]
        diff.new = still_new

    def forget_missing(self, paths: Iterable[str]) -> int:
        """Delete the rows of files that are still missing (their root being online); returns how many."""
        roots = {str(r.path): r for r in self.catalog.roots()}
        removed = 0
        with self.catalog.transaction():
            for path in paths:
                root = _root_of(path, roots)
                if root is None or not os.path.isdir(root) or stat_file(path) is not None:
                    continue
                removed += self.catalog.delete_file(path) is not None
        if removed:
            log.info("forgot %d deleted file(s)", removed)
        return removed

    def _visible(self, path: str, root: str) -> bool:
        if is_within(path, str(self.data_dir)):
            return False
        return not is_skipped_below(path, root)  # not hidden, not in a NAS/OS thumbnail or trash folder

    def _apply(self, diff: ScanDiff, errors: Sequence[tuple[str, str]] = ()) -> ChangeReport:
        """Record a diff in one catalog transaction."""
        if diff.is_empty:
            return ChangeReport(errors=tuple(errors))
        with self.catalog.transaction():
            for old, new, fp in diff.moved:
                self.catalog.rename_file(old.path, new.path)
                row = self.catalog.get_file(new.path)
                if row is not None and (row.size, row.mtime_ns, row.fingerprint) != (new.size, new.mtime_ns, fp):
                    self.catalog.upsert_file(replace(row, size=new.size, mtime_ns=new.mtime_ns, fingerprint=fp))
            for row in diff.gone:
                self.catalog.delete_file(row.path)
            for item in diff.new:
                self.catalog.mark_pending(item.path, item.size, item.mtime_ns, diff.new_fingerprints.get(item.path))
            for item in diff.changed:
                self.catalog.mark_pending(item.path, item.size, item.mtime_ns)
            for row in diff.offline:
                record = self.catalog.get_file(row.path)
                if record is not None:
                    self.catalog.upsert_file(replace(record, state=FileState.OFFLINE))
            for row in diff.returned:
                record = self.catalog.get_file(row.path)
                if record is not None:
                    self.catalog.upsert_file(replace(record, state=self._state_on_return(record)))
        if diff.moved:
            log.info("kept the embedding of %d moved or renamed file(s)", len(diff.moved))
        if diff.gone:
            log.info("forgot %d deleted file(s)", len(diff.gone))
        return ChangeReport(len(diff.new), len(diff.changed), len(diff.gone), len(diff.moved), len(diff.offline),
                            len(diff.returned), tuple(errors))

    def _state_on_return(self, record: FileRecord) -> FileState:
        if self.catalog.get_embedding(record.path, self._model_id()) is not None:
            return FileState.INDEXED
        return FileState.FAILED if record.fail_reason else FileState.PENDING


def _merge(into: ScanDiff, diff: ScanDiff) -> None:
    for name in ("new", "changed", "gone", "moved", "offline", "returned"):
        getattr(into, name).extend(getattr(diff, name))
    into.new_fingerprints.update(diff.new_fingerprints)


def _known(record: FileRecord) -> KnownFile:
    return KnownFile(os.fspath(record.path), record.size, record.mtime_ns, record.fingerprint, record.state)


def _root_of(path: str, roots: dict[str, RootRecord]) -> str | None:
    for root in roots:
        if is_within(path, root):
            return root
    return None
