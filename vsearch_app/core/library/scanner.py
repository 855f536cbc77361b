"""Finding the photos under the watched roots and comparing them with what the catalog knows.

``walk_root`` lists the photo files of one root: hidden files and folders, the thumbnail, trash and snapshot folders
that NAS boxes and operating systems keep beside photos (``SYSTEM_FOLDER_NAMES``: Synology's ``@eaDir``, Windows'
``$RECYCLE.BIN`` ...) and the data directory are skipped; a folder that cannot be read is reported in
``WalkResult.errors``, never skipped silently. Symlinks are followed, but each photo is listed once:

- a symlink (to a file or a folder) whose target a walk of a watched root lists under its real path is skipped, so
  the photo is found once, under the real file's path;
- a symlink to something outside the roots is followed and listed under the link's path; two links to the same
  file outside the roots are listed once (the first in name order);
- every directory is entered at most once (tracked by ``(st_dev, st_ino)``), so a symlink loop cannot trap the walk.

``diff_root`` compares one walk with the catalog's rows for that root:

- new / changed (size or mtime differ) / gone,
- moved: a gone file and a new file with the same size and content fingerprint are one file renamed (its vector is
  kept, nothing is re-embedded),
- offline: files under a root or folder we cannot read right now. They are never treated as gone; that is what
  keeps an unplugged drive from wiping its part of the catalog.

Paths are ``str`` as the OS gives them (``os.fsdecode``; undecodable bytes survive as surrogate escapes, and
``os.fsencode`` restores the exact bytes).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from vsearch_app.core.store.fsutil import file_fingerprint
from vsearch_app.core.types import FileState

log = logging.getLogger(__name__)

PHOTO_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .png .webp .gif .bmp .tif .tiff .heic .heif .avif".split()
)


def is_photo_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in PHOTO_EXTENSIONS


# Folders that NAS systems and operating systems create for their own use: thumbnails and metadata of the photos
# next to them, recycle bins, snapshots. Indexing them would return every photo several times (and deleted ones).
# Compared case-insensitively (SMB shares and Windows drives are). Names starting with a dot (.@__thumb, .Trashes,
# .thumbnails, .Trash-1000, .Spotlight-V100, .fseventsd ...) are skipped anyway, as hidden.
SYSTEM_FOLDER_NAMES = frozenset(name.casefold() for name in (
    "@eaDir", "#recycle", "#snapshot", "@tmp", "@sharebin",  # Synology
    "@__thumb", "@Recycle", "@Recently-Snapshot",  # QNAP
    "$RECYCLE.BIN", "RECYCLER", "System Volume Information",  # Windows (drives seen from elsewhere too)
    "lost+found",  # ext file systems: fragments recovered by fsck, readable by root only
))


def is_hidden_name(name: str) -> bool:
    return name.startswith(".")


def is_skipped_name(name: str) -> bool:
    """A file or folder name the walk never enters or lists: hidden, or a system folder (SYSTEM_FOLDER_NAMES)."""
    return is_hidden_name(name) or name.casefold() in SYSTEM_FOLDER_NAMES


def is_skipped_below(path: str, root: str) -> bool:
    """True when ``path`` lies below ``root`` in (or is) a hidden or system folder, which a walk of ``root`` never
    enters. A path outside ``root`` is not skipped by it. (The watcher drops events from such folders.)"""
    try:
        rel = os.path.relpath(path, root)
    except ValueError:  # another drive (Windows)
        return False
    if rel == "." or rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return False
    return any(is_skipped_name(part) for part in rel.split(os.sep))


def _is_skipped_entry(entry: os.DirEntry) -> bool:
    if is_skipped_name(entry.name):
        return True
    # Windows marks hidden files with an attribute instead of a leading dot.
    attributes = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
    return bool(attributes & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


def fingerprint(path: str | os.PathLike[str], size: int | None = None) -> str:
    """The catalog's content fingerprint (one algorithm everywhere, or moves would never match)."""
    return file_fingerprint(path, size)


@dataclass(frozen=True)
class FileStat:
    path: str
    size: int
    mtime_ns: int


@dataclass
class WalkResult:
    root: str
    online: bool
    files: dict[str, FileStat] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (folder or file, reason) we could not read

    @property
    def unreadable_dirs(self) -> list[str]:
        return [path for path, _ in self.errors]


