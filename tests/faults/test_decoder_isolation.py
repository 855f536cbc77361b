"""A decoder that crashes the process or hangs on one file costs that file, never the run (core/engine/decode_pool.py).

The faults are real: the worker reads address 0 (SIGSEGV), calls abort(), sleeps forever or allocates without
end on the files ``VSEARCH_TEST_DECODER_FAULTS`` names (core/engine/decode_worker.py)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from tests.faults.hostile_files import photo_bytes
from vsearch_app.core.engine import decode_pool
from vsearch_app.core.engine.decode_pool import CRASHED, IsolatedDecoder, too_slow
from vsearch_app.core.engine.decode_worker import FAULTS_ENV
from vsearch_app.core.types import FileState
from vsearch_app.errors import ImageDecodeError
from vsearch_app.preprocessing.image import ImageTransform, open_image


def _faults(monkeypatch, **faults: str) -> None:
    monkeypatch.setenv(FAULTS_ENV, json.dumps({f"{name}.jpg": fault for name, fault in faults.items()}))


def _folder(root, names):
    root.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(names):
        (root / f"{name}.jpg").write_bytes(photo_bytes(seed))
    return root


def _reason(decoder, path):
    with pytest.raises(ImageDecodeError) as caught:
        decoder.decode(path)
    return caught.value.reason


def test_isolated_pixels_equal_in_process_pixels(tmp_path):
    transform = ImageTransform(size=(32, 32))
    path = _folder(tmp_path, ["a"]) / "a.jpg"
    with IsolatedDecoder(transform) as decoder:
        isolated = decoder.decode(path)
    np.testing.assert_array_equal(isolated, transform.to_array(open_image(path, target_size=(32, 32))))


def test_crash_hang_and_memory_fail_one_file_each_and_workers_are_replaced(tmp_path, monkeypatch):
    _faults(monkeypatch, segv="segfault", abrt="abort", hang="hang", hog="memory")
    folder = _folder(tmp_path, ["ok1", "segv", "ok2", "abrt", "hang", "hog", "ok3"])
    with IsolatedDecoder(ImageTransform(size=(32, 32)), workers=1, time_limit_s=2.0,
                         memory_budget_bytes=256 * 2**20) as decoder:
        assert decoder.decode(folder / "ok1.jpg").shape == (3, 32, 32)
        assert _reason(decoder, folder / "segv.jpg") == CRASHED
        assert decoder.decode(folder / "ok2.jpg").shape == (3, 32, 32)
        assert _reason(decoder, folder / "abrt.jpg") == CRASHED
        assert _reason(decoder, folder / "hang.jpg") == too_slow(2.0) == "took longer than 2 s"
        assert _reason(decoder, folder / "hog.jpg") == "needs more than 0.25 GiB of memory to decode"
        assert decoder.decode(folder / "ok3.jpg").shape == (3, 32, 32)
        # One worker for the first file, and one after each of the four that ended: three killed, and the one
        # that ran out of memory (a heap that ran out once is not trusted with the next file).
        assert decoder.started == 5


def test_ordinary_failures_keep_their_reasons_and_the_worker(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with IsolatedDecoder(ImageTransform(size=(32, 32)), workers=1) as decoder:
        assert _reason(decoder, tmp_path / "empty.jpg") == "empty file"
        assert _reason(decoder, tmp_path / "missing.jpg") == "file not found"
        assert decoder.started == 1


def test_workers_are_reused_across_threads_and_closed(tmp_path):
    folder = _folder(tmp_path, [f"p{i}" for i in range(12)])
    decoder = IsolatedDecoder(ImageTransform(size=(32, 32)), workers=2)
    results, errors = [], []

    def work(names):
        try:
            results.extend(decoder.decode(folder / f"{n}.jpg").shape for n in names)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=([f"p{i}" for i in range(k, 12, 2)],)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    processes = [w.process for w in decoder._idle]
    decoder.close()
    assert not errors and results == [(3, 32, 32)] * 12
    assert decoder.started <= 2
    assert processes and not any(p.is_alive() for p in processes)


def test_indexing_survives_a_crashing_and_a_hanging_decoder(tmp_path, monkeypatch, make_library):
    _faults(monkeypatch, crash="segfault", stuck="hang")
    names = [f"photo-{i}" for i in range(10)] + ["crash", "stuck"]
    root = _folder(tmp_path / "photos", names)
    library = make_library(time_limit_s=3.0)
    library.add_folder(root)
    report = library.index()
    assert (report.embedded, report.failed) == (10, 2)
    assert library.catalog.get_file(root / "crash.jpg").fail_reason == "decoder crashed"
    assert library.catalog.get_file(root / "stuck.jpg").fail_reason == "took longer than 3 s"
    for name in names[:10]:
        assert library.catalog.get_file(root / f"{name}.jpg").state is FileState.INDEXED
    assert library.counts() == {"indexed": 10, "failed": 2, "offline": 0, "pending": 0}
    again = library.index()  # failed files are not retried until they change
    assert (again.embedded, again.failed) == (0, 0)


def test_running_out_of_memory_in_a_worker_that_decoded_others_is_retried_once_in_a_fresh_one(tmp_path, monkeypatch):
    _faults(monkeypatch, hog="memory")
    folder = _folder(tmp_path, ["ok", "hog"])
    with IsolatedDecoder(ImageTransform(size=(32, 32)), workers=1, memory_budget_bytes=256 * 2**20) as decoder:
        decoder.decode(folder / "ok.jpg")
        assert _reason(decoder, folder / "hog.jpg") == "needs more than 0.25 GiB of memory to decode"
        assert decoder.started == 2  # the first worker, then a fresh one for the retry


def test_workers_are_recycled_after_a_number_of_files(tmp_path):
    folder = _folder(tmp_path, [f"p{i}" for i in range(5)])
    with IsolatedDecoder(ImageTransform(size=(32, 32)), workers=1, recycle_after=2) as decoder:
        for i in range(5):
            decoder.decode(folder / f"p{i}.jpg")
        assert decoder.started == 3


def test_when_workers_cannot_start_photos_are_decoded_in_process_not_failed(tmp_path, monkeypatch, caplog):
    class NoProcesses:
        def __init__(self, *args, **kwargs):
            raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(decode_pool, "_Worker", NoProcesses)
    transform = ImageTransform(size=(32, 32))
    folder = _folder(tmp_path, ["a", "b"])
    with IsolatedDecoder(transform) as decoder:
        pixels = [decoder.decode(folder / f"{n}.jpg") for n in ("a", "b")]
        assert decoder.in_process and decoder.started == 0
    for name, got in zip(("a", "b"), pixels, strict=True):
        np.testing.assert_array_equal(got, transform.to_array(open_image(folder / f"{name}.jpg", target_size=(32, 32))))
    assert "decoder worker processes cannot start" in caplog.text


def test_a_worker_that_dies_before_it_is_ready_blames_no_photo(tmp_path, monkeypatch):
    """A worker that is not ready in time is the machine's problem, not the photo's: the photo is decoded here."""
    monkeypatch.setattr(decode_pool, "START_TIMEOUT_S", 0.0)  # no worker is ready in no time
    transform = ImageTransform(size=(32, 32))
    folder = _folder(tmp_path, ["a"])
    with IsolatedDecoder(transform) as decoder:
        assert decoder.decode(folder / "a.jpg").shape == (3, 32, 32)
        assert decoder.in_process
