"""Hostile files through the real pipeline (scan, isolated decode, tiny model, catalog): each ends exactly as its
``Case`` says (tests/faults/hostile_files.py), nothing crashes, and the rest of the folder is indexed.

Covered elsewhere, not repeated here: a file still being written is taken once it settles
(tests/core/test_watcher.py::test_file_is_taken_only_once_its_size_and_mtime_settle); a folder that cannot be read
turns its known files offline (tests/core/test_scanner.py, with a simulated PermissionError)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image
from PIL.GifImagePlugin import GifImageFile

from tests.core.library_fakes import Cli
from tests.faults.conftest import MODEL_ID
from tests.faults.hostile_files import BIG_JPEG_SIZE, many_frame_gif, photo_bytes, write_hostile_folder
from vsearch_app.cli.library_cmd import index_summary
from vsearch_app.core.engine.decode_worker import FAULTS_ENV
from vsearch_app.core.types import FileState, FolderInfo, LibraryStatus
from vsearch_app.errors import ImageDecodeError, InvalidArgumentError
from vsearch_app.preprocessing.image import open_image, to_rgb


def _rows(library, root):
    return {os.fspath(r.path): r for r in library.catalog.files_under(root)}


def test_every_hostile_file_ends_as_expected_and_the_rest_is_indexed(tmp_path, make_library, big_jpeg):
    root = tmp_path / "photos"
    cases = write_hostile_folder(root, tmp_path / "outside", big_jpeg=big_jpeg)
    library = make_library()
    library.add_folder(root)
    report = library.index()

    rows = _rows(library, root)
    listed = [c for c in cases if c.state is not None]
    for case in cases:
        row = rows.get(os.fspath(case.path))
        if case.state is None:
            assert row is None, f"{case.name}: should not be listed"
            continue
        assert row is not None, f"{case.name}: missing from the catalog"
        assert (row.state.value, row.fail_reason) == (case.state, case.reason), case.name
        if case.state == "indexed":
            assert library.catalog.get_embedding(case.path, MODEL_ID) is not None, case.name
    assert len(rows) == len(listed)  # nothing listed twice (the symlink loop), nothing else listed
    assert report.embedded == sum(c.state == "indexed" for c in listed)
    assert report.failed == sum(c.state == "failed" for c in listed)
    assert library.catalog.integrity_check() == "ok"
    again = library.index()
    assert (again.embedded, again.failed) == (0, 0)  # failures are not retried until the file changes


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak resident size from /proc")
def test_the_200_megapixel_jpeg_decodes_in_bounded_memory(big_jpeg):
    """A full decode holds the 200 MB of grey pixels (600 MB once RGB); the 1/8-scale draft about 10 MB. (The
    kernel's VmHWM, not ru_maxrss: a child's ru_maxrss starts at the peak of the parent, which wrote the file.)"""
    script = textwrap.dedent(f"""
        def peak():
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) * 1024
        from vsearch_app.preprocessing.image import open_image
        before = peak()
        image = open_image({os.fspath(big_jpeg)!r}, target_size=(224, 224))
        print(image.size[0], image.size[1], peak() - before)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    width, height, grown = (int(v) for v in out.stdout.split())
    assert (width, height) == (BIG_JPEG_SIZE[0] // 8, BIG_JPEG_SIZE[1] // 8)
    assert grown < 100 * 2**20, f"peak memory grew by {grown / 2**20:.0f} MB"


def test_a_jpeg_too_large_even_at_one_eighth_is_still_refused(tmp_path, monkeypatch):
    path = tmp_path / "wide.jpg"
    Image.new("L", (2048, 1024), 128).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # 1/8 scale leaves 32,768 pixels: still > 2x the limit
    with pytest.raises(ImageDecodeError) as caught:
        open_image(path, target_size=(32, 32))
    assert caught.value.reason == "image too large (possible decompression bomb)"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # now the drafted 256x128 is allowed
    assert open_image(path, target_size=(32, 32)).size == (256, 128)
    with pytest.raises(ImageDecodeError):  # without a target there is no draft: the limit applies to the full size
        open_image(path)


def test_a_ten_thousand_frame_gif_reads_frame_zero_only(tmp_path, monkeypatch):
    path = tmp_path / "frames.gif"
    path.write_bytes(many_frame_gif())
    seeks = []
    original = GifImageFile._seek
    monkeypatch.setattr(GifImageFile, "_seek", lambda self, frame, *a, **k: (seeks.append(frame),
                                                                             original(self, frame, *a, **k))[1])
    image = open_image(path, target_size=(224, 224))
    assert image.getpixel((0, 0)) == (255, 0, 0)  # frame 0 is red, every later one blue
    assert set(seeks) <= {0}
    with Image.open(path) as gif:
        assert gif.n_frames == 10_000  # the file really has them


def test_a_file_vanishing_between_scan_and_decode_stays_pending_then_goes(tmp_path, make_library):
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(3):
        (root / f"p{i}.jpg").write_bytes(photo_bytes(i))
    library = make_library()
    library.add_folder(root)
    library.reconcile()
    (root / "p1.jpg").unlink()
    report = library.index(reconcile=False)
    assert (report.embedded, report.failed, report.skipped) == (2, 0, 1)
    assert library.catalog.get_file(root / "p1.jpg").state is FileState.PENDING  # never "failed" for a missing file
    library.index()
    assert library.catalog.get_file(root / "p1.jpg") is None
    assert library.counts()["indexed"] == 2


def test_the_same_photo_under_two_roots_is_found_under_both(tmp_path, make_library):
    data = photo_bytes(7)
    first, second = tmp_path / "phone", tmp_path / "backup"
    for folder in (first, second):
        folder.mkdir()
        (folder / "IMG_0001.jpg").write_bytes(data)
    library = make_library()
    library.add_folder(first)
    library.add_folder(second)
    assert library.index().embedded == 2
    vectors = [library.catalog.get_embedding(f / "IMG_0001.jpg", MODEL_ID) for f in (first, second)]
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-5)  # one photo, two batches
    hits = library.search([os.fspath(first / "IMG_0001.jpg")], limit=5)
    assert {os.fspath(h.path) for h in hits[:2]} == {os.fspath(first / "IMG_0001.jpg"),
                                                      os.fspath(second / "IMG_0001.jpg")}


