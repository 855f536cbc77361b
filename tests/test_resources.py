"""The one resource locator finds every shipped file in a checkout, a wheel and a PyInstaller bundle."""

from __future__ import annotations

import fnmatch
import sys
import tomllib
from pathlib import Path

import pytest

from vsearch_app import resources
from vsearch_app.resources import icon_names, resource_path

ROOT = Path(__file__).resolve().parents[1]
EXPECTED_ICONS = {
    "search", "add-folder", "remove", "reveal", "pause", "play", "stop", "close", "plus", "minus", "image",
    "settings", "warning", "error", "refresh", "caption",
}


def test_every_icon_the_app_needs_is_there():
    assert EXPECTED_ICONS <= set(icon_names())
    assert resource_path("app.svg").is_file()


def test_icons_are_single_colour_line_drawings():
    for name in icon_names():
        svg = resource_path("icons", f"{name}.svg").read_text(encoding="utf-8")
        assert 'viewBox="0 0 24 24"' in svg, name
        assert "currentColor" in svg, name
        assert "#" not in svg, f"{name}.svg hard-codes a colour; it must be recolourable"


def test_missing_file_names_itself():
    with pytest.raises(FileNotFoundError, match="nope.svg"):
        resource_path("icons", "nope.svg")


def test_frozen_bundle_is_looked_up_in_meipass(tmp_path, monkeypatch):
    bundled = tmp_path / "vsearch_app" / "resources" / "icons"
    bundled.mkdir(parents=True)
    (bundled / "search.svg").write_text("<svg/>")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resource_path("icons", "search.svg") == bundled / "search.svg"
    assert icon_names() == ["search"]


def test_frozen_without_bundled_resources_falls_back_to_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resource_path("app.svg") == Path(resources.__file__).resolve().parent / "app.svg"


def test_wheel_package_data_covers_every_resource_file():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["vsearch_app.resources"]
    folder = ROOT / "vsearch_app" / "resources"
    shipped = [p.relative_to(folder).as_posix() for p in folder.rglob("*")
               if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert shipped
    missed = [f for f in shipped if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert not missed, f"not in [tool.setuptools.package-data]: {missed}"
