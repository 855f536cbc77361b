"""Dialogs of the desktop app: first run (model download), settings, failed files."""
