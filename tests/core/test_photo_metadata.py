"""EXIF metadata of generated JPEGs written the way cameras and phones write it (Pillow writes the tags)."""

from __future__ import annotations

import os
from datetime import datetime

import pytest
from PIL import Image

from vsearch_app.core.library.photo_metadata import (
    camera_display,
    exif_datetime,
    normalise_camera,
    read_metadata,
)


def jpeg(path, *, make=None, model=None, taken=None, offset=None, lens=None, gps=False, orientation=None,
         size=(40, 30)):
    exif = Image.Exif()
    if make is not None:
        exif[0x010F] = make
    if model is not None:
        exif[0x0110] = model
    if orientation is not None:
        exif[0x0112] = orientation
    sub = exif.get_ifd(0x8769)
    if taken is not None:
        sub[0x9003] = taken
    if offset is not None:
        sub[0x9011] = offset
    if lens is not None:
        sub[0xA434] = lens
    if gps:
        exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 0.0)})
    Image.new("RGB", size, (200, 40, 40)).save(path, exif=exif)
    return path


def test_a_phone_photo_gives_date_offset_camera_lens_and_gps(tmp_path):
    path = jpeg(tmp_path / "PXL_20190601.jpg", make="Google", model="Pixel 7", taken="2019:06:01 14:22:01",
                offset="+02:00", lens="Pixel 7 back camera 6.81mm f/1.85", gps=True)
    meta = read_metadata(str(path), mtime_ns=0)
    assert meta.captured_at == "2019-06-01T14:22:01" and meta.captured_source == "exif"
    assert meta.captured_offset == "+02:00"
    assert (meta.camera_make, meta.camera_model) == ("Google", "Pixel 7")
    assert camera_display(meta.camera_make, meta.camera_model) == "Google Pixel 7"
    assert meta.lens == "Pixel 7 back camera 6.81mm f/1.85"
    assert meta.has_gps is True
    assert (meta.width, meta.height) == (40, 30)


def test_a_camera_that_repeats_its_make_in_the_model_is_named_once(tmp_path):
    path = jpeg(tmp_path / "DSC_0001.JPG", make="NIKON CORPORATION", model="NIKON D750", taken="2016:12:24 18:00:00",
                orientation=6)
    meta = read_metadata(str(path))
    assert camera_display(meta.camera_make, meta.camera_model) == "Nikon D750"
    assert meta.captured_offset is None and meta.has_gps is False
    assert (meta.width, meta.height) == (30, 40)  # upright: the camera was held on its side


@pytest.mark.parametrize(("make", "model", "shown"), [
    ("Canon", "Canon EOS R5", "Canon EOS R5"),
    ("SONY", "ILCE-7M3", "Sony ILCE-7M3"),
    ("OLYMPUS IMAGING CORP.", "E-M10MarkII", "Olympus E-M10MarkII"),
    ("Apple", "iPhone 12 mini", "Apple iPhone 12 mini"),
    ("HTC", "HTC One", "HTC One"),
    ("samsung", "SM-G991B", "samsung SM-G991B"),
    (None, "Mystery Cam", "Mystery Cam"),
    ("FUJIFILM", None, "Fujifilm"),
    ("Google", "Google", "Google"),
])
def test_camera_names_are_normalised(make, model, shown):
    assert camera_display(*normalise_camera(make, model)) == shown


def test_without_exif_the_capture_time_is_the_modification_time(tmp_path):
    plain = tmp_path / "scan.png"
    Image.new("RGB", (7, 5)).save(plain)
    mtime_ns = 1_560_000_000 * 10**9
    os.utime(plain, ns=(mtime_ns, mtime_ns))
    meta = read_metadata(str(plain), mtime_ns=mtime_ns)
    assert meta.captured_source == "mtime"
    assert meta.captured_at == datetime.fromtimestamp(1_560_000_000).isoformat(timespec="seconds")
    assert (meta.camera_make, meta.camera_model, meta.lens, meta.has_gps) == (None, None, None, False)


def test_a_bad_offset_is_dropped_and_a_bad_date_falls_back_to_mtime(tmp_path):
    path = jpeg(tmp_path / "odd.jpg", taken="2019:02:30 10:00:00", offset="+2h")  # 30 February
    meta = read_metadata(str(path), mtime_ns=1_000_000_000 * 10**9)
    assert meta.captured_source == "mtime" and meta.captured_offset is None
    good_date = jpeg(tmp_path / "odd2.jpg", taken="2019:02:03 10:00:00", offset="+2h")
    assert read_metadata(str(good_date)).captured_offset is None


def test_a_file_that_is_not_an_image_gives_only_the_mtime(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"not a jpeg")
    meta = read_metadata(str(path), mtime_ns=1_000_000_000 * 10**9)
    assert meta.captured_source == "mtime" and meta.width is None and meta.camera_make is None


@pytest.mark.parametrize(("raw", "expected"), [
    ("2021:05:03 14:22:01", "2021-05-03T14:22:01"),
    ("2021:13:03 14:22:01", None),
    ("2021:05:03T14:22:01", "2021-05-03T14:22:01"),
])
def test_exif_datetime_checks_the_calendar(raw, expected):
    assert exif_datetime(raw) == expected
