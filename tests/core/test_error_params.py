"""Errors raised in core carry the parameter they concern, and no message names a command-line flag: the CLI adds
the flag (cli/options.py), the desktop app the field's label (issue 11)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from vsearch_app.core.engine import hub
from vsearch_app.core.store.data_dir import prepare_data_dir
from vsearch_app.errors import DataDirError, InvalidArgumentError, ModelNotFoundError, VSearchError

CORE = Path(__file__).resolve().parents[2] / "vsearch_app" / "core"
FLAG = re.compile(r"--[A-Za-z]")


def _message_strings(path: Path) -> set[tuple[int, str]]:
    """String literals that can end up in an error message: inside a ``raise``, inside a call of an ``...Error``
    class anywhere (some errors are built and returned), and module-level string constants used in either."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                 for target in node.targets if isinstance(target, ast.Name)}
    found = set()
    for node in ast.walk(tree):
        is_error_call = isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")
                                                               ).endswith("Error")
        if not (isinstance(node, ast.Raise) or is_error_call):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                found.add((inner.lineno, inner.value))
            elif isinstance(inner, ast.Name) and inner.id in constants:
                found.add((inner.lineno, constants[inner.id]))
    return found


def test_no_core_message_names_a_cli_flag():
    offenders = [f"{path.relative_to(CORE.parent)}:{line}: {text!r}" for path in sorted(CORE.rglob("*.py"))
                 for line, text in sorted(_message_strings(path)) if FLAG.search(text)]
    assert not offenders, "core messages naming a CLI flag:\n" + "\n".join(offenders)


def test_the_scan_finds_what_it_looks_for(tmp_path):
    """The scan above reads raises, returned errors and the constants they use."""
    sample = tmp_path / "sample.py"
    sample.write_text('HINT = "use --data-dir"\n'
                      'def f():\n    raise ValueError(f"bad --limit {1}")\n'
                      'def g():\n    return NothingToSearchError("see --model")\n'
                      'def h():\n    raise DataDirError("x; " + HINT)\n'
                      'def i():\n    log.info("--verbose is fine in a log call")\n')
    texts = sorted(text for _, text in _message_strings(sample) if FLAG.search(text))
    assert texts == ["bad --limit ", "see --model", "use --data-dir"]


def test_errors_keep_their_param():
    assert InvalidArgumentError("x", param="limit").param == "limit"
    assert InvalidArgumentError("x").param is None and VSearchError("x").param is None
    assert str(InvalidArgumentError("the message", param="limit")) == "the message"


def test_core_errors_name_their_parameter(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataDirError) as err:
        prepare_data_dir(tmp_path / "file")
    assert err.value.param == "data_dir"
    with pytest.raises(ModelNotFoundError) as err:
        hub.resolve_model_dir("org/absent", tmp_path / "hub")
    assert err.value.param == "model" and "--" not in str(err.value)
    with pytest.raises(ModelNotFoundError) as err:
        hub.resolve_model_dir("org/absent", tmp_path / "hub", param="caption_model")
    assert err.value.param == "caption_model"
