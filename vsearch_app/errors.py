"""Errors that mean "the user's input or environment is wrong", not "VSearch has a bug".

Every layer may raise these (this module is a leaf, like settings). The CLI and the desktop app show their message
as it is, without a traceback; anything else that escapes is a bug and is reported as one.
"""

from __future__ import annotations


class VSearchError(Exception):
    """Base class: the message is written for the user and says what to do."""


class ModelNotFoundError(VSearchError):
    """A model is neither a local folder nor in the hub cache."""


class CheckpointError(VSearchError):
    """A model folder exists but is not a checkpoint we can load (missing files, wrong architecture, bad weights)."""


class ImageDecodeError(VSearchError):
    """A file could not be opened or decoded as an image."""


class InvalidArgumentError(VSearchError):
    """A parameter is outside its allowed range."""


class DownloadError(VSearchError):
    """Fetching a model from the hub failed (offline, gated, not found)."""
