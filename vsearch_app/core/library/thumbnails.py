"""Thumbnails: small upright RGB copies of photos, kept in a size-capped disk cache so a photo is decoded once.

``ThumbnailCache(folder, max_bytes)``, then ``get(path, max_side, fingerprint=None) -> Thumbnail`` from any thread.

- Decoding is ``preprocessing.image.open_image`` (JPEG draft decode, EXIF orientation, every pixel mode to RGB), then
  a shrink so the longest side is at most ``max_side``. Nothing here imports torch.
- The key is the file's identity (its absolute path + size + mtime_ns, or the content fingerprint when the caller
  knows it, which survives a rename or a move) plus ``max_side`` and FORMAT_VERSION. Each entry is one JPEG named by
  the key's hash, written to a temp file and renamed into place, so a reader sees a whole file or none. There is no
  fsync: this is a cache, and an entry damaged by a power cut fails to load, is deleted and is rebuilt.
- Size cap: when the total passes ``max_bytes``, the least recently used entries are deleted down to PRUNE_TO of it
  (so a full cache does not prune on every write). Recency is the entry file's mtime, touched on every hit, so it
  survives restarts. The folder is scanned once, on the first write.
- Thread-safe: only the bookkeeping runs under the lock; decoding, encoding and file I/O run outside it, so the GUI's
  two pool threads decode in parallel. Two threads asking for the same new photo at once may both decode it (the
  second write replaces the first; harmless). Two processes sharing the folder (the app and the CLI) stay correct;
  each one's byte total is then an estimate until its next start.
- A bad photo never raises: a missing or undecodable file gives a Thumbnail whose ``reason`` says why.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

from vsearch_app.core.store.fsutil import atomic_write_bytes
from vsearch_app.core.types import Thumbnail
from vsearch_app.errors import ImageDecodeError, InvalidArgumentError
from vsearch_app.preprocessing.image import open_image

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # part of every key: bump it when the decode or the resize changes what a thumbnail looks like
DEFAULT_MAX_BYTES = 512 * 1024 * 1024  # about 25,000 thumbnails of 256 px
PRUNE_TO = 0.9  # after pruning the cache holds at most this share of max_bytes
JPEG_QUALITY = 85
ENTRY_SUFFIX = ".jpg"
STALE_TEMP_SECONDS = 3600  # temp files this old were left by a crash (a write takes milliseconds)

MISSING = "file is missing"


class ThumbnailCache:
    """Thumbnails of photos on disk, cached in ``folder`` (created when first needed) up to about ``max_bytes``."""

    def __init__(self, folder: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1:
            raise InvalidArgumentError("the thumbnail cache size must be at least 1 byte")
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        # entry file name -> size in bytes, least recently used first; None until the folder has been scanned
        self._entries: OrderedDict[str, int] | None = None
        self._total = 0

    # --- the API ----------------------------------------------------------------------------------------------------

    def get(self, path: str | os.PathLike[str], max_side: int, *, fingerprint: str | None = None) -> Thumbnail:
        """The thumbnail of the photo at ``path``, longest side at most ``max_side`` pixels (never enlarged).

        ``fingerprint`` (core.store.fsutil.file_fingerprint of the file, when the caller has it) keys the entry by
        content, so a moved photo still hits, and a cached thumbnail is returned without touching the file (e.g. on a
        drive that is unplugged). Raises only InvalidArgumentError, for a ``max_side`` below 1.
        """
        if max_side < 1:
            raise InvalidArgumentError(f"thumbnail size must be at least 1 pixel, not {max_side}")
        path = Path(os.path.abspath(path))
        identity = _fingerprint_identity(fingerprint) if fingerprint else _file_identity(path)
        if isinstance(identity, str):  # the file cannot even be looked at
            return Thumbnail(path, None, identity)
        name = _entry_name(identity, max_side)
        cached = self._read(name)
        if cached is not None:
            return Thumbnail(path, cached)
        thumbnail = _decode(path, max_side)
        if thumbnail.image is not None:
            self._store(name, thumbnail.image)
        return thumbnail

    @property
    def total_bytes(self) -> int:
        """Bytes the cache holds (scanning the folder the first time)."""
        with self._lock:
            self._load_entries()
            return self._total

    # --- entries ----------------------------------------------------------------------------------------------------

    def _entry_path(self, name: str) -> Path:
        return self.folder / name[:2] / name  # 256 subfolders: no folder ever holds more than a few hundred files

    def _read(self, name: str) -> np.ndarray | None:
        entry = self._entry_path(name)
        try:
            with Image.open(entry) as image:
                if image.mode != "RGB":
                    raise ValueError(f"mode {image.mode}")
                pixels = np.array(image)
        except (FileNotFoundError, NotADirectoryError):  # not cached (or the cache folder is not usable)
            self._forget(name)
            return None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            log.info("thumbnail cache entry %s is unreadable (%s); making it again", entry, exc)
            _remove(entry)
            self._forget(name)
            return None
        self._touch(name, entry)
        pixels.flags.writeable = False
        return pixels

    def _store(self, name: str, pixels: np.ndarray) -> None:
        entry = self._entry_path(name)
        buffer = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buffer, "JPEG", quality=JPEG_QUALITY)
        data = buffer.getvalue()
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(entry, data, durable=False)  # a damaged entry fails to load and is made again
        except OSError as exc:  # a full disk or a read-only cache folder costs speed, never the thumbnail itself
            log.warning("cannot write to the thumbnail cache %s: %s", self.folder, exc)
            return
        with self._lock:
            self._load_entries()
            assert self._entries is not None
            self._total += len(data) - self._entries.pop(name, 0)
            self._entries[name] = len(data)
            victims = self._pick_victims()
        for victim in victims:
            _remove(self._entry_path(victim))
        if victims:
            log.debug("thumbnail cache pruned %d entries, %d bytes left", len(victims), self._total)

    def _pick_victims(self) -> list[str]:
        """Under the lock: the least recently used entries to delete so the total drops to PRUNE_TO of the cap. The
        newest entry always stays, even when it alone is over the cap."""
        assert self._entries is not None
        if self._total <= self.max_bytes:
            return []
        target = int(self.max_bytes * PRUNE_TO)
        victims = []
        while self._total > target and len(self._entries) > 1:
            name, size = self._entries.popitem(last=False)
            self._total -= size
            victims.append(name)
        return victims

    def _touch(self, name: str, entry: Path) -> None:
        with self._lock:
            if self._entries is not None and name in self._entries:
                self._entries.move_to_end(name)
        try:
            os.utime(entry)  # the mtime is the recency a later process prunes by
        except OSError:
            pass

    def _forget(self, name: str) -> None:
        with self._lock:
            if self._entries is not None:
                self._total -= self._entries.pop(name, 0)

    def _load_entries(self) -> None:
        """Under the lock, once: learn the entries on disk, oldest use first, and delete temp files left by a crash."""
        if self._entries is not None:
            return
        found: list[tuple[int, str, int]] = []  # (mtime_ns, name, bytes)
        now = time.time()
        try:
            subfolders = [d for d in os.scandir(self.folder) if d.is_dir(follow_symlinks=False)]
        except OSError:
            subfolders = []  # not created yet (or unreadable: then nothing can be cached and nothing is pruned)
        for subfolder in subfolders:
            try:
                files = list(os.scandir(subfolder.path))
            except OSError:
                continue
            for file in files:
                try:
                    info = file.stat(follow_symlinks=False)
                except OSError:
                    continue
                if file.name.endswith(ENTRY_SUFFIX) and not file.name.startswith("."):
                    found.append((info.st_mtime_ns, file.name, info.st_size))
                elif file.name.startswith(".") and now - info.st_mtime > STALE_TEMP_SECONDS:
                    _remove(Path(file.path))
        found.sort()
        self._entries = OrderedDict((name, size) for _, name, size in found)
        self._total = sum(size for _, _, size in found)


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:  # e.g. read-only media; the entry is then merely not pruned
        log.debug("cannot remove %s: %s", path, exc)


# --- keys and decoding ----------------------------------------------------------------------------------------------


def _file_identity(path: Path) -> bytes | str:
    """Path + size + mtime_ns as key material, or the reason the file cannot be looked at."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return MISSING
    except PermissionError:
        return "cannot read: permission denied"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    return b"\0".join((b"path", os.fsencode(path), str(info.st_size).encode(), str(info.st_mtime_ns).encode()))


def _fingerprint_identity(fingerprint: str) -> bytes:
    return b"fingerprint\0" + fingerprint.encode("utf-8", "surrogatepass")


def _entry_name(identity: bytes, max_side: int) -> str:
    key = identity + f"\0{max_side}\0v{FORMAT_VERSION}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest() + ENTRY_SUFFIX


def _decode(path: Path, max_side: int) -> Thumbnail:
    try:
        # The draft bound keeps both decoded sides >= max_side, so the shrink below always has enough pixels.
        image = open_image(path, target_size=(max_side, max_side))
        if max(image.size) > max_side:
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
        pixels = np.array(image)
    except ImageDecodeError as exc:
        if not os.path.lexists(path):  # removed between the look and the decode
            return Thumbnail(path, None, MISSING)
        return Thumbnail(path, None, f"cannot decode: {exc.reason}")
    except Exception as exc:  # a bug in a decoder plugin must not take a grid of thumbnails down with it
        log.warning("making a thumbnail of %s failed", path, exc_info=True)
        return Thumbnail(path, None, f"cannot decode: {type(exc).__name__}: {exc}")
    pixels.flags.writeable = False  # the Thumbnail is frozen; so are its pixels
    return Thumbnail(path, pixels)
