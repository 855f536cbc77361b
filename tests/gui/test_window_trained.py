"""The window with a model that really learned shapes and colours: typing "a red circle" puts red circles first, and
editing the chips' weights and signs changes the ranking the way the user means."""

from __future__ import annotations

import random

import pytest
from PySide6.QtCore import Qt

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


def top(window, n=PER_KIND) -> list[str]:
    return [p.name.rsplit("-", 1)[0] for p in result_paths(window)[:n]]


def wait_top(qtbot, window, kind: str) -> None:
    qtbot.waitUntil(lambda: not window._searching and top(window) == [kind] * PER_KIND, timeout=60_000)


def set_weight(qtbot, chip, text: str) -> None:
    chip.edit_weight()  # what a click on the weight does
    chip._weight_editor.selectAll()
    qtbot.keyClicks(chip._weight_editor, text)
    qtbot.keyClick(chip._weight_editor, Qt.Key.Key_Return)


def test_typing_a_red_circle_puts_red_circles_first(qtbot, shapes_window):
    type_query(qtbot, shapes_window, "a red circle")
    wait_top(qtbot, shapes_window, "red-circle")


def test_chip_weights_and_signs_change_the_ranking(qtbot, shapes_window):
    window = shapes_window
    type_query(qtbot, window, "a red circle")
    qtbot.keyClick(window.query_bar.line_edit, Qt.Key.Key_Return)  # a chip
    type_query(qtbot, window, "a blue square")
    qtbot.keyClick(window.query_bar.line_edit, Qt.Key.Key_Return)
    red, blue = window.query_bar.chips

    set_weight(qtbot, red, "4")
    wait_top(qtbot, window, "red-circle")
    set_weight(qtbot, red, "0.2")
    set_weight(qtbot, blue, "4")
    wait_top(qtbot, window, "blue-square")

    qtbot.mouseClick(blue._sign, Qt.MouseButton.LeftButton)  # exclude blue squares
    assert window.query_bar.model.terms[1].weight == -4.0
    qtbot.waitUntil(lambda: not window._searching
                    and {p.name.rsplit("-", 1)[0] for p in result_paths(window)[-PER_KIND:]} == {"blue-square"},
                    timeout=60_000)
