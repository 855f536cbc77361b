"""ThumbnailCache: upright small RGB images, decoded once thanks to the disk cache, reasons instead of exceptions,
an LRU size cap, thread safety, and no torch import."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vsearch_app.core.library import thumbnails
from vsearch_app.core.library.thumbnails import ThumbnailCache
from vsearch_app.errors import InvalidArgumentError

REPO_ROOT = Path(__file__).resolve().parents[2]
RED = (230, 20, 20)
BLUE = (20, 20, 230)

# How the stored pixels must be turned so that EXIF orientation N (which says how to turn them upright) is right.
_STORE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,  # orientation 6 is undone by a 270 degree turn
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def _upright_scene(width: int = 120, height: int = 80) -> Image.Image:
    """Landscape, blue, with a red block in the top-left corner: any wrong flip or turn moves the block or the shape."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 4, height // 4))
    return image


def _save_jpeg(path: Path, image: Image.Image, orientation: int | None = None) -> Path:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(path, "JPEG", quality=95, exif=exif)
    return path


def _noise_jpeg(path: Path, seed: int, size: tuple[int, int] = (64, 48)) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(path, "JPEG", quality=90)
    return path


def _mean(pixels: np.ndarray) -> np.ndarray:
    return pixels.reshape(-1, 3).mean(axis=0)


def _is_colour(pixels: np.ndarray, colour: tuple[int, int, int], tol: float = 40) -> bool:
    return bool(np.all(np.abs(_mean(pixels) - np.asarray(colour)) < tol))


@pytest.fixture
def decodes(monkeypatch):
    """Counts the photo decodes the cache makes (open_image is the only decode function it calls)."""
    calls: list[Path] = []
    real = thumbnails.open_image

    def counting(source, target_size=None):
        calls.append(Path(source))
        return real(source, target_size=target_size)

    monkeypatch.setattr(thumbnails, "open_image", counting)
    return calls


def _entry_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*" + thumbnails.ENTRY_SUFFIX))


# --- pictures -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_thumbnail_is_upright_for_every_exif_orientation(tmp_path, orientation):
    stored = _upright_scene().transpose(_STORE_FOR_ORIENTATION[orientation])
    photo = _save_jpeg(tmp_path / f"o{orientation}.jpg", stored, orientation)
    cache = ThumbnailCache(tmp_path / "thumbs")
    for attempt in ("decoded", "cached"):
        thumb = cache.get(photo, 60)
        assert thumb.reason is None, attempt
        assert thumb.image.shape == (40, 60, 3), attempt  # landscape again, shrunk to the longest side 60
        assert thumb.image.dtype == np.uint8
        image = thumb.image
        assert _is_colour(image[2:8, 2:12], RED), attempt  # the red block is back in the top-left corner
        for corner in (image[2:8, -12:-2], image[-8:-2, 2:12], image[-8:-2, -12:-2]):
            assert _is_colour(corner, BLUE), attempt


def test_a_large_jpeg_is_shrunk_to_max_side_and_small_photos_are_never_enlarged(tmp_path):
    big = _save_jpeg(tmp_path / "big.jpg", _upright_scene(2400, 1600))
    small = _save_jpeg(tmp_path / "small.jpg", _upright_scene(90, 60))
    cache = ThumbnailCache(tmp_path / "thumbs")
    assert cache.get(big, 256).image.shape == (171, 256, 3)  # draft-decoded at 1/4, then resized
    assert cache.get(small, 256).image.shape == (60, 90, 3)


def test_the_pixels_of_a_thumbnail_cannot_be_changed(tmp_path):
    photo = _save_jpeg(tmp_path / "p.jpg", _upright_scene())
    cache = ThumbnailCache(tmp_path / "thumbs")
    for _ in range(2):  # decoded, then cached
        with pytest.raises(ValueError):
            cache.get(photo, 32).image[0, 0, 0] = 1


# --- the disk cache -------------------------------------------------------------------------------------------------


def test_the_second_get_comes_from_the_disk_cache_without_decoding(tmp_path, decodes):
    photo = _save_jpeg(tmp_path / "p.jpg", _upright_scene())
    folder = tmp_path / "thumbs"
    first = ThumbnailCache(folder).get(photo, 64)
    assert len(decodes) == 1
    again = ThumbnailCache(folder).get(photo, 64)  # a new cache object, as after restarting the app
    assert len(decodes) == 1
    assert again.image.shape == first.image.shape
    assert np.abs(again.image.astype(int) - first.image.astype(int)).mean() < 3  # JPEG round trip only
    assert len(_entry_files(folder)) == 1


