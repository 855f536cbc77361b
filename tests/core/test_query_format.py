"""format_query is the inverse of parse_query: the desktop app's chips are written back as query text."""

from __future__ import annotations

import random

import pytest

from vsearch_app.core import service
from vsearch_app.core.types import QueryTerm
from vsearch_app.errors import InvalidArgumentError


@pytest.fixture
def photos(tmp_path):
    (tmp_path / "beach.jpg").write_bytes(b"img")
    (tmp_path / "my photos - 2019").mkdir()
    (tmp_path / "my photos - 2019" / "dog 1.png").write_bytes(b"img")
    (tmp_path / "it's here.jpg").write_bytes(b"img")
    (tmp_path / '+"odd".png').write_bytes(b"img")
    return tmp_path


def _round_trip(terms: list[QueryTerm], cwd) -> list[QueryTerm]:
    return service.parse_query_terms(service.format_query(terms), cwd=cwd)


@pytest.mark.parametrize(
    "query",
    [
        "beach",
        "+ beach - people",
        '"golden retriever" + ./beach.jpg - "people" + 0.5:"sunset"',
        "red t-shirt on a 2-3 year old",
        "dog -cat +2:sky",
        "'my photos - 2019/dog 1.png' + 1.5:kids",
        '"rock \'n roll" - \'say "cheese"\'',
        '"holiday.jpg" + sunset',
        '"10:00 meeting" + 2:"3:30pm"',
        '"  padded  " + "- starts with a minus" + "+plus"',
        '"it\'s here.jpg"',
        "0.25:a - 3.:b + .5:c",
    ],
)
def test_format_then_parse_gives_the_same_terms(photos, query):
    terms = service.parse_query_terms(query, cwd=photos)
    assert _round_trip(terms, photos) == terms


def test_parse_gives_core_types_terms(photos):
    terms = service.parse_query_terms("+ beach - people", cwd=photos)
    assert terms == [QueryTerm("text", "beach", 1.0), QueryTerm("text", "people", -1.0)]
    assert all(type(t) is QueryTerm for t in terms)
    assert terms[1].excluded and not terms[0].excluded


def test_the_written_form_is_plain_and_readable(photos):
    terms = [
        QueryTerm("text", "kids on a red bike"),
        QueryTerm("image", str(photos / "beach.jpg"), 0.5),
        QueryTerm("text", "people", -1.0),
        QueryTerm("text", "night", -2.0),
    ]
    assert service.format_query(terms) == f"kids on a red bike + 0.5:{photos / 'beach.jpg'} - people - 2:night"


def test_a_leading_excluded_term_keeps_its_sign():
    text = service.format_query([QueryTerm("text", "people", -1.0), QueryTerm("text", "beach", 1.0)])
    assert text == "- people + beach"
    assert service.parse_query_terms(text) == [QueryTerm("text", "people", -1.0), QueryTerm("text", "beach", 1.0)]


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("10:00 meeting", '"10:00 meeting"'),  # a time is not a weight
        ("sunset.jpg", '"sunset.jpg"'),  # text that only looks like a photo name
        ("a -b", '"a -b"'),  # an operator after a space would split the term
        ("-b", '"-b"'),
        ('say "cheese"', '\'say "cheese"\''),  # the other quote kind when the value holds one
        ("t-shirt", "t-shirt"),  # inner hyphens stay bare
    ],
)
def test_values_are_quoted_only_where_bare_text_would_read_differently(value, written):
    assert service.format_query([QueryTerm("text", value)]) == written


def test_image_paths_with_spaces_and_operators_survive(photos):
    path = str(photos / "my photos - 2019" / "dog 1.png")
    terms = [QueryTerm("text", "park"), QueryTerm("image", path, -0.7)]
    assert _round_trip(terms, photos) == terms


def test_weights_of_any_precision_read_back_exactly(photos):
    rng = random.Random(12)
    weights = [0.1 * 3, 1e-5, 123456.789, 2.5e-7, 7.0, 1 / 3] + [rng.uniform(0.01, 20) for _ in range(50)]
    for weight in weights:
        for sign in (1, -1):
            terms = [QueryTerm("text", "anchor"), QueryTerm("text", "cat", sign * weight)]
            text = service.format_query(terms)
            assert "e" not in text.split(":")[0], text  # the syntax has no exponent
            assert _round_trip(terms, photos) == terms


def test_random_terms_round_trip(photos):
    rng = random.Random(7)
    words = ["red", "t-shirt", "on", "a", "2-3", "-x", "+y", "it's", 'say "hi"', "10:00", "50%", "a.jpg", "ünïcode"]
    images = [str(photos / "beach.jpg"), str(photos / "my photos - 2019" / "dog 1.png"), str(photos / "it's here.jpg")]
    for _ in range(200):
        terms = [QueryTerm("text", "start", 1.0)]
        for _ in range(rng.randint(0, 4)):
            weight = rng.choice([1.0, 0.5, 2.0, 1.3, 0.1]) * rng.choice([1, -1])
            if rng.random() < 0.3:
                terms.append(QueryTerm("image", rng.choice(images), weight))
                continue
            text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
            if "'" in text and '"' in text:
                continue  # cannot be written; covered below
            terms.append(QueryTerm("text", text, weight))
        rng.shuffle(terms)
        if all(t.excluded for t in terms):
            continue
        assert _round_trip(terms, photos) == terms, service.format_query(terms)


@pytest.mark.parametrize(
    ("term", "problem"),
    [
        (QueryTerm("text", "a", 0.0), "weight"),
        (QueryTerm("text", "a", float("nan")), "weight"),
        (QueryTerm("text", "   ", 1.0), "empty"),
        (QueryTerm("text", "- it's \"x\"", 1.0), "both kinds of quote"),
        (QueryTerm("video", "a", 1.0), "kind"),
    ],
)
def test_terms_the_syntax_cannot_express_are_refused(term, problem):
    with pytest.raises(InvalidArgumentError, match=problem):
        service.format_query([QueryTerm("text", "anchor"), term])


def test_a_path_with_both_quote_kinds_that_needs_no_quotes_still_works(photos):
    path = str(photos / '+"odd".png')  # begins with "/", so the "+" is not at the start and no quotes are needed
    terms = [QueryTerm("image", path)]
    assert service.format_query(terms) == path
    assert _round_trip(terms, photos) == terms


def test_no_terms_format_to_empty_text():
    assert service.format_query([]) == ""
