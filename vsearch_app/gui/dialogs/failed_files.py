"""The list of files that could not be indexed, each with the reason in words, sortable, with Reveal and Copy Path.

``FailedFilesDialog(failed)``; ``set_failed(list[FailedFile])`` refreshes it while open (indexing goes on). Reveal
and Copy Path act on the desktop directly (gui.desktop; injectable for tests): they are not engine calls. A file
that has gone since it failed gives a one-line note in the dialog, not an error box.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QSize, QSortFilterProxyModel, Qt
from PySide6.QtGui import QKeySequence, QPalette, QShortcut, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from vsearch_app.core.types import FailedFile
from vsearch_app.errors import VSearchError
from vsearch_app.gui import desktop, formatting, icons

COLUMNS = ("Name", "Reason", "Folder")
PATH_ROLE = Qt.ItemDataRole.UserRole + 1

Reveal = Callable[[Path], None]
Copy = Callable[[list[Path]], None]


class FailedFilesDialog(QDialog):
    """See the module docstring."""

    def __init__(self, failed: Sequence[FailedFile] = (), parent: QWidget | None = None, *,
                 reveal: Reveal | None = None, copy: Copy | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Files VSearch Could Not Read")
        self.setWindowIcon(icons.app_icon())
        self.resize(780, 420)
        self._reveal = reveal or desktop.reveal_in_file_manager
        self._copy = copy or desktop.copy_paths

        self._summary = QLabel(self)
        self._summary.setWordWrap(True)
        explanation = QLabel("VSearch skips these files. It tries each again when the file changes, for example "
                             "after you re-save it.", self)
        explanation.setWordWrap(True)
        explanation.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        self._model = QStandardItemModel(0, len(COLUMNS), self)
        self._model.setHorizontalHeaderLabels(list(COLUMNS))
        # Sorted as people expect names to be: "beach.jpg" before "IMG_0001.jpg", in the user's language.
        self._sorted = QSortFilterProxyModel(self)
        self._sorted.setSourceModel(self._model)
        self._sorted.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._sorted.setSortLocaleAware(True)
        self._sorted.setDynamicSortFilter(False)  # set_failed fills, then sorts once
        self._table = QTableView(self)
        self._table.setModel(self._sorted)
        self._table.setSortingEnabled(True)
        self._table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._table.setAlternatingRowColors(True)
        self._table.setShowGrid(False)
        self._table.setWordWrap(False)
        self._table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self._table.verticalHeader().hide()
        self._table.verticalHeader().setDefaultSectionSize(self._table.fontMetrics().height() + 10)
        header = self._table.horizontalHeader()
        header.setHighlightSections(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, 200)
        header.resizeSection(2, 220)
        self._table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self._table.doubleClicked.connect(self._on_double_clicked)
        self._table.selectionModel().selectionChanged.connect(self._update_buttons)

        self._note = QLabel(self)
        self._note.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        self._reveal_button = QPushButton(icons.icon("reveal", QPalette.ColorRole.ButtonText), "Show in Folder", self)
        self._reveal_button.clicked.connect(self.reveal_selected)
        self._copy_button = QPushButton(icons.icon("copy", QPalette.ColorRole.ButtonText), "Copy Path", self)
        self._copy_button.clicked.connect(self.copy_selected)
        for button in (self._reveal_button, self._copy_button):
            button.setIconSize(QSize(16, 16))
            button.setAutoDefault(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        QShortcut(QKeySequence.StandardKey.Copy, self._table, self.copy_selected)

        actions = QHBoxLayout()
        actions.addWidget(self._reveal_button)
        actions.addWidget(self._copy_button)
        actions.addSpacing(8)
        actions.addWidget(self._note, 1)
        actions.addWidget(buttons)

        column = QVBoxLayout(self)
        column.addWidget(self._summary)
        column.addWidget(explanation)
        column.addSpacing(4)
        column.addWidget(self._table, 1)
        column.addLayout(actions)
        self.set_failed(failed)

    def set_failed(self, failed: Sequence[FailedFile]) -> None:
        selected = set(self.selected_paths())
        self._model.removeRows(0, self._model.rowCount())
        for entry in failed:
            path = Path(entry.path)
            row = [QStandardItem(path.name or str(path)), QStandardItem(entry.reason), QStandardItem(str(path.parent))]
            for item in row:
                item.setData(path, PATH_ROLE)
                item.setToolTip(f"{path}\n{entry.reason}")
            self._model.appendRow(row)
        header = self._table.horizontalHeader()
        self._sorted.sort(header.sortIndicatorSection(), header.sortIndicatorOrder())
        self._summary.setText(f"<b>{formatting.plural(len(failed), 'file')} could not be indexed</b>" if failed
                              else "<b>Every photo could be read.</b>")
        rows = [row for row, path in enumerate(self.paths()) if path in selected] or [0][: self._sorted.rowCount()]
        self.select_rows(rows)

    def paths(self) -> list[Path]:
        """Every path, in the order shown (after sorting)."""
        return [self._sorted.index(row, 0).data(PATH_ROLE) for row in range(self._sorted.rowCount())]

    def selected_paths(self) -> list[Path]:
        rows = sorted(index.row() for index in self._table.selectionModel().selectedRows())
        return [self._sorted.index(row, 0).data(PATH_ROLE) for row in rows]

    def select_rows(self, rows: Sequence[int]) -> None:
        """Select these rows (in the order shown) and nothing else."""
        selection = self._table.selectionModel()
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        selection.clearSelection()
        for row in rows:
            selection.select(self._sorted.index(row, 0), flags)
        if rows:
            selection.setCurrentIndex(self._sorted.index(rows[0], 0), QItemSelectionModel.SelectionFlag.NoUpdate)
        self._update_buttons()

    @property
    def table(self) -> QTableView:
        return self._table

    @property
    def note(self) -> str:
        return self._note.text()

    def reveal_selected(self) -> None:
        paths = self.selected_paths()
        if not paths:
            return
        try:
            self._reveal(paths[0])
        except VSearchError as exc:
            self._note.setText(str(exc))
        else:
            self._note.setText("")

    def copy_selected(self) -> None:
        paths = self.selected_paths()
        if paths:
            self._copy(paths)
            self._note.setText("Path copied" if len(paths) == 1 else f"{formatting.count(len(paths))} paths copied")

    def _on_double_clicked(self, _index) -> None:
        self.reveal_selected()

    def _update_buttons(self, *_args) -> None:
        has_selection = bool(self._table.selectionModel().selectedRows())
        self._reveal_button.setEnabled(has_selection)
        self._copy_button.setEnabled(has_selection)