def test_a_different_size_or_a_changed_file_is_decoded_again(tmp_path, decodes):
    photo = _save_jpeg(tmp_path / "p.jpg", _upright_scene())
    cache = ThumbnailCache(tmp_path / "thumbs")
    cache.get(photo, 64)
    cache.get(photo, 32)
    assert len(decodes) == 2
    _save_jpeg(photo, _upright_scene(60, 90))  # the user edited the photo: now portrait
    os.utime(photo, ns=(os.stat(photo).st_atime_ns, os.stat(photo).st_mtime_ns + 10**9))
    assert cache.get(photo, 64).image.shape == (64, 43, 3)
    assert len(decodes) == 3


def test_a_fingerprint_key_follows_a_moved_file_and_needs_no_file(tmp_path, decodes):
    photo = _save_jpeg(tmp_path / "p.jpg", _upright_scene())
    cache = ThumbnailCache(tmp_path / "thumbs")
    cache.get(photo, 64, fingerprint="abc123")
    moved = photo.rename(tmp_path / "moved.jpg")
    thumb = cache.get(moved, 64, fingerprint="abc123")
    assert thumb.image is not None and thumb.path == moved
    moved.unlink()  # e.g. its drive was unplugged: the cached picture still shows
    assert cache.get(moved, 64, fingerprint="abc123").image is not None
    assert len(decodes) == 1


def test_a_damaged_cache_entry_is_made_again(tmp_path, decodes):
    photo = _save_jpeg(tmp_path / "p.jpg", _upright_scene())
    folder = tmp_path / "thumbs"
    cache = ThumbnailCache(folder)
    cache.get(photo, 64)
    (entry,) = _entry_files(folder)
    entry.write_bytes(b"\xff\xd8 half a jpeg")
    assert cache.get(photo, 64).image.shape == (43, 64, 3)
    assert len(decodes) == 2
    assert cache.get(photo, 64).image is not None
    assert len(decodes) == 2


def test_an_unwritable_cache_folder_still_gives_thumbnails(tmp_path):
    not_a_folder = tmp_path / "thumbs"
    not_a_folder.write_text("a file where the cache folder should be")
    photo = _save_jpeg(tmp_path / "p.jpg", _upright_scene())
    assert ThumbnailCache(not_a_folder).get(photo, 64).image.shape == (43, 64, 3)


def test_the_size_cap_prunes_the_least_recently_used(tmp_path, decodes):
    photos = [_noise_jpeg(tmp_path / f"n{i}.jpg", seed=i) for i in range(4)]
    folder = tmp_path / "thumbs"
    probe = ThumbnailCache(tmp_path / "probe")
    probe.get(photos[0], 64)
    one_entry = probe.total_bytes
    cache = ThumbnailCache(folder, max_bytes=int(one_entry * 3.5))
    a, b, c, d = photos
    for photo in (a, b, c):
        cache.get(photo, 64)
    cache.get(a, 64)  # a is now more recently used than b
    assert len(decodes) == 4  # probe + three
    cache.get(d, 64)  # over the cap: b, the least recently used, goes
    assert cache.total_bytes <= cache.max_bytes
    assert len(_entry_files(folder)) == 3
    for photo in (a, c, d):
        cache.get(photo, 64)
    assert len(decodes) == 5  # all three were still cached
    cache.get(b, 64)
    assert len(decodes) == 6  # b was pruned


def test_recency_survives_a_restart(tmp_path):
    photos = [_noise_jpeg(tmp_path / f"n{i}.jpg", seed=i) for i in range(4)]
    folder = tmp_path / "thumbs"
    first_run = ThumbnailCache(folder)
    for photo in photos[:3]:
        first_run.get(photo, 64)
    one_entry = first_run.total_bytes / 3
    # Make photo 1's entry the oldest on disk, as if photos 0 and 2 had been viewed since.
    for age, photo in ((300, photos[1]), (200, photos[0]), (100, photos[2])):
        entry = _entry_of(folder, photo)
        stamp = entry.stat().st_mtime_ns - age * 10**9
        os.utime(entry, ns=(stamp, stamp))
    second_run = ThumbnailCache(folder, max_bytes=int(one_entry * 3.5))
    second_run.get(photos[3], 64)
    assert not _entry_of(folder, photos[1]).exists()
    assert all(_entry_of(folder, photo).exists() for photo in (photos[0], photos[2], photos[3]))


