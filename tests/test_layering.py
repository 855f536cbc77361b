"""The layering rules of docs/ARCHITECTURE.md, checked by reading every module's imports.

Imports are read from the source: ``import`` and ``from ... import`` statements anywhere in a module (inside
functions too), and imports by name at run time (``importlib.import_module("...")`` or ``__import__("...")``) when the
name is a literal string, a module-level constant, or a loop over a module-level list or tuple of literal strings.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vsearch_app"
QT = ("PySide6", "shiboken6")
LEAF_FORBIDDEN = ("torch", "numpy", "sqlite3", "hnswlib", *QT)
CORE_BASICS = ("core.types", "errors", "log", "settings")

# For each layer (core is split into its rooms): the vsearch_app modules it may import (prefix match) and the
# third-party roots it must not import.
RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "errors": ((), LEAF_FORBIDDEN),
    "settings": ((), LEAF_FORBIDDEN),
    "log": ((), LEAF_FORBIDDEN),
    "resources": ((), LEAF_FORBIDDEN),
    "modeling": (("modeling", "errors"), ("sqlite3", "hnswlib", "watchdog", "huggingface_hub", *QT)),
    "preprocessing": (("preprocessing", "errors"), ("sqlite3", "hnswlib", "watchdog", "huggingface_hub", *QT)),
    # core.types is what the front ends see: plain dataclasses, importable without anything heavy.
    "core.types": ((), ("torch", "sqlite3", "hnswlib", "watchdog", "huggingface_hub", "PIL", *QT)),
    # The rooms: store at the bottom (no models), engine on it (the caption session keeps captions), library on both.
    "core.store": (("core.store", *CORE_BASICS), ("torch", "PIL", "watchdog", "huggingface_hub", *QT)),
    "core.engine": (("core.engine", "core.store", "modeling", "preprocessing", *CORE_BASICS),
                    ("hnswlib", "watchdog", *QT)),
    "core.library": (("core.library", "core.store", "core.engine", "preprocessing", *CORE_BASICS), ("torch", *QT)),
    "core.service": (("core", "settings", "log", "errors"), ("torch", *QT)),
    "core": (("core", "settings", "log", "errors"), QT),  # core/__init__.py
    "training": (("training", "core", "modeling", "preprocessing", "settings", "log", "errors"), QT),
    "cli": (("cli", "core.service", "core.types", "training.api", "settings", "log", "errors"), QT),
    "gui": (("gui", "core.service", "core.types", "settings", "log", "errors", "resources"), ()),
}

# Imports by name at run time that break a rule on purpose, per file, each with its reason.
DYNAMIC_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("cli/main.py", "vsearch_app.gui.app"): "`vsearch` with no command opens the desktop app; it is imported only "
    "then, so every command works (and `--help` stays fast) without PySide6, and a missing PySide6 is a message",
    ("cli/selftest_cmd.py", "vsearch_app.gui.selftest"): "`vsearch self-test` drives the real window; imported only "
    "when that command runs, for the same reasons as the desktop app itself",
}


class Import(NamedTuple):
    lineno: int
    module: str
    dynamic: bool = False  # by name at run time (importlib), not an import statement


def _layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if not parts:
        return ""
    if parts[0] == "core" and len(parts) > 1:
        room = f"core.{parts[1]}"  # a room (store, engine, library), or service or types
        return room if room in RULES else "core"  # a new module beside them gets core's rule until it has its own
    return parts[0]


def _is_import_call(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module" and isinstance(func.value, ast.Name) and func.value.id == "importlib"
    return isinstance(func, ast.Name) and func.id in ("import_module", "__import__")


def _module_constants(tree: ast.Module) -> dict[str, list[str]]:
    """Module-level names bound to a literal string, or to a list or tuple of literal strings."""
    constants: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            strings = [value.value]
        elif isinstance(value, (ast.List, ast.Tuple)) and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts
        ):
            strings = [e.value for e in value.elts]
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                constants[target.id] = strings
    return constants


def _loop_sources(tree: ast.Module) -> dict[str, str]:
    """Loop variables that iterate over a module-level name: ``for name in COMMANDS`` -> {"name": "COMMANDS"}."""
    return {node.target.id: node.iter.id for node in ast.walk(tree)
            if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and isinstance(node.iter, ast.Name)}


def _dynamic_names(arg: ast.expr, constants: dict[str, list[str]], loops: dict[str, str]) -> list[str]:
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [arg.value]
    if isinstance(arg, ast.Name):
        if arg.id in constants and len(constants[arg.id]) == 1:
            return constants[arg.id]
        if arg.id in loops:
            return constants.get(loops[arg.id], [])
    return []  # computed at run time: nothing to check


def _imports(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []
    package_parts = ("vsearch_app", *path.relative_to(PACKAGE).parent.parts)
    constants, loops = _module_constants(tree), _loop_sources(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(Import(node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join((*base, node.module)) if node.module else ".".join(base)
            else:
                module = node.module or ""
            # "from vsearch_app.core import service" imports the module vsearch_app.core.service.
            found.extend(Import(node.lineno, f"{module}.{alias.name}") for alias in node.names)
            found.append(Import(node.lineno, module))
        elif isinstance(node, ast.Call) and node.args and _is_import_call(node.func):
            found.extend(Import(node.lineno, name, dynamic=True)
                         for name in _dynamic_names(node.args[0], constants, loops))
    return found


def _violations(path: Path) -> list[str]:
    layer = _layer_of(path)
    if layer not in RULES:
        return []
    allowed_internal, forbidden_external = RULES[layer]
    relative = path.relative_to(PACKAGE).as_posix()
    imports = _imports(path)
    problems = []
    for found in imports:
        if found.dynamic and (relative, found.module) in DYNAMIC_EXCEPTIONS:
            continue
        parts = found.module.split(".")
        how = "imports by name" if found.dynamic else "imports"
        if parts[0] == "vsearch_app":
            target = ".".join(parts[1:])
            if not target or target == "__version__":  # the package root is a leaf
                continue
            if not any(target == a or target.startswith(a + ".") for a in allowed_internal):
                # A "from pkg import name" also yields "pkg"; only flag the most specific form.
                if any(other.module.startswith(found.module + ".") for other in imports
                       if other.lineno == found.lineno):
                    continue
                problems.append(f"{relative}:{found.lineno} {layer} {how} vsearch_app.{target}")
        elif parts[0] in forbidden_external:
            problems.append(f"{relative}:{found.lineno} {layer} {how} {found.module}")
    return problems


def test_every_module_respects_the_layers():
    problems = [p for path in sorted(PACKAGE.rglob("*.py")) for p in _violations(path)]
    assert not problems, "layering violations:\n" + "\n".join(problems)


def test_every_dynamic_exception_is_still_needed():
    """An exception whose import is gone must go too, or it would silently allow the next one."""
    seen = {(path.relative_to(PACKAGE).as_posix(), found.module)
            for path in PACKAGE.rglob("*.py") for found in _imports(path) if found.dynamic}
    assert set(DYNAMIC_EXCEPTIONS) <= seen


def _check(tmp_path, layer_file: str, source: str) -> list[str]:
    fake = tmp_path / "vsearch_app"
    target = fake / layer_file
    target.parent.mkdir(parents=True)
    target.write_text(source)
    globals()["PACKAGE"] = fake
    try:
        return _violations(target)
    finally:
        globals()["PACKAGE"] = Path(__file__).resolve().parents[1] / "vsearch_app"


@pytest.mark.parametrize(
    ("layer_file", "source", "expected"),
    [
        ("modeling/x.py", "import PySide6.QtCore\n", "imports PySide6"),
        ("modeling/x.py", "from vsearch_app.core import service\n", "imports vsearch_app.core.service"),
        ("cli/x.py", "from vsearch_app.core.store.catalog import Catalog\n", "imports vsearch_app.core.store.catalog"),
        ("core/x.py", "from PySide6 import QtWidgets\n", "imports PySide6"),
        ("modeling/x.py", "from ..core import service\n", "imports vsearch_app.core.service"),
        # the rooms of core
        ("core/store/x.py", "from vsearch_app.core.engine import embedder\n", "imports vsearch_app.core.engine"),
        ("core/store/x.py", "import torch\n", "core.store imports torch"),
        ("core/engine/x.py", "from ..library.search import SearchResults\n", "imports vsearch_app.core.library"),
        ("core/library/x.py", "from vsearch_app.core.service import LibraryService\n",
         "imports vsearch_app.core.service"),
        ("core/library/x.py", "import torch\n", "core.library imports torch"),
        ("core/types.py", "from vsearch_app.core.store.catalog import FileRecord\n", "imports vsearch_app.core.store"),
        # by name at run time
        ("cli/x.py", "import importlib\nimportlib.import_module('vsearch_app.core.store.catalog')\n",
         "imports by name vsearch_app.core.store.catalog"),
        ("cli/x.py", "from importlib import import_module\nimport_module('PySide6.QtCore')\n",
         "imports by name PySide6.QtCore"),
        ("cli/x.py", "import importlib\nNAME = 'vsearch_app.gui.app'\nimportlib.import_module(NAME)\n",
         "imports by name vsearch_app.gui.app"),
        ("cli/x.py", "import importlib\nMODS = ['vsearch_app.cli.a', 'vsearch_app.core.library.library']\n"
                     "def f():\n    for name in MODS:\n        importlib.import_module(name)\n",
         "imports by name vsearch_app.core.library.library"),
        ("modeling/x.py", "__import__('vsearch_app.core.service')\n", "imports by name vsearch_app.core.service"),
        # the exception is for cli/main.py only
        ("cli/x.py", "import importlib\nimportlib.import_module('vsearch_app.gui.app')\n",
         "imports by name vsearch_app.gui.app"),
    ],
)
def test_checker_catches_violations(tmp_path, layer_file, source, expected):
    problems = _check(tmp_path, layer_file, source)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("layer_file", "source"),
    [
        ("cli/x.py", "from vsearch_app.core.service import Service\nfrom vsearch_app.core import types\n"),
        ("cli/main.py", "import importlib\nimportlib.import_module('vsearch_app.gui.app')\n"),
        ("cli/x.py", "import importlib\nfor name in ['a', 'b']:\n    importlib.import_module(name)\n"),
        ("core/engine/x.py", "from vsearch_app.core.store import captions\nfrom vsearch_app.modeling import siglip\n"),
        ("core/library/x.py", "from ..engine.model_identity import display_name\nfrom ..store import catalog\n"),
        ("core/service.py", "from vsearch_app.core.library.library import Library\n"),
    ],
)
def test_checker_accepts_allowed_imports(tmp_path, layer_file, source):
    assert _check(tmp_path, layer_file, source) == []
