"""The filter bar and the Duplicates window against the real LibraryService (tiny random SigLIP): photos with EXIF
dates and cameras are indexed, the histogram and camera list come from the catalog, a month range and a camera
filter the grid (with a query and without: browse by date), and the Duplicates window finds a byte-identical copy
and lists it under its original, touching no file."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication

from tests.gui.photos import landscape
from tests.gui.window_helpers import result_paths, wait_indexed, window_settings
from vsearch_app.core.types import QueryTerm, SortOrder

# (name, DateTimeOriginal, make, model)
SHOTS = [
    ("beach.jpg", "2019:06:01 10:00:00", "Google", "Pixel 7"),
    ("dunes.jpg", "2019:08:15 18:30:00", "Google", "Pixel 7"),
    ("snow.jpg", "2020:01:04 09:00:00", "Canon", "Canon EOS 80D"),
    ("lake.jpg", "2021:07:20 12:00:00", "Google", "Pixel 7"),
    ("forest.jpg", "2021:09:02 16:45:00", "Canon", "Canon EOS 80D"),
]


def _write(path: Path, seed: int, taken: str, make: str, model: str) -> Path:
    image = landscape(seed, 160, 120)
    exif = image.getexif()
    exif[0x010F], exif[0x0110] = make, model
    exif.get_ifd(0x8769)[0x9003] = taken  # DateTimeOriginal
    image.save(path, "JPEG", quality=90, exif=exif)
    return path


@pytest.fixture
def library(tmp_path):
    folder = tmp_path / "Trips"
    folder.mkdir()
    paths = {name: _write(folder / name, i + 3, taken, make, model)
             for i, (name, taken, make, model) in enumerate(SHOTS)}
    copy = folder / "beach copy.jpg"  # byte-identical: a certain duplicate
    shutil.copyfile(paths["beach.jpg"], copy)
    paths[copy.name] = copy
    return paths


def _hashes(paths) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_filters_and_duplicates_on_the_real_library(qtbot, windows, tmp_path, tiny_siglip_dir, library):
    before = _hashes(library.values())
    window = windows.open(window_settings(tmp_path, tiny_siglip_dir))
    window.controller.add_folder(next(iter(library.values())).parent)
    wait_indexed(qtbot, window, len(library))
    bar = window.filter_bar
    qtbot.waitUntil(lambda: bar.histogram.total == len(library), timeout=30_000)
    assert {b.first // 12 for b in bar.histogram.bins() if b.count} == {2019, 2020, 2021}
    cameras = [bar.camera_combo.itemData(i) for i in range(1, bar.camera_combo.count())]
    assert cameras == ["Google Pixel 7", "Canon EOS 80D"]  # most photos first

    # Browse: no query, photos from 2019, newest first.
    bar.choose_month_range("2019-01", "2019-12")
    qtbot.waitUntil(lambda: not window._searching and window.results_model.total == 3, timeout=30_000)
    assert result_paths(window)[0] == library["dunes.jpg"]
    assert set(result_paths(window)) == {library["beach.jpg"], library["beach copy.jpg"], library["dunes.jpg"]}
    assert window.filter_pill.text() == "Filtered: 2019"

    # A query inside a camera filter, by date.
    bar.clear()
    bar.choose_camera("Canon EOS 80D")
    bar.choose_sort(SortOrder.DATE)
    window.query_bar.model.replace_all([QueryTerm("text", "trees")])
    qtbot.waitUntil(lambda: not window._searching and window.results_model.total == 2
                    and window.terms == [QueryTerm("text", "trees")], timeout=30_000)
    assert result_paths(window) == [library["forest.jpg"], library["snow.jpg"]]

    # Duplicates: the copy is grouped with the original; Copy List names only the non-keeper.
    view = window.show_duplicates()
    qtbot.waitUntil(lambda: view.state in ("done", "failed"), timeout=60_000)
    assert view.state == "done", view.summary.text()
    exact = [card for card in view.cards if card.group.kind == "exact"]
    assert len(exact) == 1
    members = [m.path for m in exact[0].group.members]
    assert sorted(members) == sorted([library["beach.jpg"], library["beach copy.jpg"]])
    QGuiApplication.clipboard().clear()
    exact[0].copy_button.click()
    assert QGuiApplication.clipboard().text() == str(members[1])
    assert _hashes(library.values()) == before  # nothing deleted or changed
