"""The window tells the user when opening the library found its catalog damaged and restored it (issue 15):
LibraryStatus.catalog_notice, shown once in a message box."""

from __future__ import annotations

from tests.faults import harness
from tests.gui.window_helpers import window_settings
from vsearch_app.core.store.catalog import CATALOG_FILENAME


def test_a_restored_catalog_is_said_in_a_message_box(qtbot, windows, tmp_path, tiny_siglip_dir):
    root, data = tmp_path / "photos", tmp_path / "data"
    for i in range(3):
        harness.make_photo(root / f"p{i}.png", i)
    library = harness.open_library(data)
    library.add_folder(root)
    library.index()
    library.close()
    (data / CATALOG_FILENAME).write_bytes(b"")  # emptied by a crashed sync tool, say
    window = windows.open(window_settings(tmp_path, tiny_siglip_dir, data))
    qtbot.waitUntil(lambda: window.catalog_notice_box is not None and window.catalog_notice_box.isVisible(),
                    timeout=60_000)
    box = window.catalog_notice_box
    assert box.text().startswith("The catalog was damaged (the file is empty) and was put aside as catalog.sqlite3.")
    assert "restored its backup from " in box.text()
    box.grab().save(str(tmp_path / "catalog-notice.png"))
    box.accept()
    with qtbot.waitSignal(window.controller.statusChanged, timeout=30_000):  # another status, the notice in it
        window.controller.refresh_status()
    assert window.catalog_notice_box is box and not box.isVisible()  # said once, not again with the next status