def test_a_root_inside_another_root_is_refused_and_an_outer_root_absorbs_an_inner_one(tmp_path, make_library):
    outer = tmp_path / "photos"
    inner = outer / "2024"
    inner.mkdir(parents=True)
    (outer / "a.jpg").write_bytes(photo_bytes(1))
    (inner / "b.jpg").write_bytes(photo_bytes(2))
    library = make_library()
    library.add_folder(inner)
    assert library.index().embedded == 1
    library.add_folder(outer)  # the inner root is merged into it: its photo keeps its vector
    assert [r.path for r in library.catalog.roots()] == [outer]
    assert library.index().embedded == 1  # a.jpg only
    assert library.indexer.embedded_total == 2
    assert library.counts()["indexed"] == 2
    with pytest.raises(InvalidArgumentError) as refused:
        library.add_folder(inner)
    assert str(refused.value) == f"{inner} is already watched as part of {outer}"
    assert library.index().embedded == 0


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads every folder, so a permission-denied folder cannot be made")
def test_a_permission_denied_folder_is_skipped_with_its_reason(tmp_path, make_library):
    root = tmp_path / "photos"
    locked = root / "locked"
    locked.mkdir(parents=True)
    (root / "open.jpg").write_bytes(photo_bytes(1))
    (locked / "secret.jpg").write_bytes(photo_bytes(2))
    locked.chmod(0)
    try:
        library = make_library()
        library.add_folder(root)
        report = library.index()
        assert report.embedded == 1
        assert (os.fspath(locked), "Permission denied") in report.unreadable
    finally:
        locked.chmod(0o755)


def test_an_unreadable_folder_is_named_in_the_index_report_and_by_the_cli(tmp_path, make_library, monkeypatch):
    """The same as above where chmod cannot stop the tests (root in CI): the denial is simulated at scandir, where a
    real one surfaces."""
    root = tmp_path / "photos"
    locked = root / "locked"
    locked.mkdir(parents=True)
    (root / "open.jpg").write_bytes(photo_bytes(1))
    (locked / "secret.jpg").write_bytes(photo_bytes(2))
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == os.fspath(locked):
            raise PermissionError(13, "Permission denied", os.fspath(locked))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    library = make_library()
    library.add_folder(root)
    report = library.index()
    assert report.embedded == 1
    assert report.unreadable == ((os.fspath(locked), "Permission denied"),)
    status = LibraryStatus(MODEL_ID, [FolderInfo(root, True)], library.counts(), [], None, 0)
    assert index_summary(report, status)[1:] == [f"skipped {locked}: permission denied (photos already indexed there "
                                                 "are kept)"]


@pytest.mark.slow
def test_the_cli_indexes_the_hostile_folder_and_a_crashing_decoder_with_one_line_per_failure(tmp_path,
                                                                                                tiny_siglip_dir):
    root = tmp_path / "photos"
    cases = write_hostile_folder(root, tmp_path / "outside")
    (root / "crashes-the-decoder.jpg").write_bytes(photo_bytes(40))
    cli = Cli(tmp_path, tiny_siglip_dir)
    cli.env[FAULTS_ENV] = '{"crashes-the-decoder.jpg": "segfault"}'
    cli.run("folders", "add", str(root))
    indexed = cli.run("index")
    failed = {c.path: c.reason for c in cases if c.state == "failed"}
    failed[root / "crashes-the-decoder.jpg"] = "decoder crashed"
    assert "could not be read" in indexed.stderr and "Traceback" not in indexed.stderr
    status = cli.run("status")
    assert "Traceback" not in status.stdout + status.stderr
    listed = status.stdout.split("failed:\n", 1)[1].split("index:", 1)[0].splitlines()
    assert sorted(listed) == sorted(f"  {path}: {reason}" for path, reason in failed.items())
    document = cli.json("status")
    assert document["counts"]["failed"] == len(failed)
    assert document["counts"]["indexed"] == sum(c.state == "indexed" for c in cases)
    query = tmp_path / "elsewhere" / "crashes-the-decoder.jpg"  # outside the library: embedded for the query
    query.parent.mkdir()
    query.write_bytes(photo_bytes(41))
    refused = cli.run("search", str(query), expect=2)
    said = [line for line in refused.stderr.splitlines() if line.startswith("vsearch:")]  # (INFO log lines aside)
    assert said == [f"vsearch: cannot use {query} as a query image: decoder crashed"]
    assert "WARNING" not in indexed.stderr + refused.stderr  # reasons are in the catalog, not on the terminal


def test_sixteen_bit_grey_is_converted_band_by_band_to_the_same_values():
    """Every 16-bit value maps as rint(v * 255 / 65535), now computed in integers, a band of rows at a time (a
    float64 copy of a 179-megapixel 16-bit image would need 1.4 GB)."""
    values = np.arange(65536, dtype=np.uint16).reshape(1024, 64)  # 1024 rows: two bands
    rgb = to_rgb(Image.fromarray(values))
    expected = np.clip(np.rint(values * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
    assert np.array_equal(np.asarray(rgb)[..., 0], expected)
    assert np.array_equal(np.asarray(rgb)[..., 2], expected)
