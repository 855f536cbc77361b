"""The query bar: typed text becomes chips through the engine's parser; chips edit the QueryModel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QContextMenuEvent, QGuiApplication, QPalette, QPixmap, QWheelEvent
from PySide6.QtWidgets import QApplication, QMenu

from vsearch_app.core.types import QueryTerm
from vsearch_app.gui.models.query import QueryModel
from vsearch_app.gui.theme import dark_palette
from vsearch_app.gui.views.query_bar import PLACEHOLDER_EMPTY, QueryBar

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_bar(qtbot):
    def make(terms=(), **kwargs) -> QueryBar:
        bar = QueryBar(QueryModel(terms), **kwargs)
        qtbot.addWidget(bar)
        bar.resize(640, 40)
        bar.show()
        qtbot.waitExposed(bar)
        bar.activateWindow()
        bar.focus_text()
        qtbot.waitUntil(lambda: bar.line_edit.hasFocus())
        return bar

    return make


def _type(qtbot, bar: QueryBar, text: str) -> None:
    qtbot.keyClicks(bar.line_edit, text)


def _focused():
    return QApplication.focusWidget()


def _wheel(widget, notches: int) -> None:
    centre = QPointF(widget.rect().center())
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, 120 * notches),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_typing_plus_and_minus_then_enter_gives_signed_chips(make_bar, qtbot):
    bar = make_bar()
    _type(qtbot, bar, "+ beach - people")
    with qtbot.waitSignal(bar.queryChanged) as changed:
        qtbot.keyClick(bar.line_edit, Qt.Key.Key_Return)
    expected = [QueryTerm("text", "beach", 1.0), QueryTerm("text", "people", -1.0)]
    assert changed.args == [expected]
    assert bar.model.terms == expected
    assert [chip.term for chip in bar.chips] == expected
    assert bar.line_edit.text() == ""


def test_enter_keeps_previous_chips_and_continues_their_query(make_bar, qtbot):
    bar = make_bar([QueryTerm("text", "beach")])
    _type(qtbot, bar, "- people")  # alone this is "only negative terms"; after the chip it is an exclusion
    qtbot.keyClick(bar.line_edit, Qt.Key.Key_Return)
    _type(qtbot, bar, "2:sunset")
    qtbot.keyClick(bar.line_edit, Qt.Key.Key_Return)
    assert bar.model.terms == [QueryTerm("text", "beach"), QueryTerm("text", "people", -1.0),
                               QueryTerm("text", "sunset", 2.0)]


def test_typing_searches_after_a_pause_without_making_chips(make_bar, qtbot):
    bar = make_bar([QueryTerm("text", "beach")])
    emitted = []
    bar.queryChanged.connect(emitted.append)
    _type(qtbot, bar, "kids on a bike")
    assert emitted == []  # debounced: nothing per keystroke
    qtbot.waitUntil(lambda: len(emitted) == 1)
    assert emitted[0] == [QueryTerm("text", "beach"), QueryTerm("text", "kids on a bike")]
    assert len(bar.chips) == 1 and bar.line_edit.text() == "kids on a bike"
    qtbot.keyClick(bar.line_edit, Qt.Key.Key_Return)  # same terms, now as chips: no second search
    assert len(bar.chips) == 2 and len(emitted) == 1


def test_text_that_does_not_parse_says_why_and_stays(make_bar, qtbot):
    bar = make_bar()
    _type(qtbot, bar, '"unclosed')
    with qtbot.waitSignal(bar.parseFailed) as failed:
        qtbot.keyClick(bar.line_edit, Qt.Key.Key_Return)
    assert "never closed" in failed.args[0]
    assert bar.chips == [] and bar.line_edit.text() == '"unclosed'
    assert "never closed" in bar.line_edit.toolTip()


def test_sign_toggle_updates_the_model_and_emits(make_bar, qtbot):
    bar = make_bar([QueryTerm("text", "beach"), QueryTerm("text", "people")])
    with qtbot.waitSignal(bar.queryChanged) as changed:
        qtbot.mouseClick(bar.chips[1]._sign, Qt.MouseButton.LeftButton)
    assert changed.args == [[QueryTerm("text", "beach"), QueryTerm("text", "people", -1.0)]]
    assert bar.model[1].weight == -1.0 and bar.chips[1].term.excluded


def test_wheel_changes_the_weight_in_tenths(make_bar, qtbot):
    bar = make_bar([QueryTerm("text", "beach"), QueryTerm("text", "people", -1.0)])
    emitted = []
    bar.queryChanged.connect(emitted.append)
    chip = bar.chips[1]
    assert not chip._weight.isVisible()  # weight 1 is not shown
    _wheel(chip, 2)
    assert emitted == [[QueryTerm("text", "beach"), QueryTerm("text", "people", -1.2)]]
    assert chip._weight.isVisible() and chip._weight.text() == "×1.2"
    _wheel(chip, -50)
    assert bar.model[1].weight == -0.1  # clamped, sign kept
    assert len(emitted) == 2


def test_clicking_the_weight_edits_it(make_bar, qtbot):
    bar = make_bar([QueryTerm("text", "sunset", 1.5)])
    chip = bar.chips[0]
    qtbot.mouseClick(chip._weight, Qt.MouseButton.LeftButton)
    editor = chip._weight_editor
    assert editor.isVisible()
    editor.selectAll()
    qtbot.keyClicks(editor, "0.5")
    with qtbot.waitSignal(bar.queryChanged) as changed:
        qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert changed.args == [[QueryTerm("text", "sunset", 0.5)]]
    assert not editor.isVisible()


def test_weight_editor_escape_cancels_and_focus_loss_commits(make_bar, qtbot):
    bar = make_bar([QueryTerm("text", "sunset", 1.5)])
    chip = bar.chips[0]
    editor = chip._weight_editor
    chip.edit_weight()
    editor.selectAll()
    qtbot.keyClicks(editor, "3")
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    assert bar.model[0].weight == 1.5 and not editor.isVisible() and _focused() is chip
    chip.edit_weight()
    editor.selectAll()
    qtbot.keyClicks(editor, "3")
    bar.focus_text()  # the user clicks back into the text box
    qtbot.waitUntil(lambda: not editor.isVisible())
    assert bar.model[0].weight == 3.0 and _focused() is bar.line_edit


def test_backspace_twice_removes_the_last_chip(make_bar, qtbot):
    bar = make_bar([QueryTerm("text", "beach"), QueryTerm("text", "people", -1.0)])
    qtbot.keyClick(bar.line_edit, Qt.Key.Key_Backspace)
    assert _focused() is bar.chips[1] and len(bar.model) == 2  # first Backspace selects
    with qtbot.waitSignal(bar.queryChanged) as changed:
        qtbot.keyClick(_focused(), Qt.Key.Key_Backspace)
    assert changed.args == [[QueryTerm("text", "beach")]]
    assert len(bar.chips) == 1 and _focused() is bar.line_edit


def test_backspace_in_text_edits_the_text(make_bar, qtbot):
    bar = make_bar([QueryTerm("text", "beach")])
    _type(qtbot, bar, "ab")
    qtbot.keyClick(bar.line_edit, Qt.Key.Key_Backspace)
    assert bar.line_edit.text() == "a" and _focused() is bar.line_edit


def test_left_and_right_move_between_chips(make_bar, qtbot):
    bar = make_bar([QueryTerm("text", t) for t in ("a", "b", "c")])
    qtbot.keyClick(bar.line_edit, Qt.Key.Key_Left)
    assert _focused() is bar.chips[2]
    qtbot.keyClick(_focused(), Qt.Key.Key_Left)
    qtbot.keyClick(_focused(), Qt.Key.Key_Left)
    qtbot.keyClick(_focused(), Qt.Key.Key_Left)  # stays on the first
    assert _focused() is bar.chips[0]
    qtbot.keyClick(_focused(), Qt.Key.Key_Right)
    assert _focused() is bar.chips[1]
    qtbot.keyClick(_focused(), Qt.Key.Key_Right)
    qtbot.keyClick(_focused(), Qt.Key.Key_Right)
    assert _focused() is bar.line_edit


def test_keys_on_a_selected_chip(make_bar, qtbot):
    bar = make_bar([QueryTerm("text", "beach")])
    qtbot.keyClick(bar.line_edit, Qt.Key.Key_Left)
    chip = _focused()
    qtbot.keyClick(chip, Qt.Key.Key_Up)
    qtbot.keyClick(chip, Qt.Key.Key_Space)
    assert bar.model.terms == [QueryTerm("text", "beach", -1.1)]
    qtbot.keyClicks(chip, "x")  # typing goes on in the text box
    assert _focused() is bar.line_edit and bar.line_edit.text() == "x"


def test_escape_clears_the_text_then_the_chips(make_bar, qtbot):
    bar = make_bar([QueryTerm("text", "beach")])
    _type(qtbot, bar, "dog")
    qtbot.keyClick(bar.line_edit, Qt.Key.Key_Escape)
    assert bar.line_edit.text() == "" and len(bar.chips) == 1
    with qtbot.waitSignal(bar.queryChanged) as changed:
        qtbot.keyClick(bar.line_edit, Qt.Key.Key_Escape)
    assert changed.args == [[]] and bar.chips == []
    assert bar.line_edit.placeholderText() == PLACEHOLDER_EMPTY


def test_context_menu_offers_the_chip_actions(make_bar, qtbot):
    bar = make_bar([QueryTerm("text", "beach"), QueryTerm("text", "sunset", 1.5)])
    chip = bar.chips[1]
    QApplication.sendEvent(chip, QContextMenuEvent(QContextMenuEvent.Reason.Mouse, QPoint(4, 4),
                                                   chip.mapToGlobal(QPoint(4, 4))))
    qtbot.waitUntil(lambda: chip.findChild(QMenu) is not None)
    menu = chip.findChild(QMenu)
    actions = {a.text(): a for a in menu.actions() if a.text()}
    assert {"Exclude", "Increase weight", "Decrease weight", "Set weight…", "Reset weight", "Remove"} <= set(actions)
    actions["Exclude"].trigger()
    assert bar.model[1].weight == -1.5
    menu.close()
    QApplication.sendEvent(chip, QContextMenuEvent(QContextMenuEvent.Reason.Mouse, QPoint(4, 4),
                                                   chip.mapToGlobal(QPoint(4, 4))))
    qtbot.waitUntil(lambda: any(m.isVisible() for m in chip.findChildren(QMenu)))
    menu = next(m for m in chip.findChildren(QMenu) if m.isVisible())
    next(a for a in menu.actions() if a.text() == "Reset weight").trigger()
    assert bar.model[1].weight == -1.0


def test_close_button_removes_that_chip(make_bar, qtbot):
    bar = make_bar([QueryTerm("text", "a"), QueryTerm("text", "b"), QueryTerm("text", "c")])
    qtbot.mouseClick(bar.chips[1]._close, Qt.MouseButton.LeftButton)
    assert [c.term.value for c in bar.chips] == ["a", "c"]


def test_image_chip_shows_an_icon_until_its_thumbnail_arrives(make_bar, qtbot, tmp_path):
    photo = tmp_path / "beach.jpg"
    photo.write_bytes(b"not decoded here")
    ready: dict[str, QPixmap] = {}
    asked = []

    def provider(path: str, side: int) -> QPixmap | None:
        asked.append((path, side))
        return ready.get(path)

    bar = make_bar(thumbnail_provider=provider)
    _type(qtbot, bar, f"sunset + 0.5:{photo}")
    qtbot.keyClick(bar.line_edit, Qt.Key.Key_Return)
    chip = bar.chips[1]
    assert chip.term == QueryTerm("image", str(photo), 0.5)
    assert not chip.has_thumbnail and asked[-1][0] == str(photo) and asked[-1][1] >= 24
    pixmap = QPixmap(300, 200)
    pixmap.fill(QColor("#d04020"))
    ready[str(photo)] = pixmap
    bar.on_thumbnail_ready(str(photo))
    assert chip.has_thumbnail
    shown = chip._thumb.pixmap().toImage()
    assert shown.pixelColor(shown.width() // 2, shown.height() // 2).name() == "#d04020"


def test_query_changed_fires_once_per_change(make_bar, qtbot):
    bar = make_bar([QueryTerm("text", "beach")])
    emitted = []
    bar.queryChanged.connect(emitted.append)
    bar.model.set_weight(0, 1.0)  # no change
    bar.model.replace_all([QueryTerm("text", "beach")])
    assert emitted == []
    bar.model.add(QueryTerm("text", "dog"))
    assert len(emitted) == 1


def test_chips_paint_with_the_palette(make_bar, qtbot, qapp, tmp_path):
    original = QGuiApplication.palette()
    try:
        for name, palette in (("light", QPalette(QColor("#efeff1"))), ("dark", dark_palette())):
            qapp.setPalette(palette)
            bar = make_bar([QueryTerm("text", "kids on a red bike"), QueryTerm("text", "people", -1.0)])
            image = bar.grab().toImage()
            image.save(str(tmp_path / f"query_bar_{name}.png"))
            chip = bar.chips[0]
            inside = chip.mapTo(bar, QPoint(chip.width() // 2, 2 + (chip.height() - 4) // 4))
            fill = image.pixelColor(inside.x() * image.width() // bar.width(),
                                    inside.y() * image.height() // bar.height())
            base = palette.color(QPalette.ColorRole.Base)
            assert (fill.lightnessF() < 0.5) == (base.lightnessF() < 0.5), name  # a dark chip on a dark field
            assert fill.rgb() != base.rgb()  # but visibly a chip
    finally:
        qapp.setPalette(original)


def test_importing_the_bar_does_not_load_the_engine():
    code = ("import sys; import vsearch_app.gui.views.query_bar; "
            "bad = [m for m in ('torch', 'vsearch_app.core.service') if m in sys.modules]; print(bad); "
            "sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
