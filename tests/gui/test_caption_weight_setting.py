"""The caption-match weight in the Settings dialog (issue 13): the library's own setting, shown, changed, and the
results searched again with it."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.gui.photos import write_photos
from tests.gui.window_helpers import type_query, wait_first_result, wait_indexed, wait_results, window_settings
from vsearch_app.core.store import captions
from vsearch_app.core.store.catalog import CATALOG_FILENAME, Catalog
from vsearch_app.core.types import DEFAULT_CAPTION_WEIGHT, CaptionResult
from vsearch_app.gui.dialogs.settings import SettingsDialog
from vsearch_app.gui.settings_model import Preferences


def test_the_dialog_shows_the_weight_and_disables_it_while_unknown(qtbot, tmp_path):
    dialog = SettingsDialog(Preferences(), data_dir=tmp_path)
    qtbot.addWidget(dialog)
    assert not dialog.caption_weight_box.isEnabled() and dialog.caption_weight() is None
    assert "once the library is open" in dialog._caption_note.text()
    dialog.set_caption_weight(2.5)
    assert dialog.caption_weight_box.isEnabled() and dialog.caption_weight() == 2.5
    assert "Off: captions do not count" in dialog._caption_note.text()
    dialog.caption_weight_box.setValue(0)
    assert dialog.caption_weight_box.text() == "Off" and dialog.caption_weight() == 0.0
    dialog.restore_defaults()
    assert dialog.caption_weight() == DEFAULT_CAPTION_WEIGHT
    dialog.caption_weight_box.setValue(99)
    assert dialog.caption_weight() == 10.0  # the field stops at the engine's maximum


def test_changing_the_weight_stores_it_in_the_library_and_searches_again(qtbot, windows, tmp_path, tiny_siglip_dir):
    photos = write_photos(tmp_path / "Holidays", 12)
    settings = window_settings(tmp_path, tiny_siglip_dir)
    window = windows.open(settings)
    window.controller.add_folder(photos[0].parent)
    wait_indexed(qtbot, window, len(photos))
    qtbot.waitUntil(lambda: window.controller.caption_weight == DEFAULT_CAPTION_WEIGHT, timeout=10_000)
    type_query(qtbot, window, "zorblax")
    ranked = wait_results(qtbot, window)
    target = ranked[-1]
    with Catalog.open(settings.data_dir / CATALOG_FILENAME) as cat:  # as the Describe panel would have stored it
        captions.save(cat, captions.find_photo(cat, target), CaptionResult("Zorblax by the lake", "caption en", "pg",
                                                                           "stop_token", token_count=4))

    qtbot.keyClick(window, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)  # Ctrl+,
    dialog = window.settings_dialog
    assert dialog.caption_weight() == DEFAULT_CAPTION_WEIGHT
    dialog.caption_weight_box.setValue(10)
    dialog.accept()
    wait_first_result(qtbot, window, target)  # searched again with the new weight
    hit = window.results_model.hit(0)
    assert hit.caption_matched and hit.caption == "Zorblax by the lake"
    assert window.controller.caption_weight == 10.0
    with Catalog.open(settings.data_dir / CATALOG_FILENAME) as cat:
        assert cat.get_setting("caption_weight") == "10.0"  # what `vsearch config show` reads

    qtbot.waitUntil(lambda: window.settings_dialog is None)  # the first dialog is gone (deleted on close)
    dialog = window.open_settings()
    assert dialog.caption_weight() == 10.0
    dialog.caption_weight_box.setValue(0)
    dialog.accept()
    qtbot.waitUntil(lambda: window.controller.caption_weight == 0.0, timeout=10_000)
    qtbot.waitUntil(lambda: not window._searching and window.results_model.rowCount() == 12
                    and window.results_model.hit(11).path == target, timeout=30_000)
    assert not any(window.results_model.hit(row).caption_matched for row in range(12))
