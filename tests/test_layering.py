"""The layering rules of ARCHITECTURE.md, checked by reading every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vsearch_app"
QT = ("PySide6", "shiboken6")

# For each layer: the vsearch_app modules it may import (prefix match) and third-party roots it must not import.
RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "errors": ((), ("torch", "numpy", "sqlite3", "hnswlib", *QT)),
    "settings": ((), ("torch", "numpy", "sqlite3", "hnswlib", *QT)),
    "log": ((), ("torch", "numpy", "sqlite3", "hnswlib", *QT)),
    "resources": ((), ("torch", "numpy", "sqlite3", "hnswlib", *QT)),
    "modeling": (("modeling", "errors"), ("sqlite3", "hnswlib", "watchdog", "huggingface_hub", *QT)),
    "preprocessing": (("preprocessing", "errors"), ("sqlite3", "hnswlib", "watchdog", "huggingface_hub", *QT)),
    "core": (("core", "modeling", "preprocessing", "settings", "log", "errors"), QT),
    "training": (("training", "core", "modeling", "preprocessing", "settings", "log", "errors"), QT),
    "cli": (("cli", "core.service", "core.types", "training.api", "settings", "log", "errors"), QT),
    "gui": (("gui", "core.service", "core.types", "settings", "log", "errors", "resources"), ()),
}


def _layer_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py") if rel.parts else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    package_parts = ("vsearch_app", *path.relative_to(PACKAGE).parent.parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join((*base, node.module)) if node.module else ".".join(base)
            else:
                module = node.module or ""
            # "from vsearch_app.core import service" imports the module vsearch_app.core.service.
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
            found.append((node.lineno, module))
    return found


def _violations(path: Path) -> list[str]:
    layer = _layer_of(path)
    if layer not in RULES:
        return []
    allowed_internal, forbidden_external = RULES[layer]
    problems = []
    for lineno, module in _imports(path):
        parts = module.split(".")
        if parts[0] == "vsearch_app":
            target = ".".join(parts[1:])
            if not target or target == "__version__":  # the package root is a leaf
                continue
            if not any(target == a or target.startswith(a + ".") for a in allowed_internal):
                # A "from pkg import name" also yields "pkg"; only flag the most specific form.
                if any(m.startswith(module + ".") for _, m in _imports(path) if _ == lineno):
                    continue
                problems.append(f"{path.relative_to(PACKAGE)}:{lineno} {layer} imports vsearch_app.{target}")
        elif parts[0] in forbidden_external:
            problems.append(f"{path.relative_to(PACKAGE)}:{lineno} {layer} imports {module}")
    return problems


def test_every_module_respects_the_layers():
    problems = [p for path in sorted(PACKAGE.rglob("*.py")) for p in _violations(path)]
    assert not problems, "layering violations:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("layer_file", "source", "expected"),
    [
        ("modeling/x.py", "import PySide6.QtCore\n", "imports PySide6"),
        ("modeling/x.py", "from vsearch_app.core import catalog\n", "imports vsearch_app.core.catalog"),
        ("cli/x.py", "from vsearch_app.core.catalog import Catalog\n", "imports vsearch_app.core.catalog"),
        ("core/x.py", "from PySide6 import QtWidgets\n", "imports PySide6"),
        ("modeling/x.py", "from ..core import embedder\n", "imports vsearch_app.core.embedder"),
    ],
)
def test_checker_catches_violations(tmp_path, layer_file, source, expected):
    fake = tmp_path / "vsearch_app"
    target = fake / layer_file
    target.parent.mkdir(parents=True)
    target.write_text(source)
    globals()["PACKAGE"] = fake
    try:
        problems = _violations(target)
    finally:
        globals()["PACKAGE"] = Path(__file__).resolve().parents[1] / "vsearch_app"
    assert any(expected in p for p in problems), problems


def test_checker_accepts_allowed_imports(tmp_path):
    fake = tmp_path / "vsearch_app"
    target = fake / "cli" / "x.py"
    target.parent.mkdir(parents=True)
    target.write_text("from vsearch_app.core.service import Service\nfrom vsearch_app.core import types\n")
    globals()["PACKAGE"] = fake
    try:
        assert _violations(target) == []
    finally:
        globals()["PACKAGE"] = Path(__file__).resolve().parents[1] / "vsearch_app"
