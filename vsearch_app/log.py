"""Logging set-up shared by the CLI and the desktop app."""

from __future__ import annotations

import logging
import os

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else getattr(logging, os.environ.get("VSEARCH_LOG_LEVEL", "WARNING").upper(), 30)
    logging.basicConfig(level=level, format=_FORMAT)
