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
  paths, Ctrl+O add a folder, Ctrl++ / Ctrl+- thumbnail size, Ctrl+, settings, Ctrl+Q quit, Ctrl+Shift+F the filter
  bar, Ctrl+Shift+D the Duplicates window.
- Filters (FilterBar, under the search field): a date range, folder and camera go to the engine with the query and
  the sort order; with no terms a filter browses (every photo inside it). The "Filtered: … ×" pill beside the count
  clears it in one click, and the empty state says when a filter hides everything.
- Closing: the window stays up with "Finishing…" while the controller stops the lanes and closes the library.
- First run: no folder -> "Add a photo folder"; the search model missing -> "The search model is missing" with a
  button to the model dialog (download with progress and Cancel, or choose a model folder); the rest of the window
  keeps working meanwhile.

The parts: FoldersPanel (side), StatusBar (bottom), EmptyState (the centre when there is nothing to show),
FilterBar and ActiveFilterPill (filters and sort), DuplicatesView (its own window), FailedFilesDialog (the status
bar's failed count), SettingsDialog (Ctrl+,) and ModelDialog (model missing). Open, Reveal and Copy go to
gui/desktop.py.

Why over 600 lines: it is the one place where the window's parts meet the controller, so each user intent (a drop,
a paste, a context-menu action, a key, a state change from the engine) has its short handler here. The natural next
split is the drop/paste handling and the context menu into their own modules (gui/views/window_input.py).
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

from vsearch_app.core.types import ChangeEvent, LibraryStatus, QueryTerm, SortOrder
from vsearch_app.errors import VSearchError
from vsearch_app.gui import desktop, formatting, icons
from vsearch_app.gui.dialogs.caption_model import open_caption_model_dialog
from vsearch_app.gui.dialogs.failed_files import FailedFilesDialog
from vsearch_app.gui.dialogs.first_run import ModelDialog
from vsearch_app.gui.dialogs.settings import SettingsDialog
from vsearch_app.gui.engine import library_lane as lane_states
from vsearch_app.gui.engine.controller import EngineController
from vsearch_app.gui.engine.query_lane import FIRST_PAGE, SearchFailure, SearchResults
from vsearch_app.gui.models.filters import FilterChoice
from vsearch_app.gui.models.results import MIME_TYPE, ResultsModel, paths_from_mime_data
from vsearch_app.gui.settings_model import Preferences, PreferencesStore
from vsearch_app.gui.thumbs.loader import ThumbnailLoader
from vsearch_app.gui.ui_state import UiState
from vsearch_app.gui.views.caption_jobs import CaptionJobStatus
from vsearch_app.gui.views.chip import THUMB_SIZE
from vsearch_app.gui.views.describe_panel import DescribeDock
from vsearch_app.gui.views.duplicates_view import DuplicatesView
from vsearch_app.gui.views.empty_states import EmptyState
from vsearch_app.gui.views.filter_bar import ActiveFilterPill, FilterBar
from vsearch_app.gui.views.folders_panel import FoldersPanel
from vsearch_app.gui.views.preview import PhotoPreview
from vsearch_app.gui.views.query_bar import QueryBar
from vsearch_app.gui.views.result_delegate import DEFAULT_THUMBNAIL_SIZE
from vsearch_app.gui.views.results_view import ResultsView
from vsearch_app.gui.views.status_bar import StatusBar

log = logging.getLogger(__name__)

