"""Caption fusion (issue 13): stored captions that match a text query's words raise their photos in the ranking, by
the library's caption weight; weight 0, a library without captions and image-only queries rank exactly as before."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.core.library_fakes import FakeEmbedder, content_vector
from vsearch_app.core.library import caption_match
from vsearch_app.core.library.caption_match import DEFAULT_CAPTION_WEIGHT, find_matches, query_words, words
from vsearch_app.core.library.library import Library
from vsearch_app.core.service import LibraryService
from vsearch_app.core.store import caption_text_index, captions
from vsearch_app.core.types import CaptionResult, QueryTerm
from vsearch_app.errors import InvalidArgumentError
from vsearch_app.settings import AppSettings

N_PHOTOS = 60
W = DEFAULT_CAPTION_WEIGHT
STRONG = 2.0  # a caption with half of the query's word weight is enough for the top


def _photo(path, tag: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"IMG" + tag.encode() * 8)
    return path


def store_caption(lib: Library, path, text: str, *, prompt: str = "caption en", model: str = "pg") -> None:
    photo = captions.find_photo(lib.catalog, path)
    saved = captions.save(lib.catalog, photo, CaptionResult(text, prompt, model, "stop_token", token_count=3))
    assert saved.stored_at is not None


def ranked(lib: Library, query, weight: float, **options) -> list[tuple]:
    return [(h.path, h.score, h.caption_matched) for h in lib.search(query, limit=N_PHOTOS, caption_weight=weight,
                                                                      **options)]


def cosines(lib: Library, query: str) -> dict:
    """Every photo's exact cosine similarity to a text query (the FakeEmbedder's vectors are unit length)."""
    ids, vectors = lib.catalog.embeddings("fake-model")
    sims = vectors @ content_vector(query.encode())
    return {path: float(s) for path, s in zip(lib.catalog.paths_for_ids(ids), sims, strict=True)}


@pytest.fixture
def lib(tmp_path):
    root = tmp_path / "photos"
    paths = [_photo(root / f"p{i:02d}.jpg", f"photo{i}") for i in range(N_PHOTOS)]
    library = Library(tmp_path / "data", model_id="fake-model", embedder_factory=FakeEmbedder)
    library.add_folder(root)
    assert library.index().embedded == N_PHOTOS
    library.paths = paths
    yield library
    library.close()


def worst_for(lib: Library, query: str):
    sims = cosines(lib, query)
    return min(sims, key=sims.get)


# --- the acceptance line: one word, one photo ---------------------------------------------------------------------


def median_for(lib: Library, query: str):
    sims = cosines(lib, query)
    return sorted(sims, key=sims.get)[len(sims) // 2]


@pytest.mark.parametrize(("pick", "weight"), [(median_for, W), (worst_for, W), (worst_for, STRONG)])
def test_a_word_only_one_caption_holds_ranks_that_photo_first_and_weight_0_changes_nothing(lib, pick, weight):
    plain = ranked(lib, "zorblax", 0.0)
    target = pick(lib, "zorblax")  # in the middle of the vectors' ranking, or last
    store_caption(lib, target, "Zorblax sitting on a wooden bench")
    for other in lib.paths[:10]:
        if other != target:
            store_caption(lib, other, "a wooden bench in a park")
    assert ranked(lib, "zorblax", 0.0) == plain  # identical list: paths, scores, flags
    fused = lib.search("zorblax", limit=N_PHOTOS, caption_weight=weight)
    assert fused[0].path == target and fused[0].caption_matched
    assert fused[0].caption == "Zorblax sitting on a wooden bench"
    assert fused[0].score == pytest.approx(cosines(lib, "zorblax")[target], abs=1e-5)  # the score stays the cosine
    # Every other photo keeps its order and its score.
    assert [(h.path, h.score) for h in fused[1:]] == [(p, s) for p, s, _ in plain if p != target]
    assert not any(h.caption_matched for h in fused[1:])


def test_the_matched_photo_enters_even_when_the_index_top_k_missed_it(lib):
    target = worst_for(lib, "zorblax")
    store_caption(lib, target, "Zorblax")
    assert target not in [h.path for h in lib.search("zorblax", limit=3, caption_weight=0)]
    top = lib.search("zorblax", limit=3, caption_weight=STRONG)
    assert top[0].path == target and top[0].caption_matched and len(top) == 3


def test_a_library_without_captions_ranks_as_before_for_any_weight(lib):
    plain = ranked(lib, "red kite on a beach", 0.0)
    for weight in (0.05, W, 10.0):
        assert ranked(lib, "red kite on a beach", weight) == plain


def test_image_and_photo_queries_are_unchanged(lib):
    for i, path in enumerate(lib.paths[:20]):
        store_caption(lib, path, f"caption number {i} with {path.name}")
    image_query = [QueryTerm("image", str(lib.paths[3]))]
    photo_query = [QueryTerm.of_photo(lib.catalog.get_file(lib.paths[4]).id)]
    for query in (image_query, photo_query):
        assert ranked(lib, query, 10.0) == ranked(lib, query, 0.0)


def test_negative_terms_never_raise_a_photo(lib):
    target = worst_for(lib, "dog - zorblax")
    store_caption(lib, target, "Zorblax the dog")
    plain = ranked(lib, "cat - zorblax", 0.0)
    assert ranked(lib, "cat - zorblax", 10.0) == plain
    assert query_words([QueryTerm("text", "zorblax dog"), QueryTerm("text", "dog", -1.0)]) == {"zorblax": 1.0}


def test_a_stale_caption_does_not_count(lib):
    target = worst_for(lib, "zorblax")
    store_caption(lib, target, "Zorblax")
    assert lib.search("zorblax", limit=1, caption_weight=STRONG)[0].path == target
    target.write_bytes(b"IMG new content of the photo")  # the photo changed: the caption describes the old one
    lib.index()
    stale = caption_text_index.rows_with_word(lib.catalog, "zorblax")
    assert len(stale) == 1 and caption_text_index.current_rows(lib.catalog, stale)[0].size == 0
    assert not any(h.caption_matched for h in lib.search("zorblax", limit=N_PHOTOS, caption_weight=10.0))


def test_the_best_of_a_photos_captions_is_the_one_shown(lib):
    target = worst_for(lib, "golden kite")
    store_caption(lib, target, "a kite", prompt="caption en")
    store_caption(lib, target, "a golden kite over the sea", prompt="describe en")
    store_caption(lib, lib.paths[0] if lib.paths[0] != target else lib.paths[1], "a golden retriever")
    hit = lib.search("golden kite", limit=1, caption_weight=W)[0]  # the retriever's caption holds only "golden"
    assert hit.path == target and hit.caption == "a golden kite over the sea"


def test_the_folder_filter_and_the_threshold_apply_to_caption_matches(tmp_path):
    root = tmp_path / "photos"
    inside = [_photo(root / "in" / f"a{i}.jpg", f"in{i}") for i in range(5)]
    outside = [_photo(root / "out" / f"b{i}.jpg", f"out{i}") for i in range(5)]
    lib = Library(tmp_path / "data", model_id="fake-model", embedder_factory=FakeEmbedder)
    try:
        lib.add_folder(root)
        lib.index()
        for path in outside:
            store_caption(lib, path, "zorblax")
        hits = lib.search("zorblax", limit=20, folder=root / "in", caption_weight=10.0)
        assert {h.path for h in hits} == set(inside) and not any(h.caption_matched for h in hits)
        sims = cosines(lib, "zorblax")
        cut = sorted(sims[p] for p in outside)[2]  # two of the matched photos score below it
        hits = lib.search("zorblax", limit=20, threshold=cut, caption_weight=10.0)
        assert all(h.score >= cut for h in hits)
        assert {h.path for h in hits if h.caption_matched} == {p for p in outside if sims[p] >= cut}
    finally:
        lib.close()


# --- the fusion, exactly --------------------------------------------------------------------------------------------


def expected_fused_order(lib: Library, query: str, weight: float) -> list:
    """The whole ranking by brute force: each matched photo moved min(1, weight * match) of the way from its cosine
    to the summit (the best cosine plus the gap from the best to the 100th, here the last of 60); ties by cosine."""
    terms = [QueryTerm("text", query)]
    matches = find_matches(lib.catalog, terms, "fake-model")
    boost = dict(zip(lib.catalog.paths_for_ids(matches.file_ids), matches.match.tolist(), strict=True))
    sims = cosines(lib, query)
    summit = 2 * max(sims.values()) - min(sims.values())
    fused = {p: s + min(1.0, weight * boost.get(p, 0.0)) * (summit - s) for p, s in sims.items()}
    return sorted(fused, key=lambda p: (-fused[p], -sims[p]))


def test_the_fused_ranking_is_cosine_plus_weight_times_match_and_pages_agree(lib):
    rng = np.random.default_rng(7)
    vocabulary = ["kite", "beach", "dog", "sunset", "bench", "river", "tower", "market"]
    for path in lib.paths:
        if rng.random() < 0.6:
            store_caption(lib, path, " ".join(rng.choice(vocabulary, size=3, replace=False)))
    query, weight = "kite on the beach at sunset", 0.3
    whole = lib.search_results(query, caption_weight=weight).hits(0, N_PHOTOS)
    assert [h.path for h in whole] == expected_fused_order(lib, query, weight)
    assert any(h.caption_matched for h in whole) and not all(h.caption_matched for h in whole)
    for page_size in (1, 4, 7):
        results = lib.search_results(query, caption_weight=weight)
        paged = [h for start in range(0, N_PHOTOS, page_size) for h in results.hits(start, page_size)]
        assert paged == whole


def test_matches_are_scored_from_the_word_weights(lib):
    """A caption with every word scores 1; with one of two words, that word's share of the query's weight."""
    store_caption(lib, lib.paths[0], "a zorblax and a kite")
    store_caption(lib, lib.paths[1], "a kite")
    store_caption(lib, lib.paths[2], "a bench")
    matches = find_matches(lib.catalog, [QueryTerm("text", "Zorblax kite")], "fake-model")
    by_path = dict(zip(lib.catalog.paths_for_ids(matches.file_ids), matches.match.tolist(), strict=True))
    n = 3
    zorblax, kite = caption_match.word_weight(n, 1), caption_match.word_weight(n, 2)
    assert by_path == pytest.approx({lib.paths[0]: 1.0, lib.paths[1]: kite / (zorblax + kite)})
    assert matches.file_ids[0] == lib.catalog.get_file(lib.paths[0]).id  # best first


# --- Recall@1 of a fact only the captions know ---------------------------------------------------------------------

NAMES = ["Zorblax", "Quentavio", "Mirrowen", "Plumbeck", "Thadrix", "Ovalinde", "Krespin", "Yulvaro", "Brannoch",
         "Sefirah", "Gorvath", "Elowick"]


def test_recall_at_1_for_made_up_names_rises_from_chance_to_one(lib):
    """Captions carry names the embedding model cannot know; "photo of NAME" finds the named photo only with
    fusion on. (The FakeEmbedder's text vectors are unrelated to the photos: chance is 1 in 60.)"""
    named = dict(zip(NAMES, lib.paths[::5], strict=False))
    for name, path in named.items():
        store_caption(lib, path, f"{name} standing next to a red car")
    for path in lib.paths[1::5]:
        store_caption(lib, path, "a red car parked in the street")

    def recall_at_1(weight: float) -> float:
        return sum(lib.search(f"photo of {name}", limit=1, caption_weight=weight)[0].path == path
                   for name, path in named.items()) / len(named)

    assert recall_at_1(0.0) <= 2 / len(named)
    assert recall_at_1(W) == 1.0


# --- words and FTS syntax -------------------------------------------------------------------------------------------


def test_words_fold_case_and_accents_like_the_index():
    assert words("Café au LAIT, naïve_idea! 2024") == ["cafe", "au", "lait", "naive", "idea", "2024"]
    assert query_words([QueryTerm("text", "a photo of the Eiffel tower"), QueryTerm("text", "tower", 2.0)]) == {
        "eiffel": 1.0, "tower": 2.0}


@pytest.mark.parametrize("text", [
    '"', '""', 'say "hi', "*", "kite*", "AND", "kite AND", "OR NOT", "NEAR(", "NEAR(a b, 2)", "^kite", "col:kite",
    "(kite", "kite)", "{text}: kite", "-kite", "café", "日本の写真", "Ελλάδα", "emoji 🪁 kite", "\x00", "a'b", "+",
])
def test_no_query_text_is_read_as_fts_syntax(lib, text):
    store_caption(lib, lib.paths[0], 'a "quoted" kite AND the café NEAR( 日本の写真 *')
    for term in (QueryTerm("text", text), QueryTerm("text", f"kite {text}")):
        find_matches(lib.catalog, [term], "fake-model")  # never raises
    for word in words(text) + [text]:
        caption_text_index.rows_with_word(lib.catalog, word)  # the raw text too, quoted
    if "kite" in text.lower():
        assert find_matches(lib.catalog, [QueryTerm("text", text)], "fake-model") is not None


def test_quoted_words_match_literally(lib):
    store_caption(lib, lib.paths[0], "the word AND and a star")
    store_caption(lib, lib.paths[1], "nothing special")
    assert len(caption_text_index.rows_with_word(lib.catalog, "AND")) == 1  # the word, not the operator


# --- the weight -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [-0.1, 10.5, math.nan, math.inf, "lots"])
def test_a_weight_out_of_range_is_refused(lib, weight):
    with pytest.raises(InvalidArgumentError, match="caption weight is a number from 0") as err:
        lib.search("kite", caption_weight=weight)
    assert err.value.param == "caption_weight"


def test_the_service_remembers_the_weight_and_a_query_can_override_it(tmp_path):
    root = tmp_path / "photos"
    for i in range(8):
        _photo(root / f"p{i}.jpg", f"svc{i}")
    settings = AppSettings.resolve(tmp_path / "data", model="fake-model")
    service = LibraryService(settings, Library(settings.data_dir, model_id="fake-model",
                                               embedder_factory=FakeEmbedder))
    try:
        service.add_folder(root)
        service.index()
        assert service.caption_weight() == DEFAULT_CAPTION_WEIGHT
        sims = {h.path: h.score for h in service.search("zorblax", limit=8, caption_weight=0)}
        target = min(sims, key=sims.get)
        store_caption(service._library, target, "Zorblax")
        assert service.search("zorblax", limit=1)[0].path == target  # the default is on
        assert service.set_caption_weight(0) == 0.0
        assert service.search("zorblax", limit=1)[0].path != target
        assert service.search_results("zorblax", caption_weight=STRONG).hits(0, 1)[0].path == target
        assert service.search_page("zorblax", 0, 1, caption_weight=STRONG).hits[0].path == target
        assert service.search_page("zorblax", 0, 1).hits[0].path != target
        with pytest.raises(InvalidArgumentError) as err:
            service.set_caption_weight(11)
        assert err.value.param == "caption_weight" and service.caption_weight() == 0.0
        assert service.set_caption_weight(None) == DEFAULT_CAPTION_WEIGHT
        service._library.catalog.set_setting("caption_weight", "garbage")  # edited by hand
        assert service.caption_weight() == DEFAULT_CAPTION_WEIGHT
    finally:
        service.close()


def test_a_folder_search_measures_the_spread_at_the_100th_photo(tmp_path):
    """The exact ranker (a folder filter) returns every photo at once; the summit still comes from the 100th."""
    root = tmp_path / "photos"
    for i in range(150):
        _photo(root / "in" / f"a{i:03d}.jpg", f"many{i}")
    lib = Library(tmp_path / "data", model_id="fake-model", embedder_factory=FakeEmbedder)
    try:
        lib.add_folder(root)
        lib.index()
        sims = sorted(cosines(lib, "zorblax").values(), reverse=True)
        target = worst_for(lib, "zorblax")
        store_caption(lib, target, "zorblax")
        results = lib.search_results("zorblax", folder=root / "in", caption_weight=W)
        assert results.hits(0, 1)[0].path == target
        assert results._fusion.spread == pytest.approx(sims[0] - sims[99], abs=1e-5)
        assert results._fusion.summit == pytest.approx(2 * sims[0] - sims[99], abs=1e-5)
    finally:
        lib.close()


def test_the_vector_cache_follows_the_catalogs_embeddings(lib):
    cache = caption_match.VectorCache()
    first, second = (lib.catalog.get_file(p) for p in lib.paths[:2])
    ids, vectors = cache.vectors(lib.catalog, np.array([second.id, first.id, 10**9]), "fake-model")
    assert ids.tolist() == sorted([first.id, second.id])  # an id without a vector is left out
    assert np.allclose(vectors[0], lib.catalog.get_embedding(lib.paths[0], "fake-model"))
    new_vector = -lib.catalog.get_embedding(lib.paths[0], "fake-model")
    lib.catalog.record_embedding(lib.paths[0], "fake-model", new_vector, size=first.size, mtime_ns=first.mtime_ns)
    ids, vectors = cache.vectors(lib.catalog, np.array([first.id]), "fake-model")
    assert np.allclose(vectors[0], new_vector)  # the catalog's change counter moved: read again
