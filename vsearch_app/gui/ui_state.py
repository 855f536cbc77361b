"""What the window remembers between runs (QSettings): geometry, the sidebar split, the thumbnail size, the last
query, the Describe dock (open or not, and where), whether the filter bar is shown and the results' sort order.
Nothing the engine needs lives here.

The file is an INI at a path the caller chooses; the app keeps it in the data folder (``ui_state_path``), so each
library remembers its own last query and tests never touch the user's settings.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from vsearch_app.core.types import QueryTerm, SortOrder
from vsearch_app.settings import AppSettings

log = logging.getLogger(__name__)

FILE_NAME = "ui-state.ini"


def ui_state_path(settings: AppSettings) -> Path:
    return settings.data_dir / FILE_NAME


class UiState:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)

    # --- window -------------------------------------------------------------------------------------------------

    def geometry(self) -> QByteArray | None:
        return self._bytes("window/geometry")

    def set_geometry(self, value: QByteArray) -> None:
        self._qs.setValue("window/geometry", value)

    def splitter(self) -> QByteArray | None:
        return self._bytes("window/splitter")

    def set_splitter(self, value: QByteArray) -> None:
        self._qs.setValue("window/splitter", value)

    def window_state(self) -> QByteArray | None:
        """QMainWindow.saveState: where the docks (Describe) sit."""
        return self._bytes("window/state")

    def set_window_state(self, value: QByteArray) -> None:
        self._qs.setValue("window/state", value)

    def describe_visible(self) -> bool:
        return str(self._qs.value("describe/visible", "false")).lower() == "true"

    def set_describe_visible(self, visible: bool) -> None:
        self._qs.setValue("describe/visible", "true" if visible else "false")

    def thumbnail_size(self, default: int) -> int:
        try:
            return int(self._qs.value("results/thumbnail_size", default))
        except (TypeError, ValueError):
            return default

    def set_thumbnail_size(self, size: int) -> None:
        self._qs.setValue("results/thumbnail_size", int(size))

    # --- filter bar ---------------------------------------------------------------------------------------------

    def filters_visible(self) -> bool:
        return str(self._qs.value("filters/visible", "false")).lower() in ("true", "1")

    def set_filters_visible(self, visible: bool) -> None:
        self._qs.setValue("filters/visible", bool(visible))

    def sort(self) -> SortOrder:
        """The results' order; best match when none was kept (or an unknown one)."""
        try:
            return SortOrder(str(self._qs.value("results/sort", SortOrder.SCORE.value)))
        except ValueError:
            return SortOrder.SCORE

    def set_sort(self, order: SortOrder) -> None:
        self._qs.setValue("results/sort", SortOrder(order).value)

    # --- query --------------------------------------------------------------------------------------------------

    def last_query(self) -> list[QueryTerm]:
        """The terms of the last query (image terms whose file is gone are left out); [] when none or unreadable."""
        raw = self._qs.value("query/last", "")
        if not raw:
            return []
        try:
            terms = [QueryTerm(str(kind), str(value), float(weight)) for kind, value, weight in json.loads(raw)]
        except (ValueError, TypeError) as exc:
            log.debug("ignoring an unreadable last query in %s: %s", self.path, exc)
            return []
        return [t for t in terms if t.kind in ("text", "image") and t.value.strip() and t.weight
                and (t.kind == "text" or Path(t.value).is_file())]

    def set_last_query(self, terms: list[QueryTerm]) -> None:
        self._qs.setValue("query/last", json.dumps([[t.kind, t.value, t.weight] for t in terms]))

    def sync(self) -> None:
        self._qs.sync()

    def _bytes(self, key: str) -> QByteArray | None:
        value = self._qs.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None
