"""Query syntax and the arithmetic that turns terms into one search vector."""

from __future__ import annotations

import numpy as np
import pytest

from vsearch_app.core.library.query import QueryTerm, combine, parse_query
from vsearch_app.errors import InvalidArgumentError


@pytest.fixture
def photos(tmp_path):
    (tmp_path / "beach.jpg").write_bytes(b"img")
    (tmp_path / "my photos").mkdir()
    (tmp_path / "my photos" / "dog 1.png").write_bytes(b"img")
    return tmp_path


def test_the_issue_example(photos):
    terms = parse_query('"golden retriever" + ./beach.jpg - "people" + 0.5:"sunset"', cwd=photos)
    assert terms == [
        QueryTerm("text", "golden retriever", 1.0),
        QueryTerm("image", str(photos / "beach.jpg"), 1.0),
        QueryTerm("text", "people", -1.0),
        QueryTerm("text", "sunset", 0.5),
    ]


def test_command_line_words_are_joined(photos):
    # What the shell hands over for: vsearch search "golden retriever" + 2:beach.jpg - people
    terms = parse_query(["golden retriever", "+", "2:beach.jpg", "-", "people"], cwd=photos)
    assert terms == [
        QueryTerm("text", "golden retriever", 1.0),
        QueryTerm("image", str(photos / "beach.jpg"), 2.0),
        QueryTerm("text", "people", -1.0),
    ]


def test_bare_words_form_one_term_and_inner_hyphens_stay(photos):
    assert parse_query("red t-shirt on a 2-3 year old", cwd=photos) == [
        QueryTerm("text", "red t-shirt on a 2-3 year old", 1.0)
    ]


def test_operator_glued_to_a_word(photos):
    assert parse_query("dog -cat +2:sky", cwd=photos) == [
        QueryTerm("text", "dog", 1.0), QueryTerm("text", "cat", -1.0), QueryTerm("text", "sky", 2.0)
    ]


def test_path_with_spaces_bare_or_quoted(photos):
    expected = QueryTerm("image", str(photos / "my photos" / "dog 1.png"), 1.0)
    assert parse_query("my photos/dog 1.png", cwd=photos) == [expected]
    assert parse_query("'my photos/dog 1.png'", cwd=photos) == [expected]
    assert parse_query(str(photos / "my photos" / "dog 1.png")) == [expected]


def test_quoted_text_that_only_looks_like_a_file_stays_text(photos):
    assert parse_query('"holiday.jpg"', cwd=photos) == [QueryTerm("text", "holiday.jpg", 1.0)]


def test_weights(photos):
    assert [t.weight for t in parse_query('2:"a" - 0.5:"b" + .25:c - 3.:d', cwd=photos)] == [2.0, -0.5, 0.25, -3.0]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # A colon followed by a digit is a time or a ratio, never a weight.
        ("10:00 meeting", [QueryTerm("text", "10:00 meeting", 1.0)]),
        ("9:30pm", [QueryTerm("text", "9:30pm", 1.0)]),
        ("16:9 beach", [QueryTerm("text", "16:9 beach", 1.0)]),
        ("1.5:.5x zoom", [QueryTerm("text", "1.5:.5x zoom", 1.0)]),
        ("dinner at 7:45 - 10:00 meeting", [QueryTerm("text", "dinner at 7:45", 1.0),
                                            QueryTerm("text", "10:00 meeting", -1.0)]),
        # Ratios and times inside text were never weights, and stay text.
        ("a 4:3 photo of a clock at 12:15", [QueryTerm("text", "a 4:3 photo of a clock at 12:15", 1.0)]),
        # Weights: the term right after the colon; a quoted term may start with a digit.
        ("2:sunset", [QueryTerm("text", "sunset", 2.0)]),
        ('2:"10:00 meeting"', [QueryTerm("text", "10:00 meeting", 2.0)]),
        ("0.5:'4k tv' + 3.:dog", [QueryTerm("text", "4k tv", 0.5), QueryTerm("text", "dog", 3.0)]),
        ("dog -2:cat", [QueryTerm("text", "dog", 1.0), QueryTerm("text", "cat", -2.0)]),
        ("+.25:sky", [QueryTerm("text", "sky", 0.25)]),
        # Not a number before the colon: plain text.
        ("re:invent keynote", [QueryTerm("text", "re:invent keynote", 1.0)]),
    ],
)
def test_weights_never_eat_times_or_ratios(photos, query, expected):
    assert parse_query(query, cwd=photos) == expected


def test_a_weighted_image_path(photos):
    assert parse_query("2:beach.jpg + 3:'my photos/dog 1.png'", cwd=photos) == [
        QueryTerm("image", str(photos / "beach.jpg"), 2.0),
        QueryTerm("image", str(photos / "my photos" / "dog 1.png"), 3.0),
    ]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("", "empty query"),
        ("   ", "empty query"),
        ('"unclosed', "never closed"),
        ('"a" "b"', "expected '.' or '-' between"),
        ('"a" b', "expected '.' or '-' between"),
        ("a + - b", "two operators"),
        ("a +", "at the end"),
        ("0:a", "greater than 0"),
        ('""', "empty quoted"),
        ("- people", "only negative"),
        ("./missing.jpg", "no image file"),
        ("2:", "right after the colon"),
        ("2: sunset", "right after the colon"),
        ("dog + 0.5: cat", "right after the colon"),
    ],
)
def test_parse_errors_name_the_problem(photos, query, problem):
    with pytest.raises(InvalidArgumentError, match=problem):
        parse_query(query, cwd=photos)


def test_combine_is_the_renormalised_weighted_sum_of_unit_vectors():
    a = np.array([3.0, 0.0, 0.0])  # deliberately not unit length: each term counts by its weight only
    b = np.array([0.0, 1.0, 0.0])
    out = combine(np.stack([a, b]), [2.0, -1.0])
    expected = np.array([2.0, -1.0, 0.0]) / np.sqrt(5.0)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32
    assert np.isclose(np.linalg.norm(out), 1.0)


def test_combine_refuses_terms_that_cancel():
    v = np.array([[1.0, 0.0], [1.0, 0.0]])
    with pytest.raises(InvalidArgumentError, match="cancel"):
        combine(v, [1.0, -1.0])
