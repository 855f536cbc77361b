"""Search results for the desktop app: hits with the catalog's facts, structured query terms (Find similar included),
and paging through thousands of hits a page at a time (issue 11)."""

from __future__ import annotations

import os
from datetime import datetime

import numpy as np
import pytest
from PIL import Image

from tests.core.library_fakes import FakeEmbedder, content_vector
from vsearch_app.core import service as service_module
from vsearch_app.core.library.library import Library
from vsearch_app.core.library.search import SearchResults
from vsearch_app.core.service import LibraryService
from vsearch_app.core.store.catalog import Catalog
from vsearch_app.core.store.sharded_index import ShardedIndex
from vsearch_app.core.types import QueryTerm, SearchHit
from vsearch_app.errors import InvalidArgumentError
from vsearch_app.settings import AppSettings

N_BIG = 3000
PAGE = 500


def _photo(path, tag: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"IMG" + tag.encode() * 8)
    return path


class CountingFactory:
    """An embedder factory that says whether the model was ever loaded."""

    def __init__(self) -> None:
        self.embedder = FakeEmbedder()
        self.loads = 0

    def __call__(self) -> FakeEmbedder:
        self.loads += 1
        return self.embedder


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A library of N_BIG indexed photos (FakeEmbedder), shared by the read-only paging tests."""
    tmp = tmp_path_factory.mktemp("big")
    root = tmp / "photos"
    for i in range(N_BIG):
        _photo(root / f"d{i % 7}" / f"p{i:05d}.jpg", f"big{i}")
    lib = Library(tmp / "data", model_id="fake-model", embedder_factory=FakeEmbedder, commit_every=512)
    lib.add_folder(root)
    assert lib.index().embedded == N_BIG
    yield lib, root
    lib.close()


@pytest.fixture
def small(tmp_path):
    root = tmp_path / "photos"
    paths = [_photo(root / f"p{i}.jpg", f"small{i}") for i in range(12)]
    factory = CountingFactory()
    lib = Library(tmp_path / "data", model_id="fake-model", embedder_factory=factory)
    lib.add_folder(root)
    lib.index()
    yield lib, root, paths, factory
    lib.close()


# --- richer hits --------------------------------------------------------------------------------------------------


def _jpeg_with_exif(path, *, taken: str | None, orientation: int | None, seed: int):
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))  # 64 wide, 48 high
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if taken is not None:
        exif.get_ifd(0x8769)[0x9003] = taken  # DateTimeOriginal
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, exif=exif)
    return path


def test_hits_carry_what_the_catalog_knows(tmp_path):
    root = tmp_path / "photos"
    shot = _jpeg_with_exif(root / "shot.jpg", taken="2021:05:03 14:22:01", orientation=6, seed=1)
    plain = _jpeg_with_exif(root / "plain.jpg", taken=None, orientation=None, seed=2)
    os.utime(plain, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    lib = Library(tmp_path / "data", model_id="fake-model", embedder_factory=FakeEmbedder)
    try:
        lib.add_folder(root)
        lib.index()
        lib.catalog.set_caption(shot, "a sideways test card")
        hits = {h.path: h for h in lib.search('"anything"', limit=5)}
        assert set(hits) == {shot, plain}
        first, second = hits[shot], hits[plain]
        assert first.file_id == lib.catalog.get_file(shot).id and second.file_id == lib.catalog.get_file(plain).id
        assert first.size == shot.stat().st_size and second.size == plain.stat().st_size
        assert (first.width, first.height) == (48, 64)  # orientation 6: shown turned, so the sides swap
        assert (second.width, second.height) == (64, 48)
        assert (first.taken_at, first.taken_at_source) == ("2021-05-03T14:22:01", "exif")
        expected = datetime.fromtimestamp(1_600_000_000).isoformat(timespec="seconds")
        assert (second.taken_at, second.taken_at_source) == (expected, "mtime")
        assert first.caption == "a sideways test card" and second.caption == ""
        assert first.online and second.online
    finally:
        lib.close()


def test_a_plain_hit_still_reads_as_path_and_score(tmp_path):
    hit = SearchHit(tmp_path / "a.jpg", 0.5)
    assert (hit.file_id, hit.size, hit.width, hit.taken_at, hit.caption, hit.online) == (-1, 0, None, None, "", True)


def test_hits_of_an_unreachable_folder_say_they_are_offline(tmp_path):
    """A drive unplugged since the last scan: its photos are still in the catalog as indexed (no reconcile ran),
    and the hits say they cannot be opened now."""
    home, drive = tmp_path / "home", tmp_path / "drive"
    _photo(home / "h.jpg", "home")
    _photo(drive / "d.jpg", "drive")
    lib = Library(tmp_path / "data", model_id="fake-model", embedder_factory=FakeEmbedder)
    try:
        lib.add_folder(home)
        lib.add_folder(drive)
        lib.index()
        os.rename(drive, tmp_path / "elsewhere")
        online = {h.path.name: h.online for h in lib.search('"x"', limit=5)}
        assert online == {"h.jpg": True, "d.jpg": False}
    finally:
        lib.close()


# --- structured queries -------------------------------------------------------------------------------------------


def test_terms_give_the_same_hits_as_the_text_syntax(small):
    lib, root, paths, _ = small
    as_text = lib.search(f'"red car" + 0.5:{paths[3]} - dog', limit=6)
    as_terms = lib.search([QueryTerm("text", "red car"), QueryTerm("image", str(paths[3]), 0.5),
                           QueryTerm("text", "dog", -1.0)], limit=6)
    assert as_terms == as_text


def test_a_term_text_is_never_parsed(small):
    """Text with operators, quotes and a weight-like start is searched as it is, with no quoting."""
    lib, *_ = small
    tricky = '2:"it\'s" - t-shirt + .jpg'
    assert np.allclose(lib.query_vector([QueryTerm("text", tricky)]), content_vector(tricky.encode()), atol=1e-6)
    assert len(lib.search([QueryTerm("text", tricky)], limit=3)) == 3


def test_a_relative_image_term_is_resolved_against_cwd(small):
    lib, root, paths, _ = small
    hits = lib.search([QueryTerm("image", paths[5].name)], limit=1, cwd=root)
    assert hits[0].path == paths[5] and hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_find_similar_uses_the_stored_vector_without_loading_the_model(tmp_path, small):
    lib, root, paths, _ = small
    target = lib.catalog.get_file(paths[7])
    lib.close()
    factory = CountingFactory()
    again = Library(tmp_path / "data", model_id="fake-model", embedder_factory=factory)
    try:
        hits = again.search([QueryTerm.of_photo(target.id)], limit=3)
        assert hits[0].path == paths[7] and hits[0].file_id == target.id
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        # An indexed, unchanged image given by path reuses its vector too.
        assert again.search([QueryTerm("image", str(paths[7]))], limit=1)[0].path == paths[7]
        assert again.search([QueryTerm.of_photo(target.id), QueryTerm.of_photo(hits[1].file_id, -0.5)], limit=1)
        assert factory.loads == 0
    finally:
        again.close()


def test_find_similar_refuses_a_photo_without_a_vector(small):
    lib, root, paths, factory = small
    newcomer = _photo(root / "new.jpg", "not indexed yet")
    lib.reconcile()
    pending = lib.catalog.get_file(newcomer)
    assert pending.state == "pending"
    loads = factory.loads
    with pytest.raises(InvalidArgumentError, match="new.jpg has no vector of the model fake-model") as err:
        lib.search([QueryTerm.of_photo(pending.id)])
    assert err.value.param == "query" and factory.loads == loads
    with pytest.raises(InvalidArgumentError, match="no longer in the library") as err:
        lib.search([QueryTerm.of_photo(10**9)])
    assert err.value.param == "query"


@pytest.mark.parametrize(
    ("terms", "problem"),
    [
        ([QueryTerm("text", "dog", -1.0)], "only negative"),
        ([QueryTerm("text", "  ")], "cannot be empty"),
        ([QueryTerm("text", "dog", 0.0)], "weight"),
        ([QueryTerm("text", "dog", float("inf"))], "weight"),
        ([QueryTerm("video", "dog")], "unknown query term kind"),
        ([QueryTerm("photo", "seven")], "whole number"),
        ([QueryTerm("image", "/no/such/photo.jpg")], "no image file"),
        ([QueryTerm("text", "dog"), "cat"], "not a mix"),
    ],
)
def test_bad_terms_are_refused_before_the_model_loads(small, terms, problem):
    lib, _, _, factory = small
    loads = factory.loads
    with pytest.raises(InvalidArgumentError, match=problem) as err:
        lib.search(terms)
    assert err.value.param == "query" and factory.loads == loads


def test_a_photo_term_has_no_query_text():
    with pytest.raises(InvalidArgumentError, match="find similar") as err:
        service_module.format_query([QueryTerm("text", "dog"), QueryTerm.of_photo(12)])
    assert err.value.param == "query"


def test_parse_query_terms_returns_the_one_term_type(tmp_path):
    terms = service_module.parse_query_terms('"red car" - 2:dog')
    assert terms == [QueryTerm("text", "red car", 1.0), QueryTerm("text", "dog", -2.0)]
    assert all(type(t) is QueryTerm for t in terms)


# --- paging -------------------------------------------------------------------------------------------------------


def _spy(monkeypatch, owner, name, calls):
    real = getattr(owner, name)

    def spy(self, *args, **kwargs):
        calls.append((args, kwargs))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, spy)


def test_pages_cover_every_hit_once_in_rank_order(big, monkeypatch):
    lib, root = big
    lookups, rankings = [], []
    _spy(monkeypatch, Catalog, "files_by_ids", lookups)
    _spy(monkeypatch, ShardedIndex, "search", rankings)
    results = lib.search_results('"a sunny beach"')
    assert isinstance(results, SearchResults) and results.max_total == N_BIG and not results.exhausted
    first = results.page(0, PAGE)
    assert [k["k"] for _, k in rankings] == [PAGE]  # the first page ranks one page of candidates, not 100,000
    assert first.hits == lib.search('"a sunny beach"', limit=PAGE)  # what a plain search of that size returns
    assert first.offset == 0 and first.total_known == PAGE and not first.exhausted and first.has_more
    pages = [first]
    while pages[-1].has_more:
        pages.append(results.page(pages[-1].offset + len(pages[-1].hits), PAGE))
    hits = [h for page in pages for h in page.hits]
    assert len(hits) == N_BIG == len({h.file_id for h in hits})
    assert {h.path for h in hits} == {p for p in root.rglob("*.jpg")}
    assert pages[-1].exhausted and pages[-1].total_known == N_BIG and results.max_total == N_BIG
    for page in pages:
        assert [h.score for h in page.hits] == sorted((h.score for h in page.hits), reverse=True)
    # Rows were built a page at a time, and the ranking widened geometrically rather than once per page.
    assert max(len(args[0]) for args, _ in lookups) <= PAGE
    ks = [k["k"] for _, k in rankings]
    assert ks == sorted(ks) and len(ks) <= 5
    # Asking again for a page already ranked ranks nothing new and gives the same hits.
    rankings.clear()
    assert results.page(1000, PAGE).hits == hits[1000:1500] and rankings == []


def test_a_page_past_the_end_and_an_empty_page(big):
    lib, _ = big
    results = lib.search_results('"x"', limit=1200)
    assert results.max_total == 1200
    tail = results.page(1100, PAGE)
    assert len(tail.hits) == 100 and tail.exhausted and not tail.has_more and tail.total_known == 1200
    assert results.page(5000, 10).hits == [] and results.page(0, 0).hits == []
    with pytest.raises(InvalidArgumentError) as err:
        results.page(-1, 10)
    assert err.value.param == "offset"
    with pytest.raises(InvalidArgumentError) as err:
        results.page(0, -5)
    assert err.value.param == "count"


def test_threshold_and_folder_pages_match_an_exact_ranking(big):
    """A folder filter is ranked exactly from the catalog, so every page can be checked against numpy."""
    lib, root = big
    folder = root / "d3"
    query_vector = lib.query_vector('"mountains"')
    ids, vectors = lib.catalog.embeddings_under(folder, "fake-model")
    scores = vectors @ query_vector / np.linalg.norm(vectors, axis=1)
    threshold = float(np.quantile(scores, 0.6))
    expected = ids[np.argsort(-scores, kind="stable")][: int((scores >= threshold).sum())]
    results = lib.search_results('"mountains"', threshold=threshold, folder=folder)
    got = [h.file_id for offset in range(0, len(expected) + 100, 100) for h in results.hits(offset, 100)]
    assert got == expected.tolist() and results.exhausted and results.total_known == len(expected)
    assert all(h.score >= threshold for h in results.hits(0, 50))


def test_a_threshold_ends_the_ranking_through_the_index(big):
    lib, _ = big
    results = lib.search_results('"mountains"', threshold=0.5)
    hits = [h for offset in range(0, N_BIG, PAGE) for h in results.hits(offset, PAGE)]
    assert results.exhausted and len(hits) == results.total_known < N_BIG
    assert all(h.score >= 0.5 for h in hits) and len({h.file_id for h in hits}) == len(hits)


def test_photos_deleted_between_pages_are_skipped_and_the_rest_move_up(small):
    lib, root, paths, _ = small
    results = lib.search_results('"x"')
    first = results.page(0, 4)
    second_before = lib.search('"x"', limit=12)[4:]
    for hit in second_before[:2]:
        lib.catalog.delete_file(hit.path)  # gone from the catalog; the index still holds them until synced
    second = results.page(4, 4)
    assert [h.path for h in second.hits] == [h.path for h in second_before[2:6]]
    assert not {h.path for h in first.hits} & {h.path for h in second.hits}
    rest = results.page(8, 10)
    assert len(rest.hits) == 2 and rest.exhausted and rest.total_known == 10


def test_offline_and_failed_photos_are_not_counted(tmp_path):
    home, drive = tmp_path / "home", tmp_path / "drive"
    for i in range(30):
        _photo(home / f"h{i}.jpg", f"home{i}")
        _photo(drive / f"d{i}.jpg", f"drive{i}")
    lib = Library(tmp_path / "data", model_id="fake-model", embedder_factory=FakeEmbedder)
    try:
        lib.add_folder(home)
        lib.add_folder(drive)
        lib.index()
        (home / "h0.jpg").write_bytes(b"BAD now")  # re-embedding fails: no current vector
        lib.index()
        os.rename(drive, tmp_path / "unplugged")
        lib.reconcile()
        results = lib.search_results('"x"')
        hits = results.hits(0, 7) + results.hits(7, 100)
        assert len(hits) == 29 and results.exhausted and results.total_known == 29
        assert all(h.path.parent == home and h.online for h in hits)
    finally:
        lib.close()


# --- the service ----------------------------------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path):
    root = tmp_path / "photos"
    for i in range(40):
        _photo(root / f"p{i:02d}.jpg", f"svc{i}")
    settings = AppSettings.resolve(tmp_path / "data", model="fake-model")
    factory = CountingFactory()
    library = Library(settings.data_dir, model_id="fake-model", embedder_factory=factory)
    svc = LibraryService(settings, library)
    svc.add_folder(root)
    svc.index()
    yield svc, factory.embedder
    svc.close()


def test_search_page_reuses_the_ranking_for_later_pages(service):
    svc, embedder = service
    every = svc.search("sunset", limit=40)
    calls = embedder.text_calls
    pages = [svc.search_page("sunset", offset, 15) for offset in (0, 15, 30)]
    assert embedder.text_calls == calls + 1  # offset 0 searched; 15 and 30 reused its ranking
    assert [h for p in pages for h in p.hits] == every
    assert [len(p.hits) for p in pages] == [15, 15, 10] and pages[-1].exhausted and not pages[-1].has_more
    svc.search_page("sunset", 0, 15)
    assert embedder.text_calls == calls + 2  # offset 0 always searches afresh
    other = svc.search_page([QueryTerm("text", "sunset"), QueryTerm("text", "sea", -0.5)], 15, 15)
    assert embedder.text_calls == calls + 3 and other.offset == 15  # another query: a new ranking
    results = svc.search_results([QueryTerm("text", "sunset")], threshold=-1.0)
    assert results.hits(0, 40) == every


def test_service_search_errors_name_their_parameter(service, tmp_path):
    svc, _ = service
    for kwargs, param in (({"limit": 0}, "limit"), ({"threshold": 1.5}, "threshold"),
                          ({"folder": tmp_path / "elsewhere"}, "folder")):
        with pytest.raises(InvalidArgumentError) as err:
            svc.search("dog", **kwargs)
        assert err.value.param == param, kwargs
        assert "--" not in str(err.value)
