"""Search filters, sort orders, browsing without a query, the metadata backfill and the good-match cut, in the engine
(core/library/filters.py, filtered_search.py, metadata_backfill.py, good_match.py) with the fake embedder."""

from __future__ import annotations

import numpy as np
import pytest

from tests.core.library_fakes import DIM, FakeEmbedder, content_vector
from tests.core.test_photo_metadata import jpeg
from vsearch_app.core.library import filtered_search
from vsearch_app.core.library.filters import normalise_date
from vsearch_app.core.library.good_match import good_match_cut
from vsearch_app.core.library.library import Library
from vsearch_app.core.library.photo_metadata import META_VERSION, PhotoMetadata
from vsearch_app.core.types import SearchFilter, SortOrder
from vsearch_app.errors import InvalidArgumentError

# name, folder, make, model, taken, size
PHOTOS = [
    ("a1.jpg", "trip", "Google", "Pixel 7", "2019:06:01 10:00:00", (60, 40)),
    ("a2.jpg", "trip", "Google", "Pixel 7", "2019:06:01 10:00:00", (40, 60)),  # same moment as a1: ties by path
    ("a3.jpg", "trip", "Google", "Pixel 7a", "2019:12:31 23:59:59", (50, 50)),
    ("b1.jpg", "home", "NIKON CORPORATION", "NIKON D750", "2018:03:04 05:06:07", (80, 40)),
    ("b2.jpg", "home", "NIKON CORPORATION", "NIKON D750", "2020:06:01 00:00:00", (30, 60)),
    ("c1.jpg", "home", "Apple", "iPhone 12", "2020:05:31 23:59:59", (100, 100)),
    ("c2.jpg", "trip/deep", "Apple", "iPhone 12", "2021:01:01 00:00:00", (90, 30)),
]


@pytest.fixture
def lib(tmp_path):
    root = tmp_path / "photos"
    for name, folder, make, model, taken, size in PHOTOS:
        (root / folder).mkdir(parents=True, exist_ok=True)
        jpeg(root / folder / name, make=make, model=model, taken=taken, size=size)
    library = Library(tmp_path / "data", model_id="fake-model", embedder_factory=FakeEmbedder)
    library.add_folder(root)
    library.index()
    yield library
    library.close()


def names(hits):
    return [h.path.name for h in hits]


def browse(lib, sort=SortOrder.SCORE, **filters):
    return names(lib.search("", limit=100, filters=SearchFilter(**filters), sort=sort))


@pytest.mark.parametrize(("text", "iso"), [
    ("2019", "2019-01-01"), ("2019-06", "2019-06-01"), ("2019-06-07", "2019-06-07"),
    ("2019-06-07T08:09", "2019-06-07T08:09:00"), ("2019-06-07 08:09:10", "2019-06-07T08:09:10"),
])
def test_date_forms(text, iso):
    assert normalise_date(text, "taken_after") == iso


@pytest.mark.parametrize("text", ["19", "2019-6", "2019-13", "2019-02-30", "June 2019", "2019/06/01", ""])
def test_bad_dates_name_their_parameter(text):
    with pytest.raises(InvalidArgumentError) as err:
        normalise_date(text, "taken_before")
    assert err.value.param == "taken_before"


def test_browsing_lists_every_photo_newest_first_with_ties_by_path(lib):
    assert browse(lib) == ["c2.jpg", "b2.jpg", "c1.jpg", "a3.jpg", "a1.jpg", "a2.jpg", "b1.jpg"]
    assert browse(lib, SortOrder.NAME) == sorted(p[0] for p in PHOTOS)
    hits = lib.search([], limit=3)  # no terms at all, no filter: a browse too
    assert [h.score for h in hits] == [0.0] * 3 and not any(h.good_match for h in hits)


def test_after_is_inclusive_and_before_exclusive(lib):
    assert browse(lib, taken_after="2019", taken_before="2020") == ["a3.jpg", "a1.jpg", "a2.jpg"]
    assert browse(lib, taken_after="2019-06-01", taken_before="2019-06-02") == ["a1.jpg", "a2.jpg"]
    assert browse(lib, taken_before="2020-06") == ["c1.jpg", "a3.jpg", "a1.jpg", "a2.jpg", "b1.jpg"]
    assert browse(lib, taken_after="2020-06") == ["c2.jpg", "b2.jpg"]


def test_camera_is_a_case_insensitive_substring_of_make_and_model(lib):
    assert browse(lib, camera="pixel 7") == ["a3.jpg", "a1.jpg", "a2.jpg"]
    assert browse(lib, camera="PIXEL 7A") == ["a3.jpg"]
    assert browse(lib, camera="nikon d7") == ["b2.jpg", "b1.jpg"]
    assert browse(lib, camera="Leica") == []
    assert lib.cameras() == [("Apple iPhone 12", 2), ("Google Pixel 7", 2), ("Nikon D750", 2), ("Google Pixel 7a", 1)]


