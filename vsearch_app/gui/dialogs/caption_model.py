"""The caption model is missing: the model dialog (dialogs/first_run.py) in its caption form.

PaliGemma is gated, so the dialog explains the licence page and the access token before it offers the download;
"Choose a Model Folder…" takes a local checkpoint instead, which the library session uses at once
(``controller.use_caption_model``) and the Settings keep for the next runs (``Preferences.caption_model``).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from vsearch_app.gui.dialogs.first_run import ModelDialog

log = logging.getLogger(__name__)


def is_gated(model: str) -> bool:
    """PaliGemma checkpoints on the hub need the licence accepted and a token (a local folder never does)."""
    return "paligemma" in model.lower() and not Path(model).expanduser().exists()


def open_caption_model_dialog(controller, preferences, parent: QWidget | None = None) -> ModelDialog:
    """Show the dialog (non-modal, deleted on close) for ``controller.settings.caption_model`` and return it.
    ``preferences`` (a PreferencesStore, or None) receives a chosen folder."""
    model = controller.settings.caption_model
    dialog = ModelDialog(model, controller.model_download(model), gated=is_gated(model), purpose="caption",
                         parent=parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def ready(folder: object) -> None:
        path = Path(folder) if isinstance(folder, (str, Path)) else None
        hub = Path(controller.settings.hub_cache_dir).resolve()
        if path is None or path.resolve().is_relative_to(hub):
            return  # downloaded under its own id: the next caption finds it
        controller.use_caption_model(path)
        if preferences is not None:
            prefs = preferences.load()
            preferences.save(dataclasses.replace(prefs, caption_model=str(path)))
            log.info("caption model set to %s", path)

    dialog.modelReady.connect(ready)
    dialog.open()
    return dialog
