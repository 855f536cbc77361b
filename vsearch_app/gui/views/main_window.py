"""The main window: the search field on top, the results grid in the middle, watched folders on the left, indexing
status at the bottom. It talks to the engine only through the EngineController.

- Search as you type: the QueryBar debounces typing and emits the query; the controller runs it on the query lane
  (latest wins) and only the current generation's results are shown.
- New photos never reshuffle results under the cursor: when more photos are indexed than when the shown results
  were computed, a "N new photos · Refresh" button appears instead. When nothing is shown yet (the library was still
  indexing), the query simply runs again.
- Query by example: drop photos anywhere on the window (from a file manager or from the grid), or paste a photo,
  its path or a copied image (Ctrl+V); they become image chips. Drop a folder to be asked whether to watch it.
- Keys: Ctrl+F search, Esc clear, Down from the search field into the grid, Enter open, Space preview, Ctrl+C copy
  paths, Ctrl+O add a folder, Ctrl++ / Ctrl+- thumbnail size, Ctrl+Q quit.
- Closing: the window stays up with "Finishing…" while the controller stops the lanes and closes the library.

The side panel, the status line and the empty page come from gui/views/window_parts.py's ``make_*`` functions (the
seams where the full panels plug in); the failed-files list opens through ``show_failed_files``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QObject, QPoint, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPalette,
    QPixmap,
    QShortcut,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from vsearch_app.core.types import LibraryStatus, QueryTerm
from vsearch_app.gui import file_actions, icons
from vsearch_app.gui.engine import library_lane as lane_states
from vsearch_app.gui.engine.controller import EngineController
from vsearch_app.gui.engine.query_lane import SearchFailure, SearchResults
from vsearch_app.gui.models.results import MIME_TYPE, ResultsModel, paths_from_mime_data
from vsearch_app.gui.thumbs.loader import ThumbnailLoader
from vsearch_app.gui.ui_state import UiState
from vsearch_app.gui.views import window_parts
from vsearch_app.gui.views.chip import THUMB_SIZE
from vsearch_app.gui.views.preview import PhotoPreview
from vsearch_app.gui.views.query_bar import QueryBar
from vsearch_app.gui.views.result_delegate import DEFAULT_THUMBNAIL_SIZE
from vsearch_app.gui.views.results_view import ResultsView
from vsearch_app.gui.views.window_parts import count_text

log = logging.getLogger(__name__)

# What the engine indexes (core.scanner.PHOTO_EXTENSIONS); drops of other files are ignored.
PHOTO_SUFFIXES = frozenset(".jpg .jpeg .jpe .png .webp .gif .bmp .tif .tiff .heic .heif .avif".split())
THUMBNAIL_SIZES = (96, 128, 160, 200, 256)
PAGE_RESULTS, PAGE_EMPTY = 0, 1


def is_photo_file(path: Path) -> bool:
    return path.suffix.lower() in PHOTO_SUFFIXES and path.is_file()


class _Surface(QWidget):
    """The central widget; tells the window when it has painted for the first time (the engine starts then)."""

    painted = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._painted = False

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.painted.emit()


class Overlay(QWidget):
    """A translucent sheet over the window's content with a message: the drop hint (dashed outline) while something
    is dragged over the window, and "Finishing…" on close. It is a sibling of the content, not a child, so it stays
    in full colour while the content below is disabled."""

    def __init__(self, parent: QWidget, covered: QWidget) -> None:
        super().__init__(parent)
        self._covered = covered
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._title = ""
        self._text = ""
        self._outline = False
        self.hide()
        covered.installEventFilter(self)

    @property
    def title(self) -> str:
        return self._title

    def show_message(self, title: str, text: str = "", *, outline: bool = False) -> None:
        self._title, self._text, self._outline = title, text, outline
        self.setGeometry(self._covered.geometry())
        self.raise_()
        self.show()
        self.update()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._covered and event.type() in (QEvent.Type.Resize, QEvent.Type.Move):
            self.setGeometry(self._covered.geometry())
        return False

    def paintEvent(self, event: QPaintEvent) -> None:
        palette = self.palette()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        veil = QColor(palette.color(QPalette.ColorRole.Window))
        veil.setAlpha(220)
        painter.fillRect(self.rect(), veil)
        box = QRectF(self.rect()).adjusted(24, 24, -24, -24)
        if self._outline:
            pen = painter.pen()
            pen.setColor(palette.color(QPalette.ColorRole.Highlight))
            pen.setWidthF(2.0)
            pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawRoundedRect(box, 14, 14)
        title_font = self.font()
        title_font.setPointSizeF(title_font.pointSizeF() * 1.5)
        title_font.setBold(True)
        painter.setFont(title_font)
        painter.setPen(palette.color(QPalette.ColorRole.WindowText))
        metrics = painter.fontMetrics()
        centre = box.center().y()
        painter.drawText(QRectF(box.left(), centre - metrics.height() - 2, box.width(), metrics.height()),
                         Qt.AlignmentFlag.AlignCenter, self._title)
        painter.setFont(self.font())
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(QRectF(box.left(), centre + 6, box.width(), painter.fontMetrics().height() * 2),
                         Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, self._text)


class MainWindow(QMainWindow):
    firstPainted = Signal()  # the window is on screen: the app starts the engine now

    def __init__(self, controller: EngineController, ui_state: UiState | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._ui = ui_state
        self._terms: list[QueryTerm] = []
        self._generation = 0
        self._results: SearchResults | None = None
        self._failure: SearchFailure | None = None
        self._indexed_at_search: int | None = None
        self._searching = False
        self._closing = False
        self.setWindowTitle("VSearch")
        self.setWindowIcon(icons.app_icon())
        self.setAcceptDrops(True)
        self.resize(1180, 760)

        # Thumbnails come from the engine's cache through the controller, decoded off the GUI thread.
        self.thumbnail_loader = ThumbnailLoader(controller.thumbnail, parent=self)
        self.chip_loader = ThumbnailLoader(controller.thumbnail, side=THUMB_SIZE * 2, memory_items=64, threads=1,
                                           parent=self)
        self.chip_loader.thumbnailReady.connect(self._on_chip_thumbnail_ready)

        surface = _Surface(self)
        surface.painted.connect(self.firstPainted)
        self.setCentralWidget(surface)

        self.folders_panel = window_parts.make_folders_panel(surface)
        self.status_panel = window_parts.make_status_panel(self)
        self.empty_state = window_parts.make_empty_state(surface)

        self.query_bar = QueryBar(thumbnail_provider=self._chip_thumbnail, parent=surface)
        self.query_bar.line_edit.setAcceptDrops(False)  # a dropped photo becomes a chip (the window takes drops)
        self.query_bar.line_edit.installEventFilter(self)
        self.results_model = ResultsModel(self.thumbnail_loader, parent=self)
        self.results_view = ResultsView(surface)
        self.results_view.setModel(self.results_model)
        self.results_view.setFrameShape(ResultsView.Shape.NoFrame)

        self._summary = QLabel(surface)
        window_parts.muted(self._summary)
        self._refresh = QToolButton(surface)
        self._refresh.setIcon(icons.icon("refresh", QPalette.ColorRole.Highlight))
        self._refresh.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._refresh.setAutoRaise(True)
        self._refresh.setToolTip("Search again, including the photos indexed since")
        self._refresh.clicked.connect(self.refresh_results)
        self._refresh.hide()

        self._stack = QStackedWidget(surface)
        self._stack.insertWidget(PAGE_RESULTS, self.results_view)
        self._stack.insertWidget(PAGE_EMPTY, self.empty_state)
        self._layout(surface)
        self.statusBar().addWidget(self.status_panel, 1)
        self.statusBar().setSizeGripEnabled(True)

        self._overlay = Overlay(self, surface)
        self._connect()
        self._shortcuts()
        self._restore_ui_state()
        self._update_view()

    # --- layout -------------------------------------------------------------------------------------------------

    def _layout(self, surface: QWidget) -> None:
        header = QHBoxLayout()
        header.setContentsMargins(14, 12, 14, 6)
        header.addWidget(self.query_bar, 1)
        # The line under the search field keeps one height whether or not "Refresh" shows: the grid below must
        # not move when new photos are offered.
        info_line = QWidget(surface)
        info_line.setFixedHeight(self._refresh.sizeHint().height())
        info = QHBoxLayout(info_line)
        info.setContentsMargins(18, 0, 14, 0)
        info.addWidget(self._summary, 1)
        info.addWidget(self._refresh)
        content = QWidget(surface)
        column = QVBoxLayout(content)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addLayout(header)
        column.addWidget(info_line)
        column.addWidget(self._stack, 1)

        sidebar = _Sidebar(surface)
        side_column = QVBoxLayout(sidebar)
        side_column.setContentsMargins(0, 0, 0, 0)
        side_column.addWidget(self.folders_panel)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, surface)
        self.splitter.addWidget(sidebar)
        self.splitter.addWidget(content)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)
        self.splitter.setHandleWidth(1)
        self.splitter.setSizes([220, 960])
        outer = QVBoxLayout(surface)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.splitter)

    def _connect(self) -> None:
        c = self.controller
        c.statusChanged.connect(self._on_status)
        c.progress.connect(self.status_panel.set_progress)
        c.stateChanged.connect(self._on_state)
        c.foldersChanged.connect(self._on_folders)
        c.resultsReady.connect(self._on_results)
        c.searchFailed.connect(self._on_search_failed)
        c.error.connect(self._on_error)
        c.engineReady.connect(self._update_view)
        self.query_bar.queryChanged.connect(self._on_query_changed)
        self.results_view.openRequested.connect(self.open_paths)
        self.results_view.previewRequested.connect(self.preview)
        self.results_view.contextMenuRequested.connect(self.show_context_menu)
        self.results_model.modelReset.connect(self._update_summary)
        self.folders_panel.addRequested.connect(self.add_folder)
        self.folders_panel.removeRequested.connect(self._remove_folder)
        self.folders_panel.revealRequested.connect(file_actions.reveal)
        self.status_panel.pauseRequested.connect(c.pause_indexing)
        self.status_panel.resumeRequested.connect(c.resume_indexing)
        self.status_panel.failedRequested.connect(self.show_failed_files)
        self.empty_state.actionRequested.connect(self._on_empty_action)

    def _shortcuts(self) -> None:
        def shortcut(keys, slot) -> None:
            for key in keys if isinstance(keys, tuple) else (keys,):
                QShortcut(QKeySequence(key), self, slot)

        shortcut(QKeySequence.StandardKey.Find, self.query_bar.focus_text)
        shortcut(QKeySequence.StandardKey.Paste, self._paste_shortcut)
        shortcut(QKeySequence.StandardKey.Copy, self._copy_selected)
        shortcut(QKeySequence.StandardKey.Open, self.choose_folder)
        shortcut(QKeySequence.StandardKey.Quit, self.close)
        shortcut(("Ctrl++", "Ctrl+="), lambda: self.zoom(+1))
        shortcut("Ctrl+-", lambda: self.zoom(-1))

    # --- the query ----------------------------------------------------------------------------------------------

    @property
    def terms(self) -> list[QueryTerm]:
        return list(self._terms)

    @property
    def new_photos(self) -> int:
        """How many photos the "Refresh" button offers (0 when it is hidden)."""
        if not self._refresh.isVisibleTo(self):
            return 0
        return int(self._refresh.property("count") or 0)

    def _on_query_changed(self, terms: list[QueryTerm]) -> None:
        self._terms = list(terms)
        if self._ui is not None:
            self._ui.set_last_query(self.query_bar.model.terms)
        self._search()

    def _search(self) -> None:
        self._generation = self.controller.search(self._terms)
        self._indexed_at_search = self._indexed()
        self._set_new_photos(0)
        self._searching = bool(self._terms)
        self._failure = None  # an old failure's message must not stand for the new query
        if not self._terms:
            self._results = None
            self.results_model.clear()
        self._update_view()

    def refresh_results(self) -> None:
        """Run the current query again (the "N new photos · Refresh" button)."""
        if self._terms:
            self._search()

    def add_image_terms(self, paths: Sequence[Path], weight: float = 1.0, *, replace: bool = False) -> None:
        """Photos as query terms: added to the query (an existing term for the same photo takes the new sign), or
        replacing it (Find similar)."""
        added = [QueryTerm("image", str(Path(p)), weight) for p in paths]
        if not added:
            return
        if replace:
            self.query_bar.model.replace_all(added)
        else:
            values = {t.value for t in added}
            kept = [t for t in self.query_bar.model.terms if not (t.is_image and t.value in values)]
            self.query_bar.model.replace_all([*kept, *added])

    def find_similar(self, paths: Sequence[Path]) -> None:
        self.add_image_terms(paths, replace=True)

    # --- engine results -----------------------------------------------------------------------------------------

    def _on_results(self, generation: int, results: SearchResults) -> None:
        if generation != self._generation:
            return
        self._searching = False
        self._results, self._failure = results, None
        self.results_model.set_results(results.page, results.total)
        if results.total:
            self.results_view.scrollToTop()
        self._update_view()

    def _on_search_failed(self, generation: int, failure: SearchFailure) -> None:
        if generation != self._generation:
            return
        self._searching = False
        self._results, self._failure = None, failure
        self.results_model.clear()
        self._update_view()

    def _on_status(self, status: LibraryStatus) -> None:
        self.status_panel.set_status(status)
        indexed = self._indexed()
        if self._terms and self._indexed_at_search is not None and indexed > self._indexed_at_search:
            if self._results is not None and self._results.total:
                self._set_new_photos(indexed - self._indexed_at_search)  # offer; never reshuffle under the cursor
            elif not self._searching:
                self._search()  # nothing shown yet: show what is indexed now
        self._update_view()

    def _on_state(self, state: str, message: str) -> None:
        self.status_panel.set_state(state, message)
        self._update_view()

    def _on_folders(self, folders: list) -> None:
        self.folders_panel.set_folders(folders)

    def _on_error(self, message: str) -> None:
        self.statusBar().showMessage(message[:1].upper() + message[1:], 10_000)

    def _indexed(self) -> int:
        status = self.controller.status
        return status.counts.get("indexed", 0) if status is not None else 0

    def _set_new_photos(self, count: int) -> None:
        self._refresh.setProperty("count", count)
        self._refresh.setText(f"{count_text(count, 'new photo')} · Refresh")
        self._refresh.setVisible(count > 0)

    # --- what the centre shows ----------------------------------------------------------------------------------

    def _update_view(self) -> None:
        page = self._empty_page()
        if page is None:
            self._stack.setCurrentIndex(PAGE_RESULTS)
        else:
            self.empty_state.show_page(*page)
            self._stack.setCurrentIndex(PAGE_EMPTY)
        self._update_summary()

    def _empty_page(self) -> tuple[str, str, str, str] | None:
        """(kind, title, text, button) of the empty page to show, or None to show the results grid."""
        c = self.controller
        status = c.status
        if self._terms:
            if self._results is not None:
                if self._results.total:
                    return None
                return ("no_matches", "No matches", "No photo matches this query closely enough. Try other words, "
                        "or remove a term.", "")
            if self._failure is not None:
                return self._failure_page(self._failure)
            if not c.ready and c.state != lane_states.PROBLEM:
                return ("loading", "Opening your library…", "Your search runs as soon as it is open.", "")
            return ("searching", "Searching…", "", "")  # the first answer (a later query keeps the previous grid)
        if c.state == lane_states.PROBLEM and not c.ready:
            return ("problem", "VSearch cannot open your library", _sentence(c.state_message), "")
        if status is None:
            return ("loading", "Opening your library…", "", "")
        if not status.roots:
            return ("no_folders", "Add a photo folder to start",
                    "VSearch indexes the photos in it on this computer, then finds them by what they show: "
                    "type “dog on a beach” or drop a photo here.", "Add a Photo Folder…")
        if status.model_problem:
            return ("model_problem", "The search model is not available", _sentence(status.model_problem),
                    "Try Again")
        indexed, pending = status.counts.get("indexed", 0), status.counts.get("pending", 0)
        if not indexed and pending:
            return ("indexing", "Indexing your photos…",
                    f"{count_text(pending, 'photo')} to go. You can search as soon as the first ones are done.", "")
        if not indexed:
            return ("no_photos", "No photos yet", "The watched folders hold no photos VSearch can read yet. "
                    "Photos copied into them appear here by themselves.", "")
        so_far = ("Indexing is still running: search already works on the photos done so far." if pending
                  else f"{count_text(indexed, 'photo')} indexed.")
        return ("ready", "Search your photos",
                f"Describe what you are looking for, or drop a photo here to find similar ones. {so_far}", "")

    def _failure_page(self, failure: SearchFailure) -> tuple[str, str, str, str]:
        if failure.reason == "no_folders":
            return ("no_folders", "Add a photo folder to start", "There is nothing to search yet.",
                    "Add a Photo Folder…")
        if failure.reason == "not_indexed":
            return ("indexing", "Indexing your photos…", "Results appear here as soon as the first photos are "
                    "indexed.", "")
        if failure.reason == "no_photos":
            return ("no_photos", "No photos yet", "The watched folders hold no photos VSearch can read yet.", "")
        return ("search_failed", "Cannot search", _sentence(failure.message), "")

    def _update_summary(self) -> None:
        total = self.results_model.total if self._results is not None else 0
        shown = self._stack.currentIndex() == PAGE_RESULTS and total > 0
        if total >= self.controller.result_limit:
            text = f"The best {total:,} matches"
        else:
            text = f"{count_text(total, 'photo')}, best matches first"
        self._summary.setText(text if shown else "")

    def _on_empty_action(self, kind: str) -> None:
        if kind == "no_folders":
            self.choose_folder()
        elif kind == "model_problem":
            self.controller.resume_indexing()
            self.controller.refresh_status()

    # --- folders ------------------------------------------------------------------------------------------------

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a photo folder", str(Path.home()))
        if folder:
            self.add_folder(Path(folder))

    def add_folder(self, path: Path) -> None:
        self.controller.add_folder(path)
        self.statusBar().showMessage(f"Watching {Path(path).name or path}: its photos are being indexed", 6000)

    def _remove_folder(self, path: Path) -> None:
        self.controller.remove_folder(path)
        # Its photos leave the results at once (the user asked for it: no reshuffle surprise). The query lane runs
        # jobs in order, so this search runs after the removal.
        self.refresh_results()

    def offer_folders(self, folders: Sequence[Path]) -> None:
        """Dropped folders: ask whether to watch them."""
        names = ", ".join(f"“{f.name or f}”" for f in folders)
        answer = QMessageBox.question(
            self, "Watch this folder?" if len(folders) == 1 else "Watch these folders?",
            f"Add {names} to your library? VSearch indexes the photos in it and keeps watching for new ones. "
            "Your files are not changed.",
            QMessageBox.StandardButton.Cancel | QMessageBox.StandardButton.Ok, QMessageBox.StandardButton.Ok)
        if answer == QMessageBox.StandardButton.Ok:
            for folder in folders:
                self.add_folder(folder)

    def show_failed_files(self) -> None:
        status = self.controller.status
        failed = status.failed if status is not None else []
        box = QMessageBox(QMessageBox.Icon.Warning, "Photos VSearch could not read",
                          f"{count_text(len(failed), 'photo')} could not be indexed. They are tried again when they "
                          "change.", QMessageBox.StandardButton.Close, self)
        box.setDetailedText("\n".join(f"{f.path}\n    {f.reason}" for f in failed))
        box.open()

    # --- photos: open, preview, menu ----------------------------------------------------------------------------

    def open_paths(self, paths: Sequence[Path]) -> None:
        for path in list(paths)[:10]:  # a stray Enter on a big selection must not launch hundreds of viewers
            file_actions.open_path(path)

    def preview(self, path: Path) -> PhotoPreview:
        dialog = PhotoPreview(path, self.controller.thumbnail, self)
        dialog.openRequested.connect(lambda p: self.open_paths([p]))
        dialog.show()
        return dialog

    def show_context_menu(self, paths: list[Path], pos: QPoint) -> QMenu:
        several = len(paths) > 1
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addAction(icons.icon("search"), "Find Similar", lambda: self.find_similar(paths))
        menu.addAction(icons.icon("plus"), "Add to Query", lambda: self.add_image_terms(paths, 1.0))
        menu.addAction(icons.icon("minus"), "Exclude from Query", lambda: self.add_image_terms(paths, -1.0))
        menu.addSeparator()
        menu.addAction(icons.icon("image"), f"Open {len(paths)} Photos" if several else "Open",
                       lambda: self.open_paths(paths))
        menu.addAction(icons.icon("reveal"), "Show in File Manager", lambda: file_actions.reveal(paths[0]))
        menu.addAction("Copy Paths" if several else "Copy Path", lambda: file_actions.copy_paths(paths))
        menu.popup(pos)
        return menu

    def _copy_selected(self) -> None:
        paths = self.results_view.selected_paths()
        if paths:
            file_actions.copy_paths(paths)

    def zoom(self, steps: int) -> None:
        sizes = THUMBNAIL_SIZES
        current = self.results_view.thumbnail_size
        index = min(range(len(sizes)), key=lambda i: abs(sizes[i] - current))
        size = sizes[max(0, min(len(sizes) - 1, index + steps))]
        if size != current:
            self.results_view.set_thumbnail_size(size)

    # --- drops and paste ----------------------------------------------------------------------------------------

    def handle_mime(self, mime: QMimeData) -> bool:
        """Photos become image chips; folders are offered for watching. True when something was taken."""
        paths = paths_from_mime_data(mime) if (mime.hasUrls() or mime.hasFormat(MIME_TYPE)) else []
        images = [p for p in paths if is_photo_file(p)]
        folders = [p for p in paths if p.is_dir()]
        if not paths and mime.hasImage():
            saved = self._save_pasted_image(mime.imageData())
            images = [saved] if saved is not None else []
        if images:
            self.add_image_terms(images)
        if folders:
            self.offer_folders(folders)
        return bool(images or folders)

    def paste(self) -> bool:
        """Ctrl+V: photos (files, paths as text, or a copied image) become image chips. False when the clipboard
        holds none, so the search field pastes its text as usual."""
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None:
            return False
        if (mime.hasUrls() or mime.hasFormat(MIME_TYPE) or mime.hasImage()) and self.handle_mime(mime):
            return True
        if mime.hasText():
            lines = [line.strip().strip("\"'") for line in mime.text().splitlines() if line.strip()]
            paths = [Path(line).expanduser() for line in lines]
            if paths and all(is_photo_file(p) for p in paths):
                self.add_image_terms(paths)
                return True
        return False

    def _paste_shortcut(self) -> None:
        if not self.paste():
            self.query_bar.focus_text()
            self.query_bar.line_edit.paste()

    def _save_pasted_image(self, data: object) -> Path | None:
        """A copied or dropped image (no file behind it) saved into the cache folder, so it can be a query term."""
        image = data.toImage() if isinstance(data, QPixmap) else data
        if not isinstance(image, QImage) or image.isNull():
            return None
        folder = self.controller.settings.cache_dir / "pasted"
        bits = image.constBits()
        digest = hashlib.sha1(bytes(bits) if bits is not None else b"").hexdigest()[:16]
        path = folder / f"pasted-{digest}.png"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not path.exists() and not image.save(str(path), "PNG"):
                raise OSError("the image could not be written")
        except OSError as exc:
            self._on_error(f"cannot keep the pasted image in {folder}: {exc}")
            return None
        return path

    def _drop_wanted(self, mime: QMimeData) -> bool:
        if mime.hasFormat(MIME_TYPE) or mime.hasImage():
            return True
        return any(url.isLocalFile() for url in mime.urls())

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._closing or not self._drop_wanted(event.mimeData()):
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
        self._overlay.show_message("Drop to search by example",
                                   "Photos become part of the query · a folder can be added to your library",
                                   outline=True)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self._overlay.hide()

    def dropEvent(self, event: QDropEvent) -> None:
        self._overlay.hide()
        event.setDropAction(Qt.DropAction.CopyAction)  # never a move: the user's files stay where they are
        if self.handle_mime(event.mimeData()):
            event.accept()
        else:
            event.ignore()

    # --- keys ---------------------------------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.query_bar.line_edit and event.type() == QEvent.Type.KeyPress:
            if event.matches(QKeySequence.StandardKey.Paste) and self.paste():
                return True
            if event.key() == Qt.Key.Key_Down and self.results_model.rowCount():
                self._focus_results()
                return True
        return super().eventFilter(watched, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and (self._terms or self.query_bar.model.terms):
            self.query_bar.clear()
            self.query_bar.focus_text()
            event.accept()
            return
        super().keyPressEvent(event)

    def _focus_results(self) -> None:
        self.results_view.setFocus(Qt.FocusReason.ShortcutFocusReason)
        if not self.results_view.currentIndex().isValid():
            self.results_view.setCurrentIndex(self.results_model.index(0, 0))

    # --- chips' thumbnails --------------------------------------------------------------------------------------

    def _chip_thumbnail(self, path: str, side: int) -> QPixmap | None:
        self.chip_loader.set_side(side)
        pixmap = self.chip_loader.pixmap(Path(path))
        if pixmap is None:
            self.chip_loader.request(Path(path))
        return pixmap

    def _on_chip_thumbnail_ready(self, path: Path) -> None:
        self.query_bar.on_thumbnail_ready(str(path))

    # --- state and closing --------------------------------------------------------------------------------------

    def _restore_ui_state(self) -> None:
        if self._ui is None:
            return
        geometry = self._ui.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        splitter = self._ui.splitter()
        if splitter is not None:
            self.splitter.restoreState(splitter)
        size = self._ui.thumbnail_size(DEFAULT_THUMBNAIL_SIZE)
        if size != DEFAULT_THUMBNAIL_SIZE:
            self.results_view.set_thumbnail_size(max(THUMBNAIL_SIZES[0], min(THUMBNAIL_SIZES[-1], size)))
        last = self._ui.last_query()
        if last:
            self.query_bar.model.replace_all(last)  # searches once the library is open

    def save_ui_state(self) -> None:
        if self._ui is None:
            return
        self._ui.set_geometry(self.saveGeometry())
        self._ui.set_splitter(self.splitter.saveState())
        self._ui.set_thumbnail_size(self.results_view.thumbnail_size)
        self._ui.set_last_query(self.query_bar.model.terms)
        self._ui.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.controller.is_stopped:
            event.accept()
            return
        event.ignore()
        if self._closing:
            return
        self._closing = True
        self.save_ui_state()
        self.centralWidget().setEnabled(False)
        self._overlay.show_message("Finishing…", "Saving the index. Everything indexed so far is kept.")
        self.controller.stopped.connect(self._on_engine_stopped)
        self.controller.shutdown()
        # After the controller closed its gate, so no thumbnail job waits for a library that will not open.
        self.thumbnail_loader.shutdown()
        self.chip_loader.shutdown()

    def _on_engine_stopped(self) -> None:
        QTimer.singleShot(0, self.close)  # not from inside closeEvent (a nested close is ignored)


def _sentence(message: str) -> str:
    message = message.strip()
    if not message:
        return ""
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


class _Sidebar(QWidget):
    """The sidebar's background: the window colour nudged towards the text colour (a quiet step from the grid),
    computed from the palette at every paint so a switch to dark mode follows."""

    def paintEvent(self, event: QPaintEvent) -> None:
        palette = self.palette()
        window = palette.color(QPalette.ColorRole.Window)
        text = palette.color(QPalette.ColorRole.WindowText)
        amount = 0.045
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor.fromRgbF(window.redF() + (text.redF() - window.redF()) * amount,
                                                      window.greenF() + (text.greenF() - window.greenF()) * amount,
                                                      window.blueF() + (text.blueF() - window.blueF()) * amount))

