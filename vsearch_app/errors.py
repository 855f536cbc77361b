"""Errors that mean "the user's input or environment is wrong", not "VSearch has a bug".

Every layer may raise these (this module is a leaf, like settings). The CLI and the desktop app show their message
as it is, without a traceback; anything else that escapes is a bug and is reported as one.
"""

from __future__ import annotations


class VSearchError(Exception):
    """Base class: the message is written for the user and says what to do.

    ``param`` names the setting the error concerns, as the engine's API spells it ("limit", "threshold", "folder",
    "model", "data_dir", ...), or None. Messages raised by the engine never name a command-line flag or a window's
    field: each front end renders ``param`` in its own words (the CLI as its flag, see cli/options.py; the desktop
    app as the field's label)."""

    param: str | None = None

    def __init__(self, *args: object, param: str | None = None) -> None:
        super().__init__(*args)
        if param is not None:
            self.param = param


class ModelNotFoundError(VSearchError):
    """A model is neither a local folder nor in the hub cache."""


class CheckpointError(VSearchError):
    """A model folder exists but is not a checkpoint we can load (missing files, wrong architecture, bad weights)."""


class ImageDecodeError(VSearchError):
    """A file could not be opened or decoded as an image. The message names the file; ``reason`` is the why alone,
    for callers that show the file themselves (a catalog row, a batch report)."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message


class InvalidArgumentError(VSearchError):
    """A parameter is outside its allowed range: ``InvalidArgumentError("...", param="limit")``."""


class DownloadError(VSearchError):
    """Fetching a model from the hub failed (offline, gated, not found)."""


class DownloadCancelled(VSearchError):
    """The user stopped a model download. Files already fetched stay in the hub cache; a later download fetches
    only the rest, and the model is not usable until one completes."""


class NothingToSearchError(VSearchError):
    """A search that cannot find anything, and why, so each front end can say what to do in its own words.

    ``reason``: "no_folders" (no folder is watched), "no_photos" (the folders hold no photos), "not_indexed" (photos
    wait to be embedded with this model), "other_model" (only other models have vectors for these photos), or
    "unavailable" (every photo is offline or could not be read). ``model`` is the search model's name, ``pending``
    the photos waiting for it, ``other_models`` maps other models' names to their photo counts."""

    def __init__(self, message: str, *, reason: str, model: str, pending: int = 0,
                 other_models: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.model = model
        self.pending = pending
        self.other_models = dict(other_models or {})


class CatalogError(VSearchError):
    """The catalog database cannot be used (newer than this VSearch, damaged, locked too long, or not a catalog)."""


class CatalogDamagedError(CatalogError):
    """The catalog file is damaged (truncated, overwritten, malformed pages). Opening a library restores it from its
    backup or starts a new one and says so (core/store/catalog_recovery.py); this reaches the user only when that
    cannot be done (a read-only data folder)."""


class DiskFullError(VSearchError):
    """The disk holding VSearch's data folder is full: nothing was lost, the work stops until space is freed."""


class CatalogDiskFullError(DiskFullError, CatalogError):
    """The catalog could not commit because its disk is full (the batch is rolled back; earlier ones are kept)."""


class DataDirError(VSearchError):
    """VSearch's data folder cannot be used: it is a file, or it cannot be created or written."""


class LibraryBusyError(VSearchError):
    """Another process is already indexing this data folder (core/store/writer_lock.py); searching still works."""


class OperationCancelled(VSearchError):
    """A long operation (a folder scan, an index rebuild, a model warm-up) stopped because it was asked to."""


class LibraryClosedError(VSearchError):
    """The library session was closed; nothing more can be done with it (open a new one)."""
