"""ResultsModel: the search hits of one query as a paged Qt list model, with thumbnails and drag-out data.

    model = ResultsModel(loader)                      # loader: gui.thumbs.loader.ThumbnailLoader, or None
    model.set_results(fetch, total)                   # fetch(offset, count) -> list[SearchHit]; a new query
    view.setModel(model)                              # the view reports visible rows: model.set_visible_range(a, b)

The model uses the loader but does not own it: whoever made the loader calls ``loader.shutdown()`` on close.

- Paged: ``set_results`` loads the first PAGE_SIZE hits; the view's canFetchMore/fetchMore asks for the next page when
  it scrolls near the end, so 100,000 hits never become 100,000 rows at once (the engine looks each page up in SQLite).
  ``fetch`` runs in the GUI thread and must be a quick page lookup; the query itself runs on the query lane.
- Roles: Display/NAME_ROLE (file name), ToolTip (path, score, taken/modified date, pixel and file size, caption,
  offline, a thumbnail failure), PATH_ROLE (Path),
  SCORE_ROLE (float), Decoration/THUMBNAIL_ROLE (QPixmap, a null one until the loader delivers; asking for it
  requests it), THUMBNAIL_FAILURE_ROLE (str, "" when none), HIT_ROLE (the SearchHit), GOOD_MATCH_ROLE (bool),
  CAPTION_MATCHED_ROLE (bool: the stored caption matched the query's words; the tooltip then says so beside the
  caption). The roles a delegate reads never return None for a valid index: PySide6 6.12 drops a reference to None
  each time index.data() returns it (see gui.qtfix, which makes that harmless); painting stays clear of it anyway.
- SearchHit today is (path, score); fields added later (caption, online, ...) are read with getattr defaults.
- Drag out: file URLs (any file manager or app), the paths as text, and MIME_TYPE with the exact paths (os.fsencode
  bytes, NUL-separated: no file name is lost to an encoding) for drops inside VSearch; ``paths_from_mime_data``
  reads either. Copy only: a file manager must never move a photo out of the user's library.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from urllib.parse import quote_from_bytes, unquote_to_bytes

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import QPixmap

from vsearch_app.core.types import SearchHit
from vsearch_app.errors import VSearchError
from vsearch_app.gui import formatting
from vsearch_app.gui.thumbs.loader import ThumbnailLoader

log = logging.getLogger(__name__)

PageSource = Callable[[int, int], Sequence[SearchHit]]

PAGE_SIZE = 1000
MIME_TYPE = "application/x-vsearch-paths"

_USER = int(Qt.ItemDataRole.UserRole)
PATH_ROLE = _USER + 1
SCORE_ROLE = _USER + 2
NAME_ROLE = _USER + 3
THUMBNAIL_ROLE = _USER + 4
THUMBNAIL_FAILURE_ROLE = _USER + 5
HIT_ROLE = _USER + 6
GOOD_MATCH_ROLE = _USER + 7  # bool: above the query's calibrated good-match cut (SearchHit.good_match)
CAPTION_MATCHED_ROLE = _USER + 8  # bool: the query's words matched the photo's stored caption (it was raised)

SCREENS_IN_MEMORY = 4  # visible + one screen either side, and some slack for scrolling back
MIN_MEMORY_ITEMS = 100

_AnyIndex = QModelIndex | QPersistentModelIndex


class ResultsModel(QAbstractListModel):
    """Hits of the current query, loaded a page at a time; thumbnails come from the loader as they are ready."""

    fetchFailed = Signal(str)  # a page could not be loaded (the message says why); the rows so far stay

    def __init__(self, loader: ThumbnailLoader | None = None, *, page_size: int = PAGE_SIZE,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._loader = loader
        self._page_size = max(1, page_size)
        self._fetch: PageSource | None = None
        self._total = 0
        self._hits: list[SearchHit] = []
        self._rows_by_path: dict[Path, int] = {}
        self._no_pixmap = QPixmap()  # what THUMBNAIL_ROLE gives until the loader delivers (never None, see above)
        if loader is not None:
            loader.thumbnailReady.connect(self._on_thumbnail_ready)
            loader.thumbnailFailed.connect(self._on_thumbnail_failed)

    # --- the query ------------------------------------------------------------------------------------------------

    @property
    def loader(self) -> ThumbnailLoader | None:
        return self._loader

    @property
    def total(self) -> int:
        """How many hits the query has (rows loaded so far: rowCount)."""
        return self._total

    def set_results(self, fetch: PageSource, total: int) -> None:
        """Show a new query's hits: ``total`` of them, read through ``fetch(offset, count)`` a page at a time."""
        self.beginResetModel()
        self._fetch = fetch
        self._total = max(0, int(total))
        self._hits = []
        self._rows_by_path = {}
        if self._loader is not None:
            self._loader.new_generation()
        self._append(self._read_page())
        self.endResetModel()

    def clear(self) -> None:
        self.beginResetModel()
        self._fetch = None
        self._total = 0
        self._hits = []
        self._rows_by_path = {}
        if self._loader is not None:
            self._loader.new_generation()
        self.endResetModel()

    def hit(self, row: int) -> SearchHit:
        return self._hits[row]

    def row_of(self, path: Path) -> int | None:
        return self._rows_by_path.get(path)

    def paths(self, indexes: Iterable[_AnyIndex]) -> list[Path]:
        """The paths of ``indexes`` in row order, each once."""
        rows = sorted({i.row() for i in indexes if i.isValid() and 0 <= i.row() < len(self._hits)})
        return [self._hits[row].path for row in rows]

    def set_visible_range(self, first: int, last: int) -> None:
        """The view shows rows ``first..last``: load their thumbnails first, then one screen after and one before,
        and keep about SCREENS_IN_MEMORY screens of pixmaps in memory."""
        if self._loader is None or not self._hits:
            return
        first = max(0, min(first, len(self._hits) - 1))
        last = max(first, min(last, len(self._hits) - 1))
        screen = last - first + 1
        rows = [*range(first, last + 1), *range(last + 1, min(len(self._hits), last + 1 + screen)),
                *range(first - 1, max(-1, first - 1 - screen), -1)]
        self._loader.set_memory_items(max(MIN_MEMORY_ITEMS, SCREENS_IN_MEMORY * screen))
        self._loader.prioritize(self._hits[row].path for row in rows)

    # --- Qt model API ---------------------------------------------------------------------------------------------

    def rowCount(self, parent: _AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._hits)

    def canFetchMore(self, parent: _AnyIndex) -> bool:
        return not parent.isValid() and self._fetch is not None and len(self._hits) < self._total

    def fetchMore(self, parent: _AnyIndex) -> None:
        if not self.canFetchMore(parent):
            return
        self._append(self._read_page(), notify=True)

    def data(self, index: _AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._hits):
            return None
        hit = self._hits[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, NAME_ROLE):
            return hit.path.name or str(hit.path)
        if role in (Qt.ItemDataRole.DecorationRole, THUMBNAIL_ROLE):
            return self._thumbnail(hit.path)
        if role == SCORE_ROLE:
            return float(hit.score)
        if role == PATH_ROLE:
            return hit.path
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(hit)
        if role == THUMBNAIL_FAILURE_ROLE:
            return (self._loader.failure(hit.path) if self._loader is not None else None) or ""
        if role == HIT_ROLE:
            return hit
        if role == GOOD_MATCH_ROLE:
            return bool(getattr(hit, "good_match", False))
        if role == CAPTION_MATCHED_ROLE:
            return bool(getattr(hit, "caption_matched", False))
        return None

    def flags(self, index: _AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled

    def mimeTypes(self) -> list[str]:
        return [MIME_TYPE, "text/uri-list", "text/plain"]

    def mimeData(self, indexes: Sequence[_AnyIndex]) -> QMimeData:
        return paths_to_mime_data(self.paths(indexes))

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.IgnoreAction  # the grid is not a drop target; the window takes drops

    # --- internals ------------------------------------------------------------------------------------------------

    def _read_page(self) -> list[SearchHit]:
        if self._fetch is None:
            return []
        offset = len(self._hits)
        count = min(self._page_size, self._total - offset)
        if count <= 0:
            return []
        try:
            page = list(self._fetch(offset, count))
        except VSearchError as exc:
            log.warning("loading results %d-%d failed: %s", offset, offset + count, exc)
            self._total = offset  # stop asking; the rows loaded so far stay usable
            self.fetchFailed.emit(str(exc))
            return []
        if len(page) < count:  # the source has fewer hits than it said (photos removed meanwhile): stop there
            self._total = offset + len(page)
        return page[:count]

    def _append(self, page: list[SearchHit], *, notify: bool = False) -> None:
        if not page:
            return
        first = len(self._hits)
        if notify:
            self.beginInsertRows(QModelIndex(), first, first + len(page) - 1)
        self._hits.extend(page)
        for row, hit in enumerate(page, start=first):
            self._rows_by_path.setdefault(hit.path, row)
        if notify:
            self.endInsertRows()

    def _thumbnail(self, path: Path) -> QPixmap:
        if self._loader is None:
            return self._no_pixmap
        pixmap = self._loader.pixmap(path)
        if pixmap is not None:
            return pixmap
        if self._loader.failure(path) is None:
            self._loader.request(path)  # asked for because the row is being painted: it is on screen
        return self._no_pixmap

    def _tooltip(self, hit: SearchHit) -> str:
        """Path, score, when it was taken (EXIF) or last modified (file time), pixel size, file size, caption."""
        lines = [str(hit.path), f"Score {hit.score:.3f}" + (" · a good match" if getattr(hit, "good_match", False)
                                                           else "")]
        taken = getattr(hit, "taken_at", None)
        if taken:
            when = str(taken).replace("T", " ")[:16]
            lines.append(f"{'Modified' if getattr(hit, 'taken_at_source', None) == 'mtime' else 'Taken'} {when}")
        width, height, size = getattr(hit, "width", None), getattr(hit, "height", None), getattr(hit, "size", 0)
        details = [f"{width:,} × {height:,} pixels" if width and height else "", formatting.size(size) if size else ""]
        if any(details):
            lines.append(" · ".join(d for d in details if d))
        caption = getattr(hit, "caption", None)
        if caption and getattr(hit, "caption_matched", False):
            lines.append(f"Caption matches your words: “{caption}”")
        elif caption:
            lines.append(f"“{caption}”")
        if getattr(hit, "online", True) is False:
            lines.append("Offline: its folder is not reachable now")
        failure = self._loader.failure(hit.path) if self._loader is not None else None
        if failure:
            lines.append(f"No preview: {failure}")
        return "\n".join(lines)

    def _on_thumbnail_ready(self, path: Path) -> None:
        self._row_changed(path, [Qt.ItemDataRole.DecorationRole, THUMBNAIL_ROLE])

    def _on_thumbnail_failed(self, path: Path, _reason: str) -> None:
        self._row_changed(path, [Qt.ItemDataRole.DecorationRole, THUMBNAIL_ROLE, THUMBNAIL_FAILURE_ROLE,
                                 Qt.ItemDataRole.ToolTipRole])

    def _row_changed(self, path: Path, roles: list) -> None:
        row = self._rows_by_path.get(path)
        if row is not None:
            index = self.index(row, 0)
            self.dataChanged.emit(index, index, roles)


# --- drag data ------------------------------------------------------------------------------------------------------


def paths_to_mime_data(paths: Sequence[Path]) -> QMimeData:
    """Drag data for photos: file URLs, the paths as text lines, and MIME_TYPE with the exact paths."""
    mime = QMimeData()
    mime.setUrls([file_url(path) for path in paths])
    mime.setText("\n".join(_display(path) for path in paths))
    mime.setData(MIME_TYPE, QByteArray(b"\0".join(os.fsencode(path) for path in paths)))
    return mime


def paths_from_mime_data(mime: QMimeData) -> list[Path]:
    """The photos a drop carries: VSearch's own exact paths when present, else its local file URLs."""
    if mime.hasFormat(MIME_TYPE):
        raw = bytes(mime.data(MIME_TYPE).data())
        return [Path(os.fsdecode(part)) for part in raw.split(b"\0") if part]
    return [_path_of_url(url) for url in mime.urls() if url.isLocalFile()]


def file_url(path: Path) -> QUrl:
    """A file:// URL for ``path``. A POSIX name that is not UTF-8 is percent-encoded byte by byte, as file managers
    do: QUrl.fromLocalFile would silently drop its undecodable bytes and name a different file."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return QUrl.fromEncoded(QByteArray(b"file://" + quote_from_bytes(os.fsencode(path)).encode("ascii")))
    return QUrl.fromLocalFile(text)


def _path_of_url(url: QUrl) -> Path:
    local = url.toLocalFile()
    if "\ufffd" in local and os.name == "posix":  # percent-encoded bytes that are not UTF-8: keep them exactly
        return Path(os.fsdecode(unquote_to_bytes(bytes(url.toEncoded(QUrl.ComponentFormattingOption.FullyEncoded))
                                                 .removeprefix(b"file://"))))
    return Path(local)


def _display(path: Path) -> str:
    return str(path).encode("utf-8", "replace").decode("utf-8")  # text is for people; MIME_TYPE keeps the bytes
