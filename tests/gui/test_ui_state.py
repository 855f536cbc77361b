"""UiState: what the window remembers, in an INI file at a path the caller (or a test) chooses."""

from __future__ import annotations

from PySide6.QtCore import QByteArray

from vsearch_app.core.types import QueryTerm
from vsearch_app.gui.ui_state import UiState, ui_state_path
from vsearch_app.settings import AppSettings


def test_values_round_trip_through_the_file(qapp, tmp_path):
    photo = tmp_path / "beach.jpg"
    photo.write_bytes(b"jpeg")
    path = tmp_path / "state" / "ui.ini"
    state = UiState(path)
    state.set_geometry(QByteArray(b"\x01\x02geometry"))
    state.set_splitter(QByteArray(b"split"))
    state.set_thumbnail_size(200)
    state.set_last_query([QueryTerm("text", "sunset", 1.5), QueryTerm("image", str(photo), -1.0)])
    state.sync()
    assert path.is_file()
    again = UiState(path)
    assert again.geometry() == QByteArray(b"\x01\x02geometry")
    assert again.splitter() == QByteArray(b"split")
    assert again.thumbnail_size(160) == 200
    assert again.last_query() == [QueryTerm("text", "sunset", 1.5), QueryTerm("image", str(photo), -1.0)]


def test_a_fresh_file_gives_defaults(qapp, tmp_path):
    state = UiState(tmp_path / "none.ini")
    assert state.geometry() is None and state.splitter() is None
    assert state.thumbnail_size(160) == 160
    assert state.last_query() == []


def test_photos_that_are_gone_and_garbage_are_left_out(qapp, tmp_path):
    state = UiState(tmp_path / "ui.ini")
    state.set_last_query([QueryTerm("image", str(tmp_path / "deleted.jpg")), QueryTerm("text", "dog")])
    assert state.last_query() == [QueryTerm("text", "dog")]
    state._qs.setValue("query/last", "not json [")
    state._qs.setValue("results/thumbnail_size", "big")
    assert state.last_query() == []
    assert state.thumbnail_size(160) == 160


def test_the_app_keeps_it_in_the_data_folder(tmp_path):
    settings = AppSettings.resolve(tmp_path / "lib")
    assert ui_state_path(settings) == settings.data_dir / "ui-state.ini"
