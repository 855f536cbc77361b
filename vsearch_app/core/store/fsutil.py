"""Small file-system helpers for the storage layer: durable atomic writes and fast content fingerprints.

- ``fsync_dir(path)``: make a rename inside ``path`` durable (no-op where directories cannot be opened, e.g. Windows).
- ``temp_path_beside(path)``: a fresh temp file next to ``path``, with the mode of any new file (the umask's).
- ``give_new_file_mode(path)``: the same mode for a file another library wrote privately (0600).
- ``atomic_write_bytes(path, data)``: temp file in the same directory, fsync, ``os.replace``, fsync the directory.
  A crash leaves either the old file or the new one, never a mix. The one way VSearch replaces a file it owns
  (manifests, hub refs, training state, thumbnails: ``durable=False`` skips the fsyncs for a cache).
- ``file_fingerprint(path, size=None) -> str``: a content hash that stays cheap on 50 MB photos (see its docstring).

These only ever write VSearch's own files (data directory); user photos are opened read-only.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from pathlib import Path

FINGERPRINT_CHUNK = 64 * 1024


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory so that a rename or a new file in it survives a power cut (POSIX only)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open directories; NTFS journals the rename itself
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (e.g. certain network mounts) refuse fsync on directories
    finally:
        os.close(fd)


# O_EXCL: never reuse a name another writer holds; the rest keep the descriptor binary and out of child processes.
_CREATE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOINHERIT", 0)
                 | getattr(os, "O_CLOEXEC", 0))
_NAME_ATTEMPTS = 100


def temp_path_beside(path: str | os.PathLike[str], suffix: str = ".tmp") -> Path:
    """A fresh, closed, empty temp file in the same directory as ``path`` (so ``os.replace`` never crosses devices),
    named ``.<name>.<random><suffix>``.

    It is created with the mode every new file gets (0o666 less the umask), because it becomes the user's file
    once replaced into place: ``mkstemp``'s private 0600 would leave index files, manifests and checkpoints unlike
    everything else the user has (unreadable to a backup tool or a second account). The kernel applies the umask
    itself, so it is never read (reading it means setting it, a race with other threads).
    """
    target = Path(path)
    for _ in range(_NAME_ATTEMPTS):
        candidate = target.parent / f".{target.name}.{secrets.token_hex(6)}{suffix}"
        try:
            fd = os.open(candidate, _CREATE_FLAGS, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(target.parent))


def give_new_file_mode(path: str | os.PathLike[str]) -> None:
    """Give ``path`` the permission bits a file newly created beside it gets (0o666 less the umask, and whatever a
    default ACL of the folder adds). For files another library writes privately: safetensors' ``save_file`` writes
    through its own temp file with mode 0600. The mode is learned from a probe file made by ``temp_path_beside``,
    since reading the umask means setting it, a race with other threads."""
    target = Path(path)
    probe = temp_path_beside(target, suffix=".mode")
    try:
        mode = stat.S_IMODE(probe.stat().st_mode)
    finally:
        probe.unlink(missing_ok=True)
    if stat.S_IMODE(target.stat().st_mode) != mode:
        os.chmod(target, mode)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new content, never a partial file.

    ``durable``: fsync the file before the rename and the folder after it, so the new content also survives a power
    cut. Without it a power cut may leave an empty or partial file: only for caches that check what they read.
    Errors (e.g. ENOSPC) propagate after the temp file is removed; the old file is untouched.
    """
    target = Path(path)
    tmp = temp_path_beside(target)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(target.parent)


def file_fingerprint(path: str | os.PathLike[str] | bytes, size: int | None = None) -> str:
    """Content fingerprint: blake2b-128 over the size and three 64 KiB samples (start, middle, end).

    Why not a full hash: a library of 50k 10-30 MB photos would mean reading hundreds of GB at every change; this
    reads at most 192 KiB per file. It only has to recognise *the same file* after a rename or a move between
    folders (where size + mtime are unchanged anyway), not prove integrity. Camera files differ in their first
    64 KiB (EXIF with time stamps, thumbnails) and their size, so false matches are practically impossible for
    photos; files up to 192 KiB are hashed completely.
    """
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        if size is None:
            size = os.fstat(fh.fileno()).st_size
        h.update(size.to_bytes(8, "little"))
        if size <= 3 * FINGERPRINT_CHUNK:
            h.update(fh.read())
        else:
            h.update(fh.read(FINGERPRINT_CHUNK))
            fh.seek(size // 2 - FINGERPRINT_CHUNK // 2)
            h.update(fh.read(FINGERPRINT_CHUNK))
            fh.seek(size - FINGERPRINT_CHUNK)
            h.update(fh.read(FINGERPRINT_CHUNK))
    return h.hexdigest()
