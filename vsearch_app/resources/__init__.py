"""Files the app ships besides code: the SVG icon set (``icons/``) and the app icon (``app.svg``).

Why they live inside the package rather than in a top-level ``resources/`` folder: one relative location then works
in all three ways the app runs, so there is exactly one locator (``resource_path``) and no per-case guessing:

- a source checkout or editable install: the files sit next to this module;
- a wheel (``pip install .``): ``[tool.setuptools.package-data]`` in pyproject.toml ships them inside the package,
  so they land next to this module in site-packages (a test checks the globs cover every file here);
- a PyInstaller bundle: the spec collects this folder as data under the same relative path, ``vsearch_app/resources``
  inside ``sys._MEIPASS``; the locator looks there first when frozen.

A leaf module: stdlib only, no Qt, so the installer scripts and any layer may ask where a file is.

The icons are 24 px line drawings stroked with ``currentColor``; gui.icons recolours them to the palette.
"""

from __future__ import annotations

import sys
from pathlib import Path

_PACKAGE_RELATIVE = Path("vsearch_app", "resources")


def resource_path(*parts: str) -> Path:
    """The path of a shipped file, e.g. ``resource_path("icons", "search.svg")``; with no parts, the folder itself.

    Raises FileNotFoundError naming the file when it is missing (a broken install or bundle), so callers never
    quietly show a blank icon."""
    path = _resource_root().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"VSearch resource {Path(*parts)} is missing from {path.parent} (broken install?)")
    return path


def icon_names() -> list[str]:
    """Names of the line icons (file stems under ``icons/``), sorted."""
    return sorted(p.stem for p in resource_path("icons").glob("*.svg"))


def _resource_root() -> Path:
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        bundled = Path(bundle) / _PACKAGE_RELATIVE
        if bundled.is_dir():
            return bundled
    return Path(__file__).resolve().parent