def test_size_orientation_and_folder_filters(lib, tmp_path):
    assert browse(lib, min_pixels=2700) == ["c2.jpg", "c1.jpg", "b1.jpg"]  # 90 x 30 is 2,700
    assert browse(lib, orientation="portrait") == ["b2.jpg", "a2.jpg"]
    assert browse(lib, orientation="square") == ["c1.jpg", "a3.jpg"]
    assert browse(lib, orientation="landscape") == ["c2.jpg", "a1.jpg", "b1.jpg"]
    assert browse(lib, folders=(tmp_path / "photos" / "trip",)) == ["c2.jpg", "a3.jpg", "a1.jpg", "a2.jpg"]
    both = browse(lib, folders=(tmp_path / "photos" / "trip" / "deep", tmp_path / "photos" / "home"))
    assert both == ["c2.jpg", "b2.jpg", "c1.jpg", "b1.jpg"]
    # the folder argument narrows a filter's folders
    hits = lib.search("", limit=10, folder=tmp_path / "photos" / "trip",
                      filters=SearchFilter(folders=(tmp_path / "photos",), camera="iphone"))
    assert names(hits) == ["c2.jpg"]
    hits = lib.search("", limit=10, folder=tmp_path / "photos" / "home",
                      filters=SearchFilter(folders=(tmp_path / "photos" / "trip",)))
    assert hits == []


def test_a_query_with_a_filter_ranks_only_what_the_filter_allows(lib):
    everything = lib.search("sunset", limit=100)
    nikon = lib.search("sunset", limit=100, filters=SearchFilter(camera="nikon"))
    assert names(nikon) == [n for n in names(everything) if n.startswith("b")]
    expected = [h.score for h in everything if h.path.name.startswith("b")]
    assert [h.score for h in nikon] == pytest.approx(expected, abs=1e-5)
    assert all(h.camera == "Nikon D750" and h.taken_at_source == "exif" for h in nikon)


def test_sorting_a_query_by_date_or_name_keeps_its_scores_and_is_stable(lib):
    by_score = {h.path.name: h.score for h in lib.search("sunset", limit=100)}
    by_date = lib.search("sunset", limit=100, sort=SortOrder.DATE)
    assert names(by_date) == ["c2.jpg", "b2.jpg", "c1.jpg", "a3.jpg", "a1.jpg", "a2.jpg", "b1.jpg"]
    assert all(by_score[h.path.name] == h.score for h in by_date)
    assert names(lib.search("sunset", limit=100, sort=SortOrder.DATE)) == names(by_date)  # the same every time
    results = lib.search_results("sunset", sort=SortOrder.DATE)
    assert names(results.hits(0, 3) + results.hits(3, 10)) == names(by_date)  # pages agree with one listing
    by_name = lib.search("sunset", limit=100, sort="name")
    assert names(by_name) == sorted(names(by_name))
    # with a limit, the best hits are re-sorted, not the newest photos listed
    best3 = sorted(by_score, key=by_score.get, reverse=True)[:3]
    assert sorted(names(lib.search("sunset", limit=3, sort=SortOrder.DATE))) == sorted(best3)


def test_photo_months_count_what_the_filter_allows(lib):
    assert lib.photo_months() == [("2018-03", 1), ("2019-06", 2), ("2019-12", 1), ("2020-05", 1), ("2020-06", 1),
                                  ("2021-01", 1)]
    assert lib.photo_months(SearchFilter(camera="google")) == [("2019-06", 2), ("2019-12", 1)]


@pytest.mark.parametrize(("filters", "param"), [
    (SearchFilter(taken_after="last year"), "taken_after"),
    (SearchFilter(taken_after="2020", taken_before="2019"), "taken_before"),
    (SearchFilter(camera="  "), "camera"),
    (SearchFilter(min_pixels=0), "min_pixels"),
    (SearchFilter(orientation="diagonal"), "orientation"),
])
def test_bad_filters_are_refused_with_their_parameter(lib, filters, param):
    with pytest.raises(InvalidArgumentError) as err:
        lib.search("sunset", filters=filters)
    assert err.value.param == param
    with pytest.raises(InvalidArgumentError) as err:
        lib.search("sunset", sort="random")
    assert err.value.param == "sort"


