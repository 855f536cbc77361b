"""The window with a model that really learned shapes and colours: typing "a red circle" puts red circles first, and
editing the chips' weights and signs changes the ranking the way the user means."""

from __future__ import annotations

import random

import pytest
from PySide6.QtCore import Qt
from pytestqt.exceptions import TimeoutError

from tests.gui.window_helpers import result_paths, type_query, wait_indexed, window_settings
from vsearch_app.training.shapes import Scene, ShapeSpec, render

pytestmark = pytest.mark.slow

KINDS = [("red", "circle"), ("blue", "square"), ("green", "triangle"), ("yellow", "diamond"), ("purple", "circle"),
         ("red", "square")]
PER_KIND = 4


@pytest.fixture
def shapes_window(qtbot, windows, tmp_path, trained_shapes_model):
    folder = tmp_path / "Shapes"
    folder.mkdir()
    for k, (colour, shape) in enumerate(KINDS):
        for i in range(PER_KIND):
            size = ("large", "small")[i % 2]
            position = ("left", "middle", "right")[i % 3]
            scene = Scene((ShapeSpec(colour, shape, size, position),))
            render(scene, 32, random.Random(k * 100 + i)).save(folder / f"{colour}-{shape}-{i}.png")
    window = windows.open(window_settings(tmp_path, trained_shapes_model.model_dir))
    window.controller.add_folder(folder)
    wait_indexed(qtbot, window, len(KINDS) * PER_KIND)
    return window


def kind_of(path) -> str:
    return path.name.rsplit("-", 1)[0]


def mean_ranks(window) -> dict[str, float]:
    """Each kind's mean position in the results (0 = first): a ranking claim that does not hang on one photo."""
    positions: dict[str, list[int]] = {}
    for rank, path in enumerate(result_paths(window)):
        positions.setdefault(kind_of(path), []).append(rank)
    return {kind: sum(ranks) / len(ranks) for kind, ranks in positions.items()}


def wait_ranked(qtbot, window, kind: str, *, last: bool = False) -> None:
    """Until the current results rank ``kind`` first (or last) on average, with all photos shown."""
    def ranked() -> bool:
        if window._searching or window.results_model.rowCount() != len(KINDS) * PER_KIND:
            return False
        ranks = mean_ranks(window)
        return (max if last else min)(ranks, key=ranks.get) == kind

    try:
        qtbot.waitUntil(ranked, timeout=60_000)
    except TimeoutError:
        ranks = mean_ranks(window)
        raise AssertionError(f"{kind} not {'last' if last else 'first'} for {window.terms}: "
                             f"{sorted(ranks.items(), key=lambda kv: kv[1])}") from None


def set_weight(qtbot, chip, text: str) -> None:
    chip.edit_weight()  # what a click on the weight does
    chip._weight_editor.selectAll()
    qtbot.keyClicks(chip._weight_editor, text)
    qtbot.keyClick(chip._weight_editor, Qt.Key.Key_Return)


def test_typing_a_red_circle_puts_red_circles_first(qtbot, shapes_window):
    type_query(qtbot, shapes_window, "a red circle")
    wait_ranked(qtbot, shapes_window, "red-circle")
    assert kind_of(result_paths(shapes_window)[0]) == "red-circle"


def test_chip_weights_and_signs_change_the_ranking(qtbot, shapes_window):
    window = shapes_window
    type_query(qtbot, window, "a red circle")
    qtbot.keyClick(window.query_bar.line_edit, Qt.Key.Key_Return)  # a chip
    type_query(qtbot, window, "a green triangle")
    qtbot.keyClick(window.query_bar.line_edit, Qt.Key.Key_Return)
    red, green = window.query_bar.chips

    set_weight(qtbot, red, "4")
    wait_ranked(qtbot, window, "red-circle")
    set_weight(qtbot, red, "0.2")
    set_weight(qtbot, green, "4")
    wait_ranked(qtbot, window, "green-triangle")

    qtbot.mouseClick(green._sign, Qt.MouseButton.LeftButton)  # exclude green triangles
    assert window.query_bar.model.terms[1].weight == -4.0
    wait_ranked(qtbot, window, "green-triangle", last=True)