def is_within(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (by name: no symlink is resolved)."""
    folder = folder.rstrip(os.sep) or os.sep
    return path == folder or path.startswith(folder if folder.endswith(os.sep) else folder + os.sep)


def stat_file(path: str) -> FileStat | None:
    """Size and mtime of a regular file (following symlinks), or None when it is not one (any more)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return FileStat(path, st.st_size, st.st_mtime_ns)


class RootSet:
    """The watched roots, resolved once, to answer: does a walk of some root list this path under another name?"""

    def __init__(self, roots: Iterable[str | os.PathLike[str]],
                 exclude: Iterable[str | os.PathLike[str]] = ()) -> None:
        spelled = [os.path.abspath(os.fsdecode(r)) for r in roots]
        self._roots = [(r, os.path.realpath(r)) for r in dict.fromkeys(spelled)]
        self._excluded = [os.path.realpath(os.fsdecode(p)) for p in exclude]

    def listed_elsewhere(self, path: str, *, is_dir: bool) -> bool:
        """True when ``path`` (reached through a symlink) is a file or folder that the walk of a root lists under
        its real path, which differs from ``path``. Then ``path`` is left out, so the photo is listed once."""
        real = os.path.realpath(path)
        for spelled, resolved in self._roots:
            if not is_within(real, resolved):
                continue
            canonical = spelled if real == resolved else os.path.join(spelled, os.path.relpath(real, resolved))
            if canonical == path or is_skipped_below(canonical, spelled):
                return False
            if any(is_within(real, excluded) for excluded in self._excluded):
                return False
            return is_dir or is_photo_name(real)
        return False


def walk_root(
    root: str | os.PathLike[str],
    *,
    exclude: Iterable[str | os.PathLike[str]] = (),
    roots: Iterable[str | os.PathLike[str]] = (),
    visit: Callable[[str, int], None] | None = None,
) -> WalkResult:
    """All photo files under ``root``. A root that is missing or unreadable comes back ``online=False``.

    ``roots`` are the other watched roots (``root`` always counts as one): a symlink to a photo that one of them
    lists under its real path is left out here (see the module docstring). ``visit(folder, photos_so_far)`` is
    called before each folder is read (progress); an exception it raises (a cancel) abandons the walk."""
    root = os.path.abspath(os.fsdecode(root))
    excluded = [os.path.abspath(os.fsdecode(p)) for p in exclude]
    owners = RootSet([root, *roots], excluded)
    result = WalkResult(root=root, online=True)
    try:
        root_stat = os.stat(root)
        if not stat.S_ISDIR(root_stat.st_mode):
            raise NotADirectoryError(f"{root} is not a folder")
        with os.scandir(root):
            pass
    except OSError as exc:
        log.warning("root %s is offline: %s", root, exc)
        result.online = False
        result.errors.append((root, _reason(exc)))
        return result
    # Excluded folders are matched by identity too, so a symlinked spelling of the data directory is still skipped.
    visited: set[tuple[int, int]] = set()
    for path in excluded:
        try:
            st_excluded = os.stat(path)
        except OSError:
            continue
        visited.add((st_excluded.st_dev, st_excluded.st_ino))
    # Files reached through a symlink to outside the roots, by identity: two links to one file list it once.
    linked_files: set[tuple[int, int]] = set()
    # (folder, reached through a symlink): below a symlink every path is another spelling, so each is checked.
    stack = [(root, False)]
    while stack:
        folder, via_link = stack.pop()
        if visit is not None:
            visit(folder, len(result.files))
        try:
            st = os.stat(folder)
        except OSError as exc:
            result.errors.append((folder, _reason(exc)))
            continue
        key = (st.st_dev, st.st_ino)
        if key in visited:
            log.debug("skipping %s: already walked (symlink loop or second link)", folder)
            continue
        visited.add(key)
        try:
            with os.scandir(folder) as listing:
                # Name order makes "the first of two links" the same at every scan.
                entries = sorted(listing, key=lambda e: e.name)
            subfolders = []
            for entry in entries:
                try:
                    if _is_skipped_entry(entry):
                        continue
                    linked = via_link or entry.is_symlink()
                    if entry.is_dir(follow_symlinks=True):
                        if any(is_within(os.path.abspath(entry.path), x) for x in excluded):
                            continue
                        if linked and owners.listed_elsewhere(entry.path, is_dir=True):
                            log.debug("skipping %s: a link to a folder the walk lists under its own path", entry.path)
                            continue
                        subfolders.append((entry.path, linked))
                    elif is_photo_name(entry.name) and entry.is_file(follow_symlinks=True):
                        if linked:
                            if owners.listed_elsewhere(entry.path, is_dir=False):
                                continue  # listed under the real file's path
                            st_target = os.stat(entry.path)  # DirEntry.stat has no inode on Windows
                            identity = (st_target.st_dev, st_target.st_ino)
                            if identity in linked_files:
                                continue
                            linked_files.add(identity)
                        st_file = entry.stat(follow_symlinks=True)
                        result.files[entry.path] = FileStat(entry.path, st_file.st_size, st_file.st_mtime_ns)
                except OSError as exc:  # a dangling symlink or a file removed while we list the folder
                    if entry.is_symlink() and not os.path.exists(entry.path):
                        continue
                    result.errors.append((entry.path, _reason(exc)))
            stack.extend(sorted(subfolders, reverse=True))
        except OSError as exc:
            log.info("cannot read folder %s: %s", folder, exc)  # the index report names it to the user
            result.errors.append((folder, _reason(exc)))
    return result


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


# --- comparing with the catalog ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownFile:
    """What the catalog knows about one file, as the diff needs it."""

    path: str
    size: int
    mtime_ns: int
    fingerprint: str | None
    state: FileState  # the catalog's state of the file (a plain str value compares equal)


@dataclass
class ScanDiff:
    new: list[FileStat] = field(default_factory=list)
    changed: list[FileStat] = field(default_factory=list)
    gone: list[KnownFile] = field(default_factory=list)
    moved: list[tuple[KnownFile, FileStat, str]] = field(default_factory=list)  # (old row, new file, fingerprint)
    offline: list[KnownFile] = field(default_factory=list)  # known files we cannot see right now
    returned: list[KnownFile] = field(default_factory=list)  # offline rows that are back unchanged
    new_fingerprints: dict[str, str] = field(default_factory=dict)  # fingerprints computed while matching moves
    root_offline: bool = False  # the whole root is unreachable (or looks unmounted): everything went to offline

    @property
    def is_empty(self) -> bool:
        return not (self.new or self.changed or self.gone or self.moved or self.offline or self.returned
                    or self.root_offline)


def diff_root(walk: WalkResult, known: Iterable[KnownFile], *, detect_unmount: bool = True) -> ScanDiff:
    """Compare a walk of one root with the catalog rows under that root. ``detect_unmount=False`` for partial
    walks (a few paths the watcher reported), where "nothing found" is a normal answer."""
    diff = ScanDiff()
    known = list(known)
    if not walk.online or (detect_unmount and _looks_unmounted(walk, known)):
        diff.offline = [k for k in known if k.state != FileState.OFFLINE]
        diff.root_offline = True
        return diff
    unreadable = walk.unreadable_dirs
    seen: set[str] = set()
    gone: list[KnownFile] = []
    for row in known:
        current = walk.files.get(row.path)
        if current is None:
            if any(is_within(row.path, folder) for folder in unreadable):
                if row.state != FileState.OFFLINE:
                    diff.offline.append(row)
            else:
                gone.append(row)
            continue
        seen.add(row.path)
        unchanged = current.size == row.size and current.mtime_ns == row.mtime_ns
        if not unchanged:
            diff.changed.append(current)
        elif row.state == FileState.OFFLINE:
            diff.returned.append(row)
    new = [f for path, f in walk.files.items() if path not in seen]
    diff.moved, diff.new, diff.gone, diff.new_fingerprints = match_moves(gone, new)
    return diff


def _looks_unmounted(walk: WalkResult, known: list[KnownFile]) -> bool:
    """An empty root whose files the catalog knows is far more often an unmounted drive or share (the mount point
    stays behind, empty) than a user who deleted every photo; treat it as offline, which loses nothing."""
    if walk.files or not known or walk.errors:
        return False
    if all(k.state == FileState.OFFLINE for k in known):
        return True
    log.warning("root %s is empty but the catalog knows %d files there: treating it as offline", walk.root,
                len(known))
    return True


def match_moves(
    gone: list[KnownFile], new: list[FileStat]
) -> tuple[list[tuple[KnownFile, FileStat, str]], list[FileStat], list[KnownFile], dict[str, str]]:
    """Pair gone rows with new files of the same size and fingerprint (a rename or move). Only new files whose
    size matches a gone file are read, so a scan with nothing gone reads no file contents."""
    by_size: dict[int, list[KnownFile]] = {}
    for row in gone:
        if row.fingerprint:
            by_size.setdefault(row.size, []).append(row)
    moved: list[tuple[KnownFile, FileStat, str]] = []
    still_new: list[FileStat] = []
    fingerprints: dict[str, str] = {}
    matched: set[str] = set()
    for item in new:
        candidates = by_size.get(item.size)
        if not candidates:
            still_new.append(item)
            continue
        try:
            fp = fingerprint(item.path, item.size)
        except OSError as exc:
            log.debug("cannot fingerprint %s: %s", item.path, exc)
            still_new.append(item)
            continue
        fingerprints[item.path] = fp
        match = next((row for row in candidates if row.fingerprint == fp), None)
        if match is None:
            still_new.append(item)
            continue
        candidates.remove(match)
        matched.add(match.path)
        moved.append((match, item, fp))
    still_gone = [row for row in gone if row.path not in matched]
    return moved, still_new, still_gone, fingerprints
