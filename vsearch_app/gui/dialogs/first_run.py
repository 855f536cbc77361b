"""The model-missing dialog: what the model is, and a way to get it (download with progress, or a local folder).

``ModelDialog(model_id, download, size_bytes=...)`` for the search model; ``gated=True`` (with ``licence_url``) for
a model whose authors require accepting a licence and a Hugging Face token first (PaliGemma, the caption model).

Pages: the explanation (Download / Choose a Model Folder… / Not Now); the download (bytes done of total, the file
being fetched, Cancel); and, when the download fails with a DownloadError, a plain explanation (offline, or the
licence not accepted) with Try Again. On success the dialog emits ``modelReady(Path)`` and closes as accepted;
``model_path`` holds the folder.

``download`` is called as ``download(token=..., progress=..., cancel=...)``, the keyword arguments of
``core.service.download_model`` (bind the settings and repo id with functools.partial); it runs on a worker
QThread, ``progress`` receives DownloadProgress(done_bytes, total_bytes, current_file) objects and ``cancel`` is a
threading.Event the Cancel button sets. Progress is pulled: the callback only stores the latest report and a GUI
timer paints it, so a download reporting every chunk never floods the event loop. The worker's signals connect to
bound methods of this dialog only (GUI.md: a lambda would run in the worker thread). Closing the dialog during a
download cancels it and closes once the worker has stopped; the thread is always joined.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSize, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent, QFont, QPalette
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from vsearch_app.errors import DownloadError, VSearchError
from vsearch_app.gui import desktop, formatting, icons

log = logging.getLogger(__name__)

Download = Callable[..., object]  # download(token=str | None, progress=callable, cancel=threading.Event) -> Path
FolderCheck = Callable[[Path], "str | None"]  # a problem with the folder, in words, or None when it is usable

PROGRESS_INTERVAL_MS = 100
TOKENS_URL = "https://huggingface.co/settings/tokens"
_ICON_SIDE = 56


def check_model_folder(folder: Path) -> str | None:
    """A quick look at a chosen folder: a model checkpoint has config.json and .safetensors weights. The engine
    checks it fully when it loads it."""
    if not (folder / "config.json").is_file():
        return f"“{folder.name or folder}” does not look like a model folder: it has no config.json."
    if not any(folder.glob("*.safetensors")):
        return f"“{folder.name or folder}” has no .safetensors weights; VSearch cannot load a model from it."
    return None


class _DownloadWorker(QObject):
    """Runs the download on its thread; keeps the latest progress for the GUI to pull."""

    succeeded = Signal(object)  # what download returned (the model folder)
    failed = Signal(object)  # the exception

    def __init__(self, download: Download, token: str | None, cancel: threading.Event) -> None:
        super().__init__()
        self._download = download
        self._token = token
        self._cancel = cancel
        self._lock = threading.Lock()
        self._latest: object | None = None

    @Slot()
    def run(self) -> None:
        try:
            result = self._download(token=self._token, progress=self._on_progress, cancel=self._cancel)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the GUI, which words it
            self.failed.emit(exc)
        else:
            self.succeeded.emit(result)

    def _on_progress(self, progress: object) -> None:
        with self._lock:
            self._latest = progress

    def take_latest(self) -> object | None:
        with self._lock:
            latest, self._latest = self._latest, None
        return latest


class ModelDialog(QDialog):
    """See the module docstring."""

    modelReady = Signal(object)  # Path: the downloaded or chosen model folder

    def __init__(self, model_id: str, download: Download, *, size_bytes: int | None = None, gated: bool = False,
                 licence_url: str | None = None, purpose: str = "search", check_folder: FolderCheck | None = None,
                 open_url: Callable[[str], None] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_id = model_id
        self.model_path: Path | None = None
        self._download = download
        self._size = size_bytes
        self._gated = gated
        self._purpose = purpose
        self._licence_url = licence_url or f"https://huggingface.co/{model_id}"
        self._check_folder = check_folder or check_model_folder
        self._open_url = open_url or desktop.open_url
        self._thread: QThread | None = None
        self._worker: _DownloadWorker | None = None
        self._cancel = threading.Event()
        self._close_when_stopped = False
        self.setWindowTitle("Caption Model" if purpose == "caption" else "Search Model")
        self.setWindowIcon(icons.app_icon())
        self.setMinimumWidth(520)

        self._pages = QStackedWidget(self)
        self._intro = self._build_intro()
        self._progress_page = self._build_progress()
        self._failed_page = self._build_failed()
        for page in (self._intro, self._progress_page, self._failed_page):
            self._pages.addWidget(page)
        column = QVBoxLayout(self)
        column.setContentsMargins(20, 20, 20, 16)
        column.addWidget(self._pages)
        self._show_page(self._intro)

        self._poll = QTimer(self)
        self._poll.setInterval(PROGRESS_INTERVAL_MS)
        self._poll.timeout.connect(self._show_latest_progress)
        self._update_download_enabled()

    # --- pages ---------------------------------------------------------------------------------------------------

    def _build_intro(self) -> QWidget:
        page = QWidget(self)
        size = f", about {formatting.size(self._size)}" if self._size else ""
        if self._purpose == "caption":
            title = "Describing photos needs a caption model"
            body = (f"To write a description of a photo, VSearch uses a captioning model ({self.model_id}{size}). "
                    "It runs on this computer, so your photos never leave it. It is downloaded once from Hugging "
                    "Face.")
        else:
            title = "VSearch needs its search model"
            body = ("The search model is what lets VSearch understand both photos and words, so it can find "
                    "“a dog on the beach” without any tags. It runs entirely on this computer; your photos never "
                    f"leave it. It is downloaded once from Hugging Face ({self.model_id}{size}).")
        self._intro_text = QLabel(body, page)
        rows = [_header(title, page), self._intro_text]
        if self._gated:
            self._intro_text.setText(body + " Its authors ask everyone to accept their licence first.")
            steps = QLabel(
                "<ol style='margin-left:-20px'>"
                f"<li><a href='{self._licence_url}'>Open the model's page</a>, sign in to Hugging Face (free) and "
                "accept the licence.</li>"
                f"<li><a href='{TOKENS_URL}'>Create an access token</a> with “Read” permission.</li>"
                "<li>Paste the token here. VSearch uses it for this download only.</li></ol>", page)
            steps.setTextFormat(Qt.TextFormat.RichText)
            steps.setOpenExternalLinks(False)
            steps.linkActivated.connect(self._on_link)
            steps.setWordWrap(True)
            self.token = QLineEdit(page)
            self.token.setPlaceholderText("hf_…")
            self.token.setEchoMode(QLineEdit.EchoMode.Password)
            self.token.setClearButtonEnabled(True)
            self.token.textChanged.connect(self._update_download_enabled)
            token_row = QHBoxLayout()
            token_row.addWidget(QLabel("Access token:", page))
            token_row.addWidget(self.token, 1)
            rows += [steps, token_row]
        self._intro_status = _secondary(page)
        rows.append(self._intro_status)

        self.choose_button = QPushButton("Choose a Model Folder…", page)
        self.choose_button.setAutoDefault(False)
        self.choose_button.clicked.connect(self.choose_folder)
        self.not_now_button = QPushButton("Not Now", page)
        self.not_now_button.setAutoDefault(False)
        self.not_now_button.clicked.connect(self.reject)
        self.download_button = QPushButton(icons.icon("download", QPalette.ColorRole.ButtonText), "Download", page)
        self.download_button.setDefault(True)
        self.download_button.clicked.connect(self.start_download)
        return _page(page, rows, [self.choose_button, None, self.not_now_button, self.download_button])

    def _build_progress(self) -> QWidget:
        page = QWidget(self)
        what = "caption" if self._purpose == "caption" else "search"
        self._progress_title = _header(f"Downloading the {what} model", page)
        self.progress_bar = QProgressBar(page)
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setTextVisible(False)
        self._progress_text = _secondary(page)
        self._progress_text.setText("Connecting to Hugging Face…")
        source = _secondary(page)
        source.setText(f"{self.model_id}, from Hugging Face")
        self.cancel_button = QPushButton("Cancel", page)
        self.cancel_button.clicked.connect(self.cancel_download)
        return _page(page, [self._progress_title, source, self.progress_bar, self._progress_text],
                     [None, self.cancel_button])

    def _build_failed(self) -> QWidget:
        page = QWidget(self)
        self._failed_text = QLabel(page)
        self._failed_detail = _secondary(page)
        self._failed_detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        choose = QPushButton("Choose a Model Folder…", page)
        choose.setAutoDefault(False)
        choose.clicked.connect(self.choose_folder)
        close = QPushButton("Close", page)
        close.setAutoDefault(False)
        close.clicked.connect(self.reject)
        self.retry_button = QPushButton("Try Again", page)
        self.retry_button.setDefault(True)
        self.retry_button.clicked.connect(self._retry)
        return _page(page, [_header("The model could not be downloaded", page, warning=True), self._failed_text,
                            self._failed_detail], [choose, None, close, self.retry_button])

    # --- state, for the window and tests -------------------------------------------------------------------------

    @property
    def page(self) -> str:
        """"intro", "downloading" or "failed"."""
        return ("intro", "downloading", "failed")[self._pages.currentIndex()]

    @property
    def status_text(self) -> str:
        """The line under the explanation (a cancelled download, an unusable folder)."""
        return self._intro_status.text()

    @property
    def progress_text(self) -> str:
        return self._progress_text.text()

    @property
    def failure_text(self) -> str:
        return f"{self._failed_text.text()}\n{self._failed_detail.text()}"

    @property
    def downloading(self) -> bool:
        return self._thread is not None

    # --- actions -------------------------------------------------------------------------------------------------

    def start_download(self) -> None:
        if self._thread is not None:
            return
        token = (self.token.text().strip() or None) if self._gated else None
        self._cancel = threading.Event()
        self._worker = _DownloadWorker(self._download, token, self._cancel)
        self._thread = QThread(self)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        # Bound slots of this GUI-thread dialog, queued explicitly: they run in the GUI thread, never the worker's.
        self._worker.succeeded.connect(self._on_succeeded, Qt.ConnectionType.QueuedConnection)
        self._worker.failed.connect(self._on_failed, Qt.ConnectionType.QueuedConnection)
        self.progress_bar.setRange(0, 0)
        self._progress_text.setText("Connecting to Hugging Face…")
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        self._show_page(self._progress_page)
        self._thread.start()
        self._poll.start()

    def cancel_download(self) -> None:
        if self._thread is None:
            return
        self._cancel.set()
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")
        self._progress_text.setText("Stopping the download…")

    def choose_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Choose the folder that holds the model", str(Path.home()))
        if not chosen:
            return
        folder = Path(chosen)
        problem = self._check_folder(folder)
        if problem:
            self._intro_status.setText(problem)
            self._show_page(self._intro)
            return
        self._finish(folder)

    def reject(self) -> None:
        if self._thread is not None:  # stop the download first; close when the worker is done
            self._close_when_stopped = True
            self.cancel_download()
            return
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._thread is not None:
            event.ignore()
            self.reject()
            return
        super().closeEvent(event)

    def wait_for_worker(self, timeout_ms: int = 30_000) -> bool:
        """Join the worker thread (for the window's shutdown, and tests)."""
        return self._thread is None or self._thread.wait(timeout_ms)

    # --- worker results (queued into the GUI thread) -------------------------------------------------------------

    @Slot(object)
    def _on_succeeded(self, result: object) -> None:
        cancelled = self._cancel.is_set()
        self._stop_worker()
        if cancelled:
            self._after_cancel()
            return
        self._finish(Path(result) if isinstance(result, (str, Path)) else result)

    @Slot(object)
    def _on_failed(self, error: object) -> None:
        cancelled = self._cancel.is_set()
        self._stop_worker()
        if cancelled:
            self._after_cancel()
            return
        if isinstance(error, DownloadError):
            message = str(error)
            if self._gated:
                explanation = ("Check that you accepted the licence on the model's page with the same account as "
                               "the token, and that the token is correct. Also check the internet connection.")
            else:
                explanation = ("VSearch could not reach Hugging Face, where the model is published; this computer "
                               "may be offline. Check the connection and try again, or choose a model folder "
                               "copied from another computer.")
        else:
            log.error("model download failed", exc_info=error if isinstance(error, BaseException) else None)
            message = f"{type(error).__name__}: {error}" if not isinstance(error, VSearchError) else str(error)
            explanation = "Something went wrong while downloading the model."
        explanation += (" Everything else keeps working: your folders stay watched, and search starts once the "
                        "model is here." if self._purpose == "search" else "")
        self._failed_text.setText(explanation)
        self._failed_detail.setText(message)
        self._show_page(self._failed_page)

    # --- internals -----------------------------------------------------------------------------------------------

    def _show_page(self, page: QWidget) -> None:
        # A stack is as big as its biggest page; size the dialog to the page shown, wrapped text included.
        for other in (self._intro, self._progress_page, self._failed_page):
            policy = QSizePolicy.Policy.Preferred if other is page else QSizePolicy.Policy.Ignored
            other.setSizePolicy(policy, policy)
        self._pages.setCurrentWidget(page)
        page.adjustSize()
        self.adjustSize()

    def _show_latest_progress(self) -> None:
        if self._worker is None:
            return
        progress = self._worker.take_latest()
        if progress is None or self._cancel.is_set():
            return
        done = int(getattr(progress, "done_bytes", 0) or 0)
        total = int(getattr(progress, "total_bytes", 0) or 0)
        current = getattr(progress, "current_file", None)
        if total > 0:
            # QProgressBar holds an int: count in KB so models over 2 GB still fit.
            self.progress_bar.setRange(0, max(1, total // 1000))
            self.progress_bar.setValue(min(done, total) // 1000)
            text = f"{formatting.size(done)} of {formatting.size(total)}"
        else:
            self.progress_bar.setRange(0, 0)
            text = f"{formatting.size(done)} so far" if done else "Connecting to Hugging Face…"
        if current:
            text += f" · {Path(str(current)).name}"
        self._progress_text.setText(text)

    def _stop_worker(self) -> None:
        self._poll.stop()
        thread, worker = self._thread, self._worker
        self._thread = self._worker = None
        if thread is not None:
            thread.quit()
            thread.wait()  # the worker's run has returned (it emitted), so this is immediate
            thread.deleteLater()
        if worker is not None:
            worker.deleteLater()

    def _after_cancel(self) -> None:
        if self._close_when_stopped:
            self._close_when_stopped = False
            super().reject()
            return
        self._intro_status.setText("Download cancelled.")
        self._show_page(self._intro)

    def _retry(self) -> None:
        self._show_page(self._intro)
        if not self._gated or self.token.text().strip():
            self.start_download()

    def _finish(self, path: object) -> None:
        self.model_path = path if isinstance(path, Path) else None
        self.modelReady.emit(path)
        self.accept()

    def _on_link(self, url: str) -> None:
        try:
            self._open_url(url)
        except VSearchError as exc:
            self._intro_status.setText(f"{exc}. Open it yourself: {url}")

    def _update_download_enabled(self, *_args) -> None:
        needs_token = self._gated and not self.token.text().strip()
        self.download_button.setEnabled(not needs_token)
        self.download_button.setToolTip("Paste an access token first" if needs_token else "")


def _header(title: str, parent: QWidget, *, warning: bool = False) -> QWidget:
    row = QWidget(parent)
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 4)
    layout.setSpacing(14)
    picture = QLabel(row)
    side = _ICON_SIDE - 16 if warning else _ICON_SIDE  # a line icon looks heavier than the logo at one size
    picture.setPixmap((icons.icon("warning") if warning else icons.app_icon()).pixmap(QSize(side, side),
                                                                                      parent.devicePixelRatioF()))
    picture.setFixedSize(_ICON_SIDE, _ICON_SIDE)
    picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label = QLabel(title, row)
    label.setWordWrap(True)
    font = label.font()
    if font.pointSizeF() > 0:
        font.setPointSizeF(font.pointSizeF() * 1.3)
    font.setWeight(QFont.Weight.DemiBold)
    label.setFont(font)
    layout.addWidget(picture)
    layout.addWidget(label, 1)
    return row


def _secondary(parent: QWidget) -> QLabel:
    label = QLabel(parent)
    label.setWordWrap(True)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


def _page(page: QWidget, rows: list, buttons: list) -> QWidget:
    """Lay out a page: the rows (widgets or layouts) top to bottom, then a row of buttons (None: a stretch)."""
    column = QVBoxLayout(page)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(10)
    for row in rows:
        if isinstance(row, QWidget):
            if isinstance(row, QLabel):
                row.setWordWrap(True)
            column.addWidget(row)
        else:
            column.addLayout(row)
    column.addStretch(1)
    column.addSpacing(8)
    button_row = QHBoxLayout()
    for button in buttons:
        if button is None:
            button_row.addStretch(1)
        else:
            button_row.addWidget(button)
    column.addLayout(button_row)
    return page
