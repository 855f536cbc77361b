"""The engine, Qt-free: everything the CLI and the desktop app do, behind ``core.service`` and ``core.types``.

Three rooms below the seam (docs/ARCHITECTURE.md has the map):

- ``store/``: what is kept on disk: the catalog (the source of truth), the vector index (a cache of it), captions,
  the data folder, its writer lock and atomic file writes. No model code.
- ``engine/``: the models at run time: finding and downloading them, their identity, devices, the embedder and the
  captioner.
- ``library/``: the photo library's work, built on both: scanning and reconciling folders, watching them, indexing,
  queries and search, thumbnails.

``service.py`` (the one API of the front ends) and ``types.py`` (the small frozen dataclasses it returns) sit here,
above the rooms.
"""