def test_the_backfill_fills_old_rows_without_embedding_anything(lib):
    catalog = lib.catalog
    with catalog.transaction() as conn:  # as a catalog migrated from v4 leaves them
        conn.execute("UPDATE files SET captured_source = NULL, captured_offset = NULL, camera_make = NULL, "
                     "camera_model = NULL, lens = NULL, has_gps = NULL, meta_version = 0")
    assert lib.cameras() == []
    embedder = lib.embedder()
    before = list(embedder.embedded_paths)
    events = []
    report = lib.index(progress=events.append)
    assert report.embedded == 0 and embedder.embedded_paths == before  # nothing embedded again
    reading = [e for e in events if e.phase == "reading metadata"]
    assert reading[0].done == 0 and reading[-1].done == reading[-1].total == len(PHOTOS)
    assert all(r.meta_version == META_VERSION for r in catalog.files_under(lib.catalog.roots()[0].path))
    assert ("Nikon D750", 2) in lib.cameras()
    events.clear()
    lib.index(progress=events.append)  # nothing left to read: no phase at all
    assert not [e for e in events if e.phase == "reading metadata"]


@pytest.fixture(scope="module")
def crowded(tmp_path_factory):
    """10,000 photos that match "sunset" almost perfectly, none from the Pixel, and 40 Pixel photos that all score
    below every one of them. Rows and vectors go straight into the catalog (no files needed to search)."""
    tmp = tmp_path_factory.mktemp("crowded")
    root = tmp / "photos"
    root.mkdir()
    library = Library(tmp / "data", model_id="fake-model", embedder_factory=FakeEmbedder)
    library.add_folder(root)
    query = content_vector(b"sunset")
    rng = np.random.default_rng(7)
    other = rng.standard_normal(DIM).astype(np.float32)
    other -= (other @ query) * query
    other /= np.linalg.norm(other)
    inside = {}
    with library.catalog.transaction():
        for i in range(10_000):
            vector = query + 0.05 * rng.standard_normal(DIM).astype(np.float32)
            fid = library.catalog.record_embedding(root / f"out{i:05d}.jpg", "fake-model", vector, size=1, mtime_ns=1)
            library.catalog.record_metadata(fid, PhotoMetadata("2020-01-01T00:00:00", "exif", None, "Canon", "EOS R5",
                                                               None, False, 40, 30), META_VERSION)
        for i in range(40):
            alpha = 0.7 - i * 0.015  # cosine to the query: 0.7 down to 0.115, all far below the crowd's ~0.99
            vector = alpha * query + np.sqrt(1 - alpha**2) * other
            fid = library.catalog.record_embedding(root / f"pixel{i:02d}.jpg", "fake-model", vector, size=1,
                                                   mtime_ns=1)
            library.catalog.record_metadata(fid, PhotoMetadata("2021-01-01T00:00:00", "exif", None, "Google",
                                                               "Pixel 7", None, False, 40, 30), META_VERSION)
            inside[fid] = alpha
    yield library, inside
    library.close()


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "index"])
def test_a_filter_returns_its_best_matches_even_below_ten_thousand_others(crowded, monkeypatch, exact):
    library, inside = crowded
    if not exact:  # the large-filter path: the index's filtered search
        monkeypatch.setattr(filtered_search, "EXACT_FILTER_LIMIT", 0)
    unfiltered = library.search("sunset", limit=50)
    assert not any(h.path.name.startswith("pixel") for h in unfiltered)  # the Pixel photos are far down
    hits = library.search("sunset", limit=10, filters=SearchFilter(camera="pixel 7"))
    best = sorted(inside, key=inside.get, reverse=True)[:10]
    assert [h.file_id for h in hits] == best
    assert [h.score for h in hits] == pytest.approx([inside[i] for i in best], abs=1e-4)
    dated = library.search("sunset", limit=10, filters=SearchFilter(taken_after="2021"))
    assert [h.file_id for h in dated] == best


def test_the_good_match_cut_marks_what_stands_out_from_the_library():
    rng = np.random.default_rng(3)
    library = rng.standard_normal((2000, 64)).astype(np.float32)
    query = rng.standard_normal(64).astype(np.float32)
    cut = good_match_cut(query, library)
    unit = query / np.linalg.norm(query)
    scores = library @ unit / np.linalg.norm(library, axis=1)
    assert 1.0 > cut > np.percentile(scores, 99.9)  # unrelated photos are not marked, the query itself would be
    near = unit + 0.3 * rng.standard_normal(64).astype(np.float32) / 8
    assert (near / np.linalg.norm(near)) @ unit > cut
    assert good_match_cut(query, library[:3]) is None  # too few photos to tell


def test_hits_above_the_cut_are_marked(crowded):
    library, inside = crowded
    low = library.search("sunset", limit=40, filters=SearchFilter(camera="pixel"))
    cut = library.good_match_cut(content_vector(b"sunset"), library.vector_index())
    assert [h.good_match for h in low] == [h.score >= cut for h in low]
    assert not any(h.good_match for h in low)  # far below the crowd of near-copies that makes this library
