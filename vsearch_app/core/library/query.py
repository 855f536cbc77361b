"""Search queries: text, example images and their weighted combinations.

Syntax (what the README documents)::

    query  := [sign] term (sign term)*
    sign   := "+" | "-"            an operator only at the start or after white space, so "t-shirt" stays one word
    term   := [weight ":"] (quoted | bare)   no space on either side of the ":"
    weight := a positive number such as 2, 0.5, .25 or 3.
    quoted := '"' any text without '"' '"'   (or single quotes)
    bare   := text up to the next operator or the end

A number and a colon at the start of a term are a weight only when the term follows at once and does not start
with a digit: "2:sunset" and '0.5:"golden hour"' are weighted, while "10:00 meeting", "9:30pm" and "16:9 frame" are
plain text (times and ratios). "2: sunset" (a space after the colon) is an error rather than a guess. To weight a
term that starts with a digit, quote it: '2:"4k tv"'. Quotes have no escapes; a term containing one kind of quote
is written inside the other kind.

A term whose text names an existing file with a photo extension (or any existing file when the text contains a
path separator) is an image query ("query by example"); other terms are text. A bare term that looks like a photo
path (photo extension) but names no file is an error rather than a silent text search for "./beach.jpg".

A query can also be given as core.types.QueryTerm objects (``as_terms``, ``check_terms``), so the desktop app's
chips, dropped files and "Find similar" never go through quoting; that form adds the "photo" kind (an indexed photo
by its catalog id), which the text syntax cannot write. Every error raised here has ``param="query"``.

The query vector is the weighted sum of the L2-normalised term embeddings (negative terms subtract), normalised
again; ``combine`` does that arithmetic and refuses a query whose terms cancel out.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import numpy as np

from vsearch_app.core.library.scanner import is_photo_name
from vsearch_app.core.types import TERM_KINDS, QueryTerm
from vsearch_app.errors import InvalidArgumentError

__all__ = ["QueryTerm", "as_terms", "check_terms", "combine", "format_query", "format_term", "parse_query"]

PARAM = "query"  # what every error here concerns (VSearchError.param)

# A weight: a number, a colon, and the term right after it; a digit there means a time or a ratio (10:00, 16:9).
_WEIGHT = re.compile(r"(\d+(?:\.\d*)?|\.\d+):(?!\.?\d)")
_QUOTES = "\"'"


def parse_query(query: str | Sequence[str], *, cwd: str | os.PathLike[str] | None = None) -> list[QueryTerm]:
    """Parse a query string (or command-line words, joined with spaces) into signed, weighted terms.

    Relative image paths are resolved against ``cwd`` (default: the process's working directory)."""
    text = query if isinstance(query, str) else " ".join(query)
    base = Path(cwd) if cwd is not None else Path.cwd()
    terms: list[QueryTerm] = []
    pos, n = 0, len(text)
    expect_term = True
    sign = 1.0
    while True:
        pos = _skip_space(text, pos)
        if pos >= n:
            break
        ch = text[pos]
        # Here we stand between terms (or at the start), so "+" and "-" can only be operators.
        if ch in "+-":
            if expect_term and terms:
                raise InvalidArgumentError(f"query {text!r}: two operators in a row at position {pos + 1}; "
                                           "put a term between them", param=PARAM)
            sign = 1.0 if ch == "+" else -1.0
            pos += 1
            expect_term = True
            pos = _skip_space(text, pos)
            if pos >= n:
                raise InvalidArgumentError(f"query {text!r}: '{ch}' at the end needs a term after it", param=PARAM)
            continue
        if not expect_term:
            raise InvalidArgumentError(f"query {text!r}: expected '+' or '-' between terms at position {pos + 1} "
                                       "(quote text that contains several words next to a quoted term)", param=PARAM)
        term, pos = _read_term(text, pos, sign, base)
        terms.append(term)
        expect_term = False
        sign = 1.0
    if not terms:
        raise InvalidArgumentError("empty query: give some text, an image path, or a combination such as "
                                   "'\"golden retriever\" + ./beach.jpg - people'", param=PARAM)
    if all(t.weight < 0 for t in terms):
        raise InvalidArgumentError(f"query {text!r} has only negative terms; add at least one positive term",
                                   param=PARAM)
    return terms


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _read_term(text: str, pos: int, sign: float, base: Path) -> tuple[QueryTerm, int]:
    weight = 1.0
    match = _WEIGHT.match(text, pos)
    if match is not None:
        weight = float(match.group(1))
        if weight <= 0:
            raise InvalidArgumentError(f"query {text!r}: weight {match.group(1)} must be greater than 0 "
                                       "(use '-' to subtract a term)", param=PARAM)
        pos = match.end()
        if pos >= len(text) or text[pos].isspace():
            raise InvalidArgumentError(f"query {text!r}: the weight {match.group(1)}: needs its term right after "
                                       f"the colon, without a space (e.g. {match.group(1)}:sunset or "
                                       f"{match.group(1)}:\"golden hour\")", param=PARAM)
    if pos < len(text) and text[pos] in _QUOTES:
        quote = text[pos]
        end = text.find(quote, pos + 1)
        if end < 0:
            raise InvalidArgumentError(f"query {text!r}: the quote at position {pos + 1} is never closed", param=PARAM)
        value = text[pos + 1:end]
        pos = end + 1
        if not value.strip():
            raise InvalidArgumentError(f"query {text!r}: empty quoted term", param=PARAM)
        return _classify(value, weight * sign, base, quoted=True), pos
    end = _bare_end(text, pos)
    value = text[pos:end].strip()
    return _classify(value, weight * sign, base, quoted=False), end


def _bare_end(text: str, pos: int) -> int:
    """Bare text runs until an operator that follows white space, or a quote (an error the caller reports)."""
    i = pos
    while i < len(text):
        ch = text[i]
        if ch in "+-" and i > pos and text[i - 1].isspace():
            return i
        if ch in _QUOTES and i > pos and text[i - 1].isspace():
            return i
        i += 1
    return i


def _classify(value: str, weight: float, base: Path, *, quoted: bool) -> QueryTerm:
    candidate = Path(os.path.expanduser(value))
    if not candidate.is_absolute():
        candidate = base / candidate
    looks_like_path = is_photo_name(value) or os.sep in value or (os.altsep is not None and os.altsep in value)
    if looks_like_path and candidate.is_file():
        return QueryTerm("image", str(candidate), weight)
    if not quoted and is_photo_name(value):
        raise InvalidArgumentError(f"no image file {value!r} (looked in {candidate.parent}); check the path, or "
                                   "put the words in quotes to search for them as text", param=PARAM)
    return QueryTerm("text", value, weight)


def is_empty_query(query: str | Sequence[str] | Sequence[QueryTerm] | None) -> bool:
    """No terms at all (None, blank text, no words or only blank ones): a browse, not a search."""
    if query is None:
        return True
    if isinstance(query, str):
        return not query.strip()
    items = list(query)
    return all(isinstance(item, str) and not item.strip() for item in items)


def as_terms(query: str | Sequence[str] | Sequence[QueryTerm], *,
             cwd: str | os.PathLike[str] | None = None) -> list[QueryTerm]:
    """The terms of a query given as text (the syntax above), as command-line words, or as QueryTerm objects (the
    desktop app's chips, drag-and-drop, Find similar: no quoting involved). Raises InvalidArgumentError."""
    if isinstance(query, str):
        return parse_query(query, cwd=cwd)
    items = list(query)
    if items and all(isinstance(item, QueryTerm) for item in items):
        return check_terms(items, cwd=cwd)
    if all(isinstance(item, str) for item in items):
        return parse_query(items, cwd=cwd)
    raise InvalidArgumentError("a query is text, or a list of query terms, not a mix of both", param=PARAM)


def check_terms(terms: Sequence[QueryTerm], *, cwd: str | os.PathLike[str] | None = None) -> list[QueryTerm]:
    """Structured terms checked as the parser checks text: a known kind, a non-empty value, a finite non-zero
    weight, at least one positive term; an image path is user-expanded and made absolute (against ``cwd``) and must
    name a file; a photo term's value must be a file id. Whether that photo has a vector is checked at search."""
    if not terms:
        raise InvalidArgumentError("empty query: give some text, an image, or a photo", param=PARAM)
    base = Path(cwd) if cwd is not None else Path.cwd()
    checked = []
    for term in terms:
        if term.kind not in TERM_KINDS:
            raise InvalidArgumentError(f"unknown query term kind {term.kind!r}; use one of {', '.join(TERM_KINDS)}",
                                       param=PARAM)
        weight = float(term.weight)
        if weight == 0 or not math.isfinite(weight):
            raise InvalidArgumentError(f"query term {term.value!r} has weight {term.weight}; weights must be "
                                       "non-zero finite numbers", param=PARAM)
        value = term.value
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgumentError("a query term cannot be empty", param=PARAM)
        if term.kind == "image":
            path = Path(os.path.expanduser(value))
            path = path if path.is_absolute() else base / path
            if not path.is_file():
                raise InvalidArgumentError(f"no image file {value!r}; check the path", param=PARAM)
            value = str(path)
        elif term.kind == "photo" and not value.strip().isdigit():
            raise InvalidArgumentError(f"a photo term's value is a photo's id (a whole number), not {value!r}",
                                       param=PARAM)
        checked.append(term if (value, weight) == (term.value, term.weight) else QueryTerm(term.kind, value, weight))
    if all(t.weight < 0 for t in checked):
        raise InvalidArgumentError("the query has only negative terms; add at least one positive term", param=PARAM)
    return checked


def combine(vectors: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Weighted sum of the (re-normalised) term vectors, normalised; raises when the terms cancel out."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(weights) or len(vectors) == 0:
        raise ValueError("need one vector per weight")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.maximum(norms, 1e-12)
    total = (np.asarray(weights, dtype=np.float32)[:, None] * unit).sum(axis=0)
    norm = float(np.linalg.norm(total))
    if norm < 1e-6:
        raise InvalidArgumentError("the query's terms cancel each other out; change a weight or a term", param=PARAM)
    return (total / norm).astype(np.float32)


# --- writing terms back as query text (the inverse of parse_query) --------------------------------------------------

# Text that starts like a weight ("2:", "0.5 :", "10:00") is quoted, so neither this parser nor a stricter one that
# reads times as text can take it for a weight.
_WEIGHT_LIKE_START = re.compile(r"[\d.]+\s*:")
# A value starting so cannot follow a weight's colon unquoted (see _WEIGHT).
_DIGIT_START = re.compile(r"\.?\d")
# Inside bare text an operator or a quote only counts after white space, as in _bare_end.
_OPERATOR_AFTER_SPACE = re.compile(r"\s[+\-'\"]")


def format_query(terms: Sequence[QueryTerm]) -> str:
    """Query text that ``parse_query`` reads back as ``terms`` (same kinds, values and weights).

    Terms are joined with " + " and " - ", weights other than 1 are written as ``0.5:``, and a value is quoted
    only where bare text would be read differently. Accepts any objects with kind/value/weight (core.types.QueryTerm
    too). Raises InvalidArgumentError for a term the syntax cannot express: a zero weight, an empty value, or a
    value that needs quotes but contains both kinds of quote."""
    parts: list[str] = []
    for i, term in enumerate(terms):
        sign = "-" if term.weight < 0 else "+"
        written = format_term(term)
        if i == 0:
            parts.append(f"- {written}" if sign == "-" else written)
        else:
            parts.append(f"{sign} {written}")
    return " ".join(parts)


def format_term(term: QueryTerm) -> str:
    """One term without its sign: ``[weight:]value`` with the value quoted where needed."""
    if term.kind == "photo":
        raise InvalidArgumentError(f"the photo term #{term.value} (find similar) has no query text; search with the "
                                   "terms themselves, or use the photo's path as an image term", param=PARAM)
    if term.kind not in ("text", "image"):
        raise InvalidArgumentError(f"unknown query term kind {term.kind!r}", param=PARAM)
    magnitude = abs(float(term.weight))
    if not magnitude > 0 or magnitude == float("inf"):
        raise InvalidArgumentError(f"query term {term.value!r} has weight {term.weight}; weights must be non-zero "
                                   "finite numbers", param=PARAM)
    value = term.value
    if not value.strip():
        raise InvalidArgumentError("a query term cannot be empty", param=PARAM)
    weighted = magnitude != 1.0
    # After "2:" a digit (or ".5") would make the weight read as text ("0.5:2-3" is a ratio), so such values are
    # quoted when weighted.
    needs_quotes = _needs_quotes(value, term.kind) or (weighted and _DIGIT_START.match(value) is not None)
    written = _quote(value) if needs_quotes else value
    return f"{_format_weight(magnitude)}:{written}" if weighted else written


def _needs_quotes(value: str, kind: str) -> bool:
    if value != value.strip() or value[0] in "+-" or value[0] in _QUOTES:
        return True
    if _WEIGHT_LIKE_START.match(value) or _OPERATOR_AFTER_SPACE.search(value):
        return True
    if kind == "image":
        return any(ch.isspace() for ch in value)  # readable, and safe whatever follows the space
    # Bare text with a photo extension is read as a path (or refused when no such file exists).
    return is_photo_name(value)


def _quote(value: str) -> str:
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    raise InvalidArgumentError(f"{value!r} contains both kinds of quote, so it cannot be written in a query; "
                               "rename the file or remove one kind of quote", param=PARAM)


def _format_weight(magnitude: float) -> str:
    """The shortest plain decimal that reads back as exactly ``magnitude`` (no exponent: the syntax has none)."""
    text = format(Decimal(repr(magnitude)), "f")  # repr is the shortest exact form; "f" spells out any exponent
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
