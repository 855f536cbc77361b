"""The desktop app (PySide6). Importing any part of it first applies gui.qtfix (a PySide6 6.12 refcount defect)."""

from vsearch_app.gui import qtfix as _qtfix  # noqa: F401  (applied on import, before any other Qt call of ours)
