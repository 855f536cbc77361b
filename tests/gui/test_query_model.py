"""QueryModel: the single source of truth for the query's terms."""

from __future__ import annotations

import pytest

from vsearch_app.core.types import QueryTerm
from vsearch_app.errors import InvalidArgumentError
from vsearch_app.gui.models.query import MAX_WEIGHT, MIN_WEIGHT, QueryModel, clamp_weight

BEACH = QueryTerm("text", "beach")
PEOPLE = QueryTerm("text", "people", -1.0)
PHOTO = QueryTerm("image", "/photos/dog.jpg", 2.0)


@pytest.fixture
def model(qtbot):
    return QueryModel([BEACH, PEOPLE])


def test_edits_change_the_terms_and_signal_once_each(model, qtbot):
    seen = []
    model.changed.connect(lambda: seen.append(model.terms))
    model.add(PHOTO)
    model.toggle_sign(1)
    model.set_weight(0, 1.5)
    model.remove(2)
    assert seen == [
        [BEACH, PEOPLE, PHOTO],
        [BEACH, QueryTerm("text", "people", 1.0), PHOTO],
        [QueryTerm("text", "beach", 1.5), QueryTerm("text", "people", 1.0), PHOTO],
        [QueryTerm("text", "beach", 1.5), QueryTerm("text", "people", 1.0)],
    ]


def test_no_signal_when_nothing_changes(model, qtbot):
    seen = []
    model.changed.connect(lambda: seen.append(1))
    model.set_weight(0, 1.0)
    model.replace_all([BEACH, PEOPLE])
    model.extend([])
    assert seen == []
    model.clear()
    model.clear()
    assert seen == [1] and len(model) == 0


def test_set_weight_keeps_the_sign_and_clamps(model):
    model.set_weight(1, 2.5)
    assert model[1].weight == -2.5
    model.set_weight(1, 1000)
    assert model[1].weight == -MAX_WEIGHT
    model.set_weight(0, 0.0001)
    assert model[0].weight == MIN_WEIGHT


def test_steps_do_not_drift(model):
    for _ in range(3):
        model.step_weight(0, 1)
    assert model[0].weight == 1.3  # not 1.3000000000000003
    model.step_weight(1, -20)
    assert model[1].weight == -MIN_WEIGHT


def test_replace_all_normalises_weights(model):
    model.replace_all([QueryTerm("text", "a", 0.123456), QueryTerm("text", "b", -50)])
    assert [t.weight for t in model.terms] == [0.12, -MAX_WEIGHT]


@pytest.mark.parametrize(
    "term",
    [QueryTerm("text", "  ", 1.0), QueryTerm("video", "x", 1.0), QueryTerm("text", "x", 0.0)],
)
def test_invalid_terms_are_refused(model, term):
    with pytest.raises(InvalidArgumentError):
        model.add(term)
    assert model.terms == [BEACH, PEOPLE]


def test_bad_index_names_the_problem(model):
    with pytest.raises(IndexError, match="no query term 5"):
        model.remove(5)


def test_clamp_weight_refuses_nan():
    with pytest.raises(InvalidArgumentError):
        clamp_weight(float("nan"))
