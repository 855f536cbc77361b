"""The facts every packaging file must agree on: app name, identifiers, executables and icon paths.

One place for them, read by the spec and build.py; the files PyInstaller cannot import (the Inno Setup script, the
macOS DMG script, the GitHub workflows) repeat them, and tests/installer/test_consistency.py checks each copy
against this module. Stdlib only: it is imported by the spec inside the build venv and by the tests in the dev venv.

The version is not here: it comes from the package itself (``vsearch_app.__version__``, equal to pyproject's), and
the scripts receive it from the build (``/DAppVersion=`` for Inno, an argument for make_dmg.sh).
"""

from __future__ import annotations

import re
from pathlib import Path

APP_NAME = "VSearch"                       # window title, bundle folder dist/VSearch, VSearch.app, installer names
BUNDLE_ID = "io.github.vsearch.VSearch"    # macOS CFBundleIdentifier
# Inno Setup's AppId: fixed forever, so a newer installer recognises (and upgrades) an older installation.
WINDOWS_APP_ID = "{6D3F2A51-8C47-4B7E-9E2A-5F0C1D8B7A34}"
MIN_MACOS = "14.0"                         # torch 2.13's arm64 wheels need macOS 14

# Executables inside dist/VSearch/. Windows gets a windowed app and a console CLI sharing one _internal/ (names
# that differ by more than case); Linux and macOS one executable that is both (no command opens the app).
EXE_LINUX = "vsearch"
EXE_MACOS = "VSearch"                      # VSearch.app/Contents/MacOS/VSearch
EXE_WINDOWS_GUI = "VSearch"                # VSearch.exe
EXE_WINDOWS_CLI = "vsearch-cli"            # vsearch-cli.exe

REPO_ROOT = Path(__file__).resolve().parent.parent
ICON_SVG = Path("vsearch_app", "resources", "app.svg")   # the one source: the window icon and every icon file
ICON_DIR = Path("build", "icons")          # where build.py renders app.ico / app.icns / app.png (never committed)
ICON_ICO = ICON_DIR / "app.ico"
ICON_ICNS = ICON_DIR / "app.icns"
ICON_PNG = ICON_DIR / "app.png"
DIST_DIR = Path("dist", APP_NAME)


def package_version(root: Path = REPO_ROOT) -> str:
    """``__version__`` read from the source (not imported: the spec runs before anything is importable)."""
    text = (root / "vsearch_app" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not match:
        raise RuntimeError("vsearch_app/__init__.py has no __version__ line")
    return match.group(1)


def numeric_version(version: str) -> str:
    """The leading X.Y.Z of a version, as Windows version resources and Inno's VersionInfoVersion need it."""
    parts = re.findall(r"\d+", version.split("+")[0].split("-")[0])[:3]
    return ".".join((parts + ["0", "0", "0"])[:3])