def _entry_of(folder: Path, photo: Path) -> Path:
    info = os.stat(photo)
    identity = b"\0".join((b"path", os.fsencode(os.path.abspath(photo)), str(info.st_size).encode(),
                           str(info.st_mtime_ns).encode()))
    name = thumbnails._entry_name(identity, 64)
    return folder / name[:2] / name


def test_stale_temp_files_left_by_a_crash_are_removed(tmp_path):
    folder = tmp_path / "thumbs"
    (folder / "ab").mkdir(parents=True)
    stale = folder / "ab" / ".abc.jpg.x1.tmp"
    fresh = folder / "ab" / ".abd.jpg.x2.tmp"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    old = stale.stat().st_mtime_ns - (thumbnails.STALE_TEMP_SECONDS + 60) * 10**9
    os.utime(stale, ns=(old, old))
    assert ThumbnailCache(folder).total_bytes == 0
    assert not stale.exists() and fresh.exists()  # a fresh one may be another process's write in progress


def test_two_threads_at_once_share_the_cache_safely(tmp_path):
    photos = [_noise_jpeg(tmp_path / f"n{i}.jpg", seed=i) for i in range(12)]
    folder = tmp_path / "thumbs"
    cache = ThumbnailCache(folder, max_bytes=10**9)
    errors: list[BaseException] = []

    def work(order):
        try:
            for _ in range(3):
                for photo in order:
                    assert cache.get(photo, 40).image is not None
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(photos,)), threading.Thread(target=work, args=(photos[::-1],))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    on_disk = _entry_files(folder)
    assert len(on_disk) == 12
    assert cache.total_bytes == sum(e.stat().st_size for e in on_disk)


# --- reasons instead of exceptions ----------------------------------------------------------------------------------


def test_an_undecodable_file_gives_a_reason(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a picture at all")
    thumb = ThumbnailCache(tmp_path / "thumbs").get(bad, 64)
    assert thumb.image is None
    assert thumb.reason.startswith("cannot decode: ")
    assert thumb.path == bad


def test_a_truncated_jpeg_gives_a_reason(tmp_path):
    photo = _noise_jpeg(tmp_path / "n.jpg", seed=1, size=(400, 300))
    photo.write_bytes(photo.read_bytes()[:300])
    thumb = ThumbnailCache(tmp_path / "thumbs").get(photo, 64)
    assert thumb.image is None and thumb.reason.startswith("cannot decode: ")


def test_a_missing_file_gives_a_reason(tmp_path):
    thumb = ThumbnailCache(tmp_path / "thumbs").get(tmp_path / "gone.jpg", 64)
    assert (thumb.image, thumb.reason) == (None, "file is missing")


def test_a_max_side_below_one_is_refused(tmp_path):
    with pytest.raises(InvalidArgumentError, match="at least 1 pixel"):
        ThumbnailCache(tmp_path / "thumbs").get(tmp_path / "x.jpg", 0)


# --- the service and import cost -------------------------------------------------------------------------------------


def test_the_service_keeps_thumbnails_in_the_cache_folder(tmp_path, tiny_siglip_dir, decodes):
    from vsearch_app.core.service import LibraryService
    from vsearch_app.settings import AppSettings

    settings = AppSettings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", hub_cache_dir=tmp_path / "hub",
                           model=str(tiny_siglip_dir), dtype="float32")
    photo = _save_jpeg(tmp_path / "p.jpg", _upright_scene(), orientation=None)
    with LibraryService.open(settings) as service:
        assert service.thumbnail(photo, 48).image.shape == (32, 48, 3)
        assert service.thumbnail(photo, 48).image is not None
        assert service.thumbnail(tmp_path / "gone.jpg").reason == "file is missing"
    assert len(decodes) == 1
    assert len(_entry_files(tmp_path / "cache" / "thumbs")) == 1


def test_making_thumbnails_does_not_import_torch(tmp_path):
    photo = _save_jpeg(tmp_path / "p.jpg", _upright_scene(), orientation=6)
    code = (
        "import sys\n"
        "from vsearch_app.core.library.thumbnails import ThumbnailCache\n"
        f"thumb = ThumbnailCache({str(tmp_path / 'thumbs')!r}).get({str(photo)!r}, 32)\n"
        "assert thumb.image is not None, thumb.reason\n"
        "print('torch' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