# What the engine indexes (core.scanner.PHOTO_EXTENSIONS); drops of other files are ignored.
PHOTO_SUFFIXES = frozenset(".jpg .jpeg .jpe .png .webp .gif .bmp .tif .tiff .heic .heif .avif".split())
THUMBNAIL_SIZES = (96, 128, 160, 200, 256, 320)
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
    preferencesChanged = Signal(object)  # Preferences saved in the Settings dialog (the app applies the theme)

    def __init__(self, controller: EngineController, ui_state: UiState | None = None,
                 preferences: PreferencesStore | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._ui = ui_state
        self._preferences = preferences
        self._photo_paths: dict[str, Path] = {}  # file id of a "photo" term (Find similar) -> its path, for chips
        self._new_since_search = 0  # new photos the watcher reported since the shown results were computed
        self.catalog_notice_box: QMessageBox | None = None  # a damaged catalog's recovery, said once (issue 15)
        self.failed_dialog: FailedFilesDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.model_dialog: ModelDialog | None = None
        self.caption_model_dialog: ModelDialog | None = None
        self._terms: list[QueryTerm] = []
        self._filters = FilterChoice()  # the filter bar's choice; with no terms, a filter browses
        self._sort = SortOrder.SCORE
        self.duplicates_view: DuplicatesView | None = None
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

        self.folders_panel = FoldersPanel(surface)
        self.status_panel = StatusBar(self)
        self.empty_state = EmptyState(surface)

        self.query_bar = QueryBar(thumbnail_provider=self._chip_thumbnail, parent=surface)
        self.query_bar.line_edit.setAcceptDrops(False)  # a dropped photo becomes a chip (the window takes drops)
        self.query_bar.line_edit.installEventFilter(self)
        self.results_model = ResultsModel(self.thumbnail_loader, parent=self)
        self.results_view = ResultsView(surface)
        self.results_view.setModel(self.results_model)
        self.results_view.setFrameShape(ResultsView.Shape.NoFrame)

        self._summary = QLabel(surface)
        self._summary.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self._settings_button = QToolButton(surface)
        self._settings_button.setIcon(icons.icon("settings"))
        self._settings_button.setAutoRaise(True)
        keys = QKeySequence("Ctrl+,").toString(QKeySequence.SequenceFormat.NativeText)
        self._settings_button.setToolTip(f"Settings ({keys})")
        self._settings_button.setAccessibleName("Settings")
        self._settings_button.clicked.connect(self.open_settings)
        self._refresh = QToolButton(surface)
        self._refresh.setIcon(icons.icon("refresh", QPalette.ColorRole.Highlight))
        self._refresh.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._refresh.setAutoRaise(True)
        self._refresh.setToolTip("Search again, including the photos indexed since")
        self._refresh.clicked.connect(self.refresh_results)
        self._refresh.hide()
        # Describe (issue 13): the dock with the photo large and its caption; batch jobs show in the status bar.
        self.describe_dock = DescribeDock(controller, self)
        self.describe_panel = self.describe_dock.panel
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.describe_dock)
        self.describe_dock.hide()
        self.addAction(self.describe_dock.toggleViewAction())  # its Ctrl+D works anywhere in the window
        self._describe_button = QToolButton(surface)
        self._describe_button.setDefaultAction(self.describe_dock.toggleViewAction())
        self._describe_button.setAutoRaise(True)
        self._describe_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.caption_jobs = CaptionJobStatus(controller.captions, self)
        self.filter_bar = FilterBar(surface)
        self.filter_bar.hide()
        self.filter_pill = ActiveFilterPill(surface)
        self._filter_button = QToolButton(surface)
        self._filter_button.setIcon(icons.icon("filter"))
        self._filter_button.setAutoRaise(True)
        self._filter_button.setCheckable(True)
        self._filter_button.setToolTip("Filter and sort: date, folder, camera (Ctrl+Shift+F)")
        self._filter_button.setAccessibleName("Filters")
        self._filter_button.toggled.connect(self.filter_bar.setVisible)
        self._filter_button.toggled.connect(self._style_filter_button)
        self._duplicates_button = QToolButton(surface)
        self._duplicates_button.setIcon(icons.icon("duplicates"))
        self._duplicates_button.setText("Find Duplicates")
        self._duplicates_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._duplicates_button.setAutoRaise(True)
        self._duplicates_button.setToolTip("Near-identical photos, best shot first (Ctrl+Shift+D)")
        self._duplicates_button.clicked.connect(self.show_duplicates)

        self._stack = QStackedWidget(surface)
        self._stack.insertWidget(PAGE_RESULTS, self.results_view)
        self._stack.insertWidget(PAGE_EMPTY, self.empty_state)
        self._layout(surface)
        self.setStatusBar(self.status_panel)
        self.status_panel.addPermanentWidget(self.caption_jobs)
        self.status_panel.setSizeGripEnabled(True)
        self.status_panel.set_note("Opening your library…")

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
        header.addWidget(self._filter_button, 0, Qt.AlignmentFlag.AlignTop)
        header.addWidget(self._describe_button, 0, Qt.AlignmentFlag.AlignTop)
        header.addWidget(self._settings_button, 0, Qt.AlignmentFlag.AlignTop)
        # The line under the search field keeps one height whether or not "Refresh" shows: the grid below must
        # not move when new photos are offered.
        info_line = QWidget(surface)
        info_line.setFixedHeight(self._refresh.sizeHint().height())
        info = QHBoxLayout(info_line)
        info.setContentsMargins(18, 0, 14, 0)
        info.addWidget(self._summary)
        info.addSpacing(8)
        info.addWidget(self.filter_pill)
        info.addStretch(1)
        info.addWidget(self._refresh)
        content = QWidget(surface)
        column = QVBoxLayout(content)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addLayout(header)
        column.addWidget(self.filter_bar)
        column.addWidget(info_line)
        column.addWidget(self._stack, 1)

        sidebar = _Sidebar(surface)
        side_column = QVBoxLayout(sidebar)
        side_column.setContentsMargins(0, 0, 0, 0)
        side_column.addWidget(self.folders_panel, 1)
        tools = QHBoxLayout()
        tools.setContentsMargins(8, 0, 8, 8)
        tools.addWidget(self._duplicates_button)
        tools.addStretch(1)
        side_column.addLayout(tools)

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
        c.folderCountsChanged.connect(self.folders_panel.set_counts)
        c.libraryChanged.connect(self._on_library_changed)
        c.resultsReady.connect(self._on_results)
        c.captionWeightChanged.connect(self._on_caption_weight_changed)
        c.searchFailed.connect(self._on_search_failed)
        c.error.connect(self._on_error)
        c.engineReady.connect(self._update_view)
        c.facetsChanged.connect(self._on_facets)
        self.filter_bar.filterChanged.connect(self._on_filter_changed)
        self.filter_bar.sortChanged.connect(self._on_sort_changed)
        self.filter_bar.notice.connect(self._on_error)
        self.filter_pill.clicked.connect(self.filter_bar.clear)
        self.query_bar.queryChanged.connect(self._on_query_changed)
        self.results_view.openRequested.connect(self.open_paths)
        self.results_view.previewRequested.connect(self.preview)
        self.results_view.contextMenuRequested.connect(self.show_context_menu)
        self.results_model.modelReset.connect(self._update_summary)
        self.folders_panel.addRequested.connect(self.add_folder)
        self.folders_panel.removeRequested.connect(self._remove_folder)
        self.folders_panel.revealRequested.connect(self.reveal)
        self.folders_panel.captionRequested.connect(lambda folder: self.caption_in_background([folder]))
        self.results_view.selectionModel().currentChanged.connect(self._show_current_in_describe)
        self.describe_dock.visibilityChanged.connect(self._show_current_in_describe)
        self.describe_panel.captionModelMissing.connect(self.show_caption_model_dialog)
        self.caption_jobs.captionModelMissing.connect(self.show_caption_model_dialog)
        self.caption_jobs.message.connect(lambda text: self.status_panel.showMessage(formatting.sentence(text), 10_000))
        self.status_panel.pauseRequested.connect(c.pause_indexing)
        self.status_panel.resumeRequested.connect(c.resume_indexing)
        self.status_panel.failedRequested.connect(self.show_failed_files)
        self.empty_state.actionRequested.connect(self._on_empty_action)
        self.empty_state.modelRequested.connect(self.show_model_dialog)

    def _shortcuts(self) -> None:
        def shortcut(keys, slot) -> None:
            for key in keys if isinstance(keys, tuple) else (keys,):
                QShortcut(QKeySequence(key), self, slot)

        shortcut(QKeySequence.StandardKey.Find, self.query_bar.focus_text)
        shortcut(QKeySequence.StandardKey.Paste, self._paste_shortcut)
        shortcut(QKeySequence.StandardKey.Copy, self._copy_selected)
        shortcut(QKeySequence.StandardKey.Open, self.choose_folder)
        shortcut(QKeySequence.StandardKey.Quit, self.close)
        shortcut(("Ctrl+,", QKeySequence.StandardKey.Preferences), self.open_settings)
        shortcut(("Ctrl++", "Ctrl+="), lambda: self.zoom(+1))
        shortcut("Ctrl+-", lambda: self.zoom(-1))
        shortcut("Ctrl+Shift+F", self._filter_button.toggle)
        shortcut("Ctrl+Shift+D", self.show_duplicates)

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

    @property
    def filters(self) -> FilterChoice:
        return self._filters

    def _has_query(self) -> bool:
        """Something to show results for: terms, or a filter to browse."""
        return bool(self._terms) or not self._filters.is_empty

    def _on_filter_changed(self, choice: FilterChoice) -> None:
        before, self._filters = self._filters, choice
        self.filter_pill.set_choice(choice)
        self._style_filter_button()
        if choice.without_dates() != before.without_dates():
            # The histogram counts the months inside the other filters (folder, camera): a drag sees what it gets.
            self.controller.refresh_facets(choice.without_dates().search_filter())
        self._search()

    def _style_filter_button(self) -> None:
        """The funnel wears the accent colour while the bar is open or a filter is on (the bar may be hidden)."""
        on = self._filter_button.isChecked() or not self._filters.is_empty
        self._filter_button.setIcon(icons.icon("filter", QPalette.ColorRole.Highlight if on
                                               else QPalette.ColorRole.WindowText))

    def _on_sort_changed(self, order: SortOrder) -> None:
        self._sort = SortOrder(order)
        if self._ui is not None:
            self._ui.set_sort(self._sort)
        if self._has_query():
            self._search()

    def _on_facets(self, months: list, cameras: list) -> None:
        self.filter_bar.set_months(months)
        self.filter_bar.set_cameras(cameras)

    def clear_filters(self) -> None:
        self.filter_bar.clear()

    def _search(self) -> None:
        self._generation = self.controller.search(self._terms, self._filters.search_filter(), self._sort)
        # What this search sees: the last status's count may lag the watcher's report of new photos (embedded before
        # it is sent), and counting them again when that status arrives would offer "Refresh" right after one.
        seen = (self._indexed_at_search or 0) + self._new_since_search
        self._indexed_at_search = max(self._indexed(), seen if self._indexed_at_search is not None else 0)
        self._new_since_search = 0
        self._set_new_photos(0)
        self._searching = self._has_query()
        self._failure = None  # an old failure's message must not stand for the new query
        if not self._has_query():
            self._results = None
            self.results_model.clear()
        self._update_view()

    def refresh_results(self) -> None:
        """Run the current query again (the "N new photos · Refresh" button)."""
        if self._has_query():
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
            # The same photo as an image term or as a Find similar ("photo") term takes the new sign.
            kept = [t for t in self.query_bar.model.terms
                    if not (t.is_image and t.value in values)
                    and not (t.is_photo and str(self._photo_paths.get(t.value)) in values)]
            self.query_bar.model.replace_all([*kept, *added])

    def find_similar(self, paths: Sequence[Path]) -> None:
        """The query becomes "photos like these": each indexed photo by its stored vector (a "photo" term, no model
        run); a photo the results do not know by id as an image term."""
        terms = []
        for path in paths:
            row = self.results_model.row_of(Path(path))
            file_id = self.results_model.hit(row).file_id if row is not None else -1
            if file_id >= 0:
                term = QueryTerm.of_photo(file_id)
                self._photo_paths[term.value] = Path(path)
            else:
                term = QueryTerm("image", str(Path(path)))
            terms.append(term)
        if terms:
            self.query_bar.line_edit.clear()  # words still being typed are not part of "photos like this one"
            self.query_bar.model.replace_all(terms)

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
        indexed = self._indexed()
        self.status_panel.set_indexed(indexed)
        self.status_panel.set_failed_count(len(status.failed))
        if status.catalog_notice and self.catalog_notice_box is None:  # every status carries it: said once
            self._show_catalog_notice(status.catalog_notice)
        if self.failed_dialog is not None and self.failed_dialog.isVisible():
            self.failed_dialog.set_failed(status.failed)
        self._offer_new_photos()
        self._update_view()

    def _show_catalog_notice(self, notice: str) -> None:
        """Opening the library found its catalog damaged and restored it (or started anew): too important for the
        status bar, which would also cut the sentence short. A window-modal box, not a blocking exec()."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Your library was repaired", formatting.sentence(notice),
                          QMessageBox.StandardButton.Ok, self)
        box.setInformativeText("Nothing was deleted: the damaged file is kept in VSearch's data folder.")
        self.catalog_notice_box = box
        box.open()

    def _on_library_changed(self, change: object) -> None:
        """The watcher's report (ChangeEvent): new photos are offered with "Refresh" (the status that follows
        shows them in the counts)."""
        if isinstance(change, ChangeEvent) and change.new:
            self._new_since_search += change.new
            self._offer_new_photos()

    def _offer_new_photos(self) -> None:
        if not self._has_query() or self._indexed_at_search is None:
            return
        new = max(self._indexed() - self._indexed_at_search, self._new_since_search)
        if new <= 0:
            return
        if self._results is not None and self._results.total:
            self._set_new_photos(new)  # offer; never reshuffle under the cursor
        elif not self._searching:
            self._search()  # nothing shown yet: show what is indexed now

    def _on_state(self, state: str, message: str) -> None:
        self.status_panel.set_paused(state == lane_states.PAUSED)
        notes = {lane_states.STARTING: "Opening your library…", lane_states.LOADING: "Loading the search model…",
                 lane_states.PAUSED: "Indexing paused · search works on the photos indexed so far"}
        if state in (lane_states.BUSY, lane_states.PROBLEM, lane_states.FAILED):
            notes[state] = message[:1].upper() + message[1:]
        elif state == lane_states.MODEL_MISSING:  # the page says what to do; the full message is the tooltip
            notes[state] = "The search model is missing: " + message[:1].lower() + message[1:]
        self.status_panel.set_note(notes.get(state, ""))
        self._update_view()

    def _on_folders(self, folders: list) -> None:
        self.folders_panel.set_folders(folders)
        self.filter_bar.set_folders([f.path for f in folders])
        if self.duplicates_view is not None:
            self.duplicates_view.set_folders([f.path for f in folders])
        self.folders_panel.set_counts(self.controller.folder_counts)

    def _on_error(self, message: str) -> None:
        self.status_panel.showMessage(formatting.sentence(message), 10_000)

    def _indexed(self) -> int:
        status = self.controller.status
        return status.counts.get("indexed", 0) if status is not None else 0

    def _set_new_photos(self, count: int) -> None:
        self._refresh.setProperty("count", count)
        self._refresh.setText(f"{formatting.plural(count, 'new photo')} · Refresh")
        self._refresh.setVisible(count > 0)

    # --- what the centre shows ----------------------------------------------------------------------------------

    def _update_view(self) -> None:
        if self._show_empty_page():
            self._stack.setCurrentIndex(PAGE_EMPTY)
        else:
            self._stack.setCurrentIndex(PAGE_RESULTS)
        self._update_summary()

    def _show_empty_page(self) -> bool:
        """Put the right page on the empty state and return True, or return False to show the results grid."""
        c, page = self.controller, self.empty_state
        status = c.status
        if self._has_query():
            if self._results is not None:
                if self._results.total:
                    return False
                if not self._filters.is_empty:  # say that the filter hides everything, and offer to clear it
                    where = self._filters.where()
                    if self._terms:
                        page.show_message("filtered_out", f"No photos {where} match",
                                          "This search finds nothing inside the filter. Clear the filter to search "
                                          "every photo.", button=("close", "Clear the Filter"))
                    else:
                        page.show_message("filtered_out", f"No photos {where}",
                                          "None of your photos is inside this filter. Clear the filter to see every "
                                          "photo.", button=("close", "Clear the Filter"))
                else:
                    page.show_no_matches(c.threshold)
            elif self._failure is not None:
                self._show_failure(self._failure)
            elif c.state == lane_states.MODEL_MISSING:
                page.show_model_missing(status.model if status is not None else None)
            elif not c.ready and c.state != lane_states.PROBLEM:
                page.show_message("loading", "Opening your library…", "Your search runs as soon as it is open.",
                                  busy=True)
            elif c.state == lane_states.LOADING:
                page.show_loading_model()  # the search waits for the model; it runs as soon as it is loaded
            else:
                page.show_message("searching", "Searching…", busy=True)  # a first answer; later ones keep the grid
            return True
        if c.state == lane_states.PROBLEM and not c.ready:
            page.show_message("problem", "VSearch cannot open your library", formatting.sentence(c.state_message),
                              warning=True)
        elif status is None:
            page.show_message("loading", "Opening your library…", busy=True)
        elif not status.roots:
            page.show_no_folders(QKeySequence(QKeySequence.StandardKey.Open).toString(QKeySequence.SequenceFormat.NativeText))
        elif c.state == lane_states.MODEL_MISSING:
            page.show_model_missing(status.model)
        elif status.model_problem:
            page.show_message("model_problem", "The search model is not available",
                              formatting.sentence(status.model_problem), button=("refresh", "Try Again"), warning=True)
        elif c.state == lane_states.LOADING:
            page.show_loading_model()
        else:
            indexed, pending = status.counts.get("indexed", 0), status.counts.get("pending", 0)
            if pending and (not indexed or self.status_panel.indexing()):
                page.show_indexing(indexed, indexed + pending)
            elif not indexed:
                page.show_message("no_photos", "No photos yet", "The watched folders hold no photos VSearch can "
                                  "read yet. Photos copied into them appear here by themselves.")
            else:
                page.show_ready(indexed)
        return True

    def _show_failure(self, failure: SearchFailure) -> None:
        page = self.empty_state
        if failure.reason == "no_folders":
            page.show_no_folders()
        elif failure.reason == "not_indexed":
            page.show_message("indexing", "Indexing…", f"{formatting.plural(failure.pending, 'photo')} to go. "
                              "Results appear here as soon as the first photos are indexed.", busy=True)
        elif failure.reason == "no_photos":
            page.show_message("no_photos", "No photos yet", "The watched folders hold no photos VSearch can read "
                              "yet.")
        elif failure.reason == "other_model":
            others = ", ".join(f"{name} ({formatting.plural(n, 'photo')})" for name, n in failure.other_models.items())
            page.show_message("other_model", "These photos were indexed with another model",
                              f"The search model now is {failure.model or 'a different one'}; the photos have vectors "
                              f"of {others or 'another model'} only. They are being indexed again with the new "
                              "model; search works as they are done. To go back, choose the other model in "
                              "Settings.")
        elif failure.reason == "unavailable":
            page.show_message("unavailable", "No photo can be searched now", formatting.sentence(failure.message),
                              warning=True)
        else:
            page.show_message("search_failed", "Cannot search", formatting.sentence(failure.message), warning=True)

    def _update_summary(self) -> None:
        total = self.results_model.total if self._results is not None else 0
        shown = self._stack.currentIndex() == PAGE_RESULTS and total > 0
        limit = self.controller.result_limit
        order = {SortOrder.DATE: "newest first", SortOrder.NAME: "by name"}.get(
            self._sort, "best matches first" if self._terms else "newest first")  # browsing ranks by date
        if limit and total >= limit and self._terms:
            text = f"The best {formatting.count(total)} matches"
        else:
            text = f"{formatting.plural(total, 'photo')}, {order}"
        good = self._results.good_matches if self._results is not None else 0
        if good and self._terms:  # "12 good matches · 340 photos, best matches first"
            more = "+" if good >= FIRST_PAGE else ""
            text = f"{formatting.count(good)}{more} good {'match' if good == 1 else 'matches'} · {text}"
        self._summary.setText(text if shown else "")

    def _on_empty_action(self, kind: str) -> None:
        if kind == "filtered_out":
            self.clear_filters()
        if kind == "model_problem":
            self.controller.resume_indexing()
            self.controller.refresh_status()

    # --- the search model (first run) ---------------------------------------------------------------------------

    def show_model_dialog(self) -> ModelDialog:
        """The model dialog: download the search model (progress, Cancel; offline says so) or choose a folder."""
        if self.model_dialog is not None and self.model_dialog.isVisible():
            self.model_dialog.raise_()
            return self.model_dialog
        status = self.controller.status
        model_id = status.model if status is not None else self.controller.settings.search_model
        dialog = ModelDialog(model_id, self.controller.model_download(model_id), parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.modelReady.connect(self._on_model_ready)
        dialog.destroyed.connect(self._forget_model_dialog)
        self.model_dialog = dialog
        dialog.open()
        return dialog

    def _forget_model_dialog(self) -> None:
        self.model_dialog = None

    def _on_model_ready(self, folder: object) -> None:
        path = Path(folder) if isinstance(folder, (str, Path)) else None
        hub = self.controller.settings.hub_cache_dir
        downloaded = path is None or path.resolve().is_relative_to(Path(hub).resolve())
        # A download lands in the hub cache under the model's own id (already the library's choice); a folder the
        # user picked becomes the library's model.
        self.controller.model_ready(None if downloaded else path)
        self.status_panel.showMessage("Getting the search model ready…", 6000)

    # --- settings -----------------------------------------------------------------------------------------------

    def open_settings(self) -> SettingsDialog | None:
        """The Settings dialog (Ctrl+,). Thumbnail size and result limit apply at once; model, device and number
        format when VSearch next starts (the dialog says so)."""
        if self._preferences is None:
            self._preferences = PreferencesStore()
        if self.settings_dialog is not None and self.settings_dialog.isVisible():
            self.settings_dialog.raise_()
            return self.settings_dialog
        prefs = self._preferences.load()
        status = self.controller.status
        models = [m for m in (status.model if status is not None else None, *(status.other_models if status else ()))
                  if m]
        dialog = SettingsDialog(prefs, data_dir=self.controller.settings.data_dir, search_models=models,
                                reveal=desktop.reveal_in_file_manager, parent=self)
        dialog.set_caption_weight(self.controller.caption_weight)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._on_settings_accepted(prefs, dialog.preferences()))
        dialog.accepted.connect(lambda: self._on_caption_weight_chosen(dialog.caption_weight()))
        dialog.destroyed.connect(self._forget_settings_dialog)
        self.settings_dialog = dialog
        dialog.open()
        return dialog

    def _forget_settings_dialog(self) -> None:
        self.settings_dialog = None

    def _on_settings_accepted(self, before: Preferences, prefs: Preferences) -> None:
        self._preferences.save(prefs)
        self.apply_preferences(prefs)
        engine = ("search_model", "caption_model", "device", "dtype")
        if any(getattr(before, name) != getattr(prefs, name) for name in engine):
            self.status_panel.showMessage("The new model and device settings take effect when VSearch next starts.",
                                          10_000)
        self.preferencesChanged.emit(prefs)

    def _on_caption_weight_chosen(self, weight: float | None) -> None:
        """The library keeps the caption weight; the results are searched again once it is stored."""
        if weight is not None and weight != self.controller.caption_weight:
            self.controller.set_caption_weight(weight)

    def _on_caption_weight_changed(self, _weight: float) -> None:
        self.refresh_results()

    def apply_preferences(self, prefs: Preferences) -> None:
        """What applies at once: the thumbnail size and how many results a search shows (0: all)."""
        self.results_view.set_thumbnail_size(prefs.thumbnail_size)
        limit = prefs.result_limit or None
        if limit != self.controller.result_limit:
            self.controller.result_limit = limit
            self.refresh_results()

    # --- folders ------------------------------------------------------------------------------------------------

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a photo folder", str(Path.home()))
        if folder:
            self.add_folder(Path(folder))

    def add_folder(self, path: Path) -> None:
        self.controller.add_folder(path)
        self.status_panel.showMessage(f"Watching {Path(path).name or path}: its photos are being indexed", 6000)

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

    def show_failed_files(self) -> FailedFilesDialog:
        """The files that could not be indexed, with the reasons (kept current while open)."""
        status = self.controller.status
        failed = status.failed if status is not None else []
        if self.failed_dialog is None:
            self.failed_dialog = FailedFilesDialog(failed, self)
        else:
            self.failed_dialog.set_failed(failed)
        self.failed_dialog.show()
        self.failed_dialog.raise_()
        return self.failed_dialog

    # --- photos: open, preview, menu ----------------------------------------------------------------------------

    def open_paths(self, paths: Sequence[Path]) -> None:
        for path in list(paths)[:10]:  # a stray Enter on a big selection must not launch hundreds of viewers
            self._desktop(desktop.open_path, path)

    def reveal(self, path: Path) -> None:
        self._desktop(desktop.reveal_in_file_manager, path)

    def copy_paths(self, paths: Sequence[Path]) -> None:
        desktop.copy_paths(paths)
        self.status_panel.showMessage("Copied " + (f"{formatting.plural(len(paths), 'path')}" if len(paths) > 1
                                                   else str(paths[0])), 4000)

    def _desktop(self, action, path: Path) -> None:
        try:
            action(path)
        except VSearchError as exc:  # the file is gone, or no app opens it: say so, do not raise
            self._on_error(str(exc))

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
        menu.addAction(icons.icon("reveal"), "Show in File Manager", lambda: self.reveal(paths[0]))
        menu.addAction(icons.icon("copy"), "Copy Paths" if several else "Copy Path", lambda: self.copy_paths(paths))
        menu.addSeparator()
        menu.addAction(icons.icon("caption"), f"Generate Captions for {len(paths)} Photos" if several
                       else "Generate Caption", lambda: self.generate_caption(paths))
        menu.popup(pos)
        return menu

    # --- describe (the dock and batch caption jobs) -------------------------------------------------------------

    def show_describe(self, path: Path | None = None) -> None:
        """Open the Describe panel on ``path`` (default: the grid's current photo)."""
        self.describe_dock.show()
        self.describe_dock.raise_()
        if path is not None:
            row = self.results_model.row_of(Path(path))
            self.describe_panel.show_photo(path, self.results_model.hit(row) if row is not None else None)

    def generate_caption(self, paths: Sequence[Path]) -> None:
        """One photo: open the panel and write its caption there. Several: a background job."""
        if len(paths) == 1:
            self.show_describe(Path(paths[0]))
            self.describe_panel.generate()
        elif paths:
            self.caption_in_background(paths)

    def caption_in_background(self, paths: Sequence[Path]) -> None:
        """Caption photos (or a folder's photos) in a background job with the panel's prompt and settings: one
        model load, photos that have a caption for the prompt already are skipped; progress and Cancel are in the
        status bar."""
        job = self.controller.captions.caption_batch([Path(p) for p in paths], self.describe_panel.caption_settings())
        self.caption_jobs.job_started(job)

    def _show_current_in_describe(self, *_args) -> None:
        if not self.describe_dock.isVisible():
            return
        index = self.results_view.currentIndex()
        if index.isValid():
            hit = self.results_model.hit(index.row())
            self.describe_panel.show_photo(hit.path, hit)
        elif self.describe_panel.path is None:
            self.describe_panel.show_photo(None)

    def show_caption_model_dialog(self, _message: str = "") -> ModelDialog:
        """The caption model is missing: the gated-model explanation, download with a token, or a local folder."""
        if self.caption_model_dialog is not None and self.caption_model_dialog.isVisible():
            self.caption_model_dialog.raise_()
            return self.caption_model_dialog
        self.caption_model_dialog = open_caption_model_dialog(self.controller, self._preferences, self)
        self.caption_model_dialog.destroyed.connect(self._forget_caption_model_dialog)
        self.caption_model_dialog.modelReady.connect(self.describe_panel.retry_after_model_missing)
        return self.caption_model_dialog

    def _forget_caption_model_dialog(self) -> None:
        self.caption_model_dialog = None

    def _copy_selected(self) -> None:
        paths = self.results_view.selected_paths()
        if paths:
            self.copy_paths(paths)

    def zoom(self, steps: int) -> None:
        sizes = THUMBNAIL_SIZES
        current = self.results_view.thumbnail_size
        index = min(range(len(sizes)), key=lambda i: abs(sizes[i] - current))
        size = sizes[max(0, min(len(sizes) - 1, index + steps))]
        if size != current:
            self.results_view.set_thumbnail_size(size)

    # --- duplicates -----------------------------------------------------------------------------------------------

    def show_duplicates(self) -> DuplicatesView:
        """The Duplicates window: groups of near-identical photos, best shot first; it finds them when opened."""
        if self.duplicates_view is None:
            self.duplicates_view = DuplicatesView(self.controller, parent=self)
            self.duplicates_view.revealRequested.connect(self.reveal)
        self.duplicates_view.set_folders(self.filter_bar.folders())
        self.duplicates_view.show()
        self.duplicates_view.raise_()
        self.duplicates_view.activateWindow()
        self.duplicates_view.start_if_idle()
        return self.duplicates_view

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

    def _chip_thumbnail(self, value: str, side: int) -> QPixmap | None:
        """A chip's picture: ``value`` is an image term's path, or a photo term's file id (Find similar)."""
        path = self._photo_paths.get(value, Path(value))
        self.chip_loader.set_side(side)
        pixmap = self.chip_loader.pixmap(path)
        if pixmap is None:
            self.chip_loader.request(path)
        return pixmap

    def _on_chip_thumbnail_ready(self, path: Path) -> None:
        self.query_bar.on_thumbnail_ready(str(path))
        for file_id, photo in self._photo_paths.items():
            if photo == Path(path):
                self.query_bar.on_thumbnail_ready(file_id)

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
        docks = self._ui.window_state()
        if docks is not None:
            self.restoreState(docks)
        self.describe_dock.setVisible(self._ui.describe_visible())
        default = self._preferences.load().thumbnail_size if self._preferences is not None else DEFAULT_THUMBNAIL_SIZE
        size = self._ui.thumbnail_size(default)
        if size != DEFAULT_THUMBNAIL_SIZE:
            self.results_view.set_thumbnail_size(max(THUMBNAIL_SIZES[0], min(THUMBNAIL_SIZES[-1], size)))
        self._sort = self._ui.sort()
        self.filter_bar.set_sort(self._sort)
        self._filter_button.setChecked(self._ui.filters_visible())
        last = self._ui.last_query()
        if last:
            self.query_bar.model.replace_all(last)  # searches once the library is open

    def save_ui_state(self) -> None:
        if self._ui is None:
            return
        self._ui.set_geometry(self.saveGeometry())
        self._ui.set_splitter(self.splitter.saveState())
        self._ui.set_window_state(self.saveState())
        self._ui.set_describe_visible(self.describe_dock.isVisible())
        self._ui.set_thumbnail_size(self.results_view.thumbnail_size)
        self._ui.set_last_query(self.query_bar.model.terms)
        self._ui.set_filters_visible(self._filter_button.isChecked())
        self._ui.set_sort(self._sort)
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
        self.describe_dock.setEnabled(False)
        self._overlay.show_message("Finishing…", "Saving the index. Everything indexed so far is kept.")
        self.controller.stopped.connect(self._on_engine_stopped)
        self.controller.shutdown()
        # After the controller closed its gate, so no thumbnail job waits for a library that will not open.
        self.thumbnail_loader.shutdown()
        self.chip_loader.shutdown()
        if self.duplicates_view is not None:
            self.duplicates_view.close()  # its own top-level window goes with the app
            self.duplicates_view.shutdown()

    def _on_engine_stopped(self) -> None:
        QTimer.singleShot(0, self.close)  # not from inside closeEvent (a nested close is ignored)


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

