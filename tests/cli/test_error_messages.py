"""The CLI names the flag an engine error concerns (VSearchError.param): the engine's messages never do."""

from __future__ import annotations

import argparse

import pytest

from vsearch_app.cli.main import build_parser, main
from vsearch_app.cli.options import PARAM_FLAGS, error_message
from vsearch_app.errors import DataDirError, InvalidArgumentError, VSearchError


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (InvalidArgumentError("the number of results must be at least 1, got 0", param="limit"),
         "the number of results must be at least 1, got 0 (--limit)"),
        (DataDirError("the data folder /x is a file, not a folder; choose another data folder", param="data_dir"),
         "the data folder /x is a file, not a folder; choose another data folder (--data-dir or VSEARCH_DATA_DIR)"),
        (VSearchError("Connect, or use a local checkpoint folder as the model.", param="model"),
         "Connect, or use a local checkpoint folder as the model (--model)."),
        (InvalidArgumentError("query 'a +': '+' at the end needs a term after it", param="query"),
         "query 'a +': '+' at the end needs a term after it"),  # the query is an argument, not a flag
        (VSearchError("no flag here"), "no flag here"),
    ],
)
def test_error_message_adds_the_flag(error, line):
    assert error_message(error) == line


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of ``parser`` and of its subcommands, recursively."""
    found = set()
    for action in parser._actions:
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _flags(sub)
    return found


def test_every_flag_named_exists():
    known = _flags(build_parser())
    named = {word for flags in PARAM_FLAGS.values() for word in flags.split() if word.startswith("--")}
    assert named <= known, named - known


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["search", "dog", "--limit", "0"], "vsearch: the number of results must be at least 1, got 0 (--limit)"),
        (["search", "dog", "--threshold", "1.5"],
         "vsearch: the score threshold is a cosine similarity between -1 and 1, got 1.5 (--threshold)"),
    ],
)
def test_search_errors_name_the_flag(tmp_path, capsys, args, expected):
    assert main([*args, "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err == expected + "\n"


def test_a_folder_filter_outside_the_library_names_in(tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    assert main(["search", "dog", "--in", str(elsewhere), "--data-dir", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err == f"vsearch: {elsewhere} is not inside a watched folder (--in)\n"


def test_a_bad_data_folder_reads_as_before(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("x")
    assert main(["status", "--data-dir", str(bad)]) == 2
    assert capsys.readouterr().err == (f"vsearch: the data folder {bad} is a file, not a folder; choose another data "
                                       "folder (--data-dir or VSEARCH_DATA_DIR)\n")
