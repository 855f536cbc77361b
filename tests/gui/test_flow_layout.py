"""FlowLayout wraps its items like words, and reports the height that needs (heightForWidth)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect, QSize
from PySide6.QtWidgets import QLineEdit, QWidget

from vsearch_app.gui.views.flow_layout import FlowLayout


class Box(QWidget):
    def __init__(self, width: int, height: int = 20) -> None:
        super().__init__()
        self._size = QSize(width, height)

    def sizeHint(self) -> QSize:
        return self._size

    def minimumSizeHint(self) -> QSize:
        return self._size


@pytest.fixture
def flow(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    layout = FlowLayout(host, h_spacing=4, v_spacing=6)
    layout.setContentsMargins(0, 0, 0, 0)
    boxes = [Box(50) for _ in range(10)]
    for box in boxes:
        layout.addWidget(box)
    return host, layout, boxes


def test_height_for_width_wraps(flow):
    _, layout, _ = flow
    assert layout.hasHeightForWidth()
    assert layout.heightForWidth(10 * 50 + 9 * 4) == 20  # everything on one line
    assert layout.heightForWidth(104) == 5 * 20 + 4 * 6  # two per line
    assert layout.heightForWidth(103) == 10 * 20 + 9 * 6  # one per line
    assert layout.heightForWidth(400) < layout.heightForWidth(200)


def test_items_are_placed_in_lines_without_overlap(flow):
    _, layout, boxes = flow
    layout.setGeometry(QRect(0, 0, 170, layout.heightForWidth(170)))  # three per line
    rows = sorted({box.geometry().y() for box in boxes})
    assert rows == [0, 26, 52, 78]
    assert [box.geometry().x() for box in boxes[:4]] == [0, 54, 108, 0]
    for a in boxes:
        assert a.geometry().right() < 170
        assert not any(a is not b and a.geometry().intersects(b.geometry()) for b in boxes)


def test_items_of_different_heights_are_centred_in_their_line(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    layout = FlowLayout(host, h_spacing=4, v_spacing=4)
    layout.setContentsMargins(0, 0, 0, 0)
    tall, short = Box(50, 28), Box(50, 20)
    layout.addWidget(tall)
    layout.addWidget(short)
    layout.setGeometry(QRect(0, 0, 300, 28))
    assert tall.geometry().y() == 0 and short.geometry().y() == 4


def test_stretch_last_fills_the_line_or_wraps_when_too_narrow(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    layout = FlowLayout(host, h_spacing=4, v_spacing=4, stretch_last=True)
    layout.setContentsMargins(0, 0, 0, 0)
    chips = [Box(80), Box(80)]
    edit = QLineEdit()
    edit.setMinimumWidth(120)
    for widget in (*chips, edit):
        layout.addWidget(widget)
    layout.setGeometry(QRect(0, 0, 400, layout.heightForWidth(400)))
    assert edit.geometry().x() == 168 and edit.geometry().right() == 399  # fills the rest of the line
    layout.setGeometry(QRect(0, 0, 250, layout.heightForWidth(250)))
    assert edit.geometry().x() == 0 and edit.geometry().width() == 250  # 82 px left < 120: a line of its own
    assert edit.geometry().y() > chips[0].geometry().y()


def test_insert_widget_and_take_at(flow):
    host, layout, boxes = flow
    extra = Box(30)
    layout.insertWidget(0, extra)
    assert layout.itemAt(0).widget() is extra and layout.count() == 11
    assert extra.parent() is host
    item = layout.takeAt(0)
    assert item.widget() is extra and layout.count() == 10
    assert layout.takeAt(99) is None and layout.itemAt(-1) is None


def test_hidden_items_take_no_space(flow):
    _, layout, boxes = flow
    for box in boxes[1:]:
        box.hide()
    assert layout.heightForWidth(60) == 20
