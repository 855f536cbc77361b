"""docs/ARCHITECTURE.md matches the code: every module of the package is named there, and every module (and
package) it names exists. Adding, moving or removing a module therefore fails this test until the map says so."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "vsearch_app"
DOC = REPO / "docs" / "ARCHITECTURE.md"
OUTSIDE_PACKAGE = ("tests", "benchmarks", "docs", "installer")  # paths from the repository root, not the package

_QUOTED_PATH = re.compile(r"`([A-Za-z0-9_][A-Za-z0-9_./]*)`")


def _named_paths(text: str) -> tuple[set[str], set[str]]:
    """The modules (``x/y.py``) and packages (``x/y/``) the document names in backquotes."""
    modules, folders = set(), set()
    for token in _QUOTED_PATH.findall(text):
        token = token.removeprefix("vsearch_app/")
        if token.endswith(".py"):
            modules.add(token)
        elif token.endswith("/") and token.count("/") >= 1:
            folders.add(token)
    return modules, folders


def _resolve(token: str) -> Path:
    base = REPO if token.split("/")[0] in OUTSIDE_PACKAGE else PACKAGE
    return base / token


def _package_modules() -> set[str]:
    """Every module of the package, as the document names it; a package's __init__.py is named by its folder."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if "__pycache__" in relative.parts:
            continue
        if path.name == "__init__.py" and relative.parent != Path("."):
            continue
        found.add(relative.as_posix())
    return found


def _package_folders() -> set[str]:
    return {f"{p.parent.relative_to(PACKAGE).as_posix()}/" for p in PACKAGE.rglob("__init__.py")
            if p.parent != PACKAGE and "__pycache__" not in p.parts}


def test_every_module_of_the_package_is_in_the_architecture_doc():
    modules, folders = _named_paths(DOC.read_text(encoding="utf-8"))
    missing = sorted(_package_modules() - modules) + sorted(_package_folders() - folders)
    assert not missing, "docs/ARCHITECTURE.md does not name (say what each does):\n" + "\n".join(missing)


def test_every_module_the_architecture_doc_names_exists():
    modules, folders = _named_paths(DOC.read_text(encoding="utf-8"))
    gone = sorted(m for m in modules if not _resolve(m).is_file())
    gone += sorted(f for f in folders if f.split("/")[0] in {*OUTSIDE_PACKAGE, *(p.name for p in PACKAGE.iterdir())}
                   and not _resolve(f).is_dir())
    assert not gone, "docs/ARCHITECTURE.md names what does not exist:\n" + "\n".join(gone)


def test_the_checker_sees_both_kinds_of_mistake(tmp_path):
    text = "`core/service.py` `core/nowhere.py` `gui/views/` `tests/test_layering.py`"
    modules, folders = _named_paths(text)
    assert modules == {"core/service.py", "core/nowhere.py", "tests/test_layering.py"} and folders == {"gui/views/"}
    assert not _resolve("core/nowhere.py").is_file() and _resolve("tests/test_layering.py").is_file()
    assert "core/store/catalog.py" in _package_modules() - modules  # a module the text does not name is caught


def test_the_readme_links_the_doc_and_points_nowhere_outside_the_repository():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "docs/ARCHITECTURE.md" in readme
    outside = re.findall(r"\.\./[^\s)`'\"]+", readme)
    assert not outside, f"the README points outside the repository: {outside}"
