"""`duplicates`: exact byte copies and near-identical shots on a generated set (tests/support/duplicate_scenes.py),
the keeper of each group, and the errors."""

from __future__ import annotations

import itertools
import shutil
import threading

import pytest

from tests.support.duplicate_scenes import PixelEmbedder, write_library
from vsearch_app.core.library import duplicates
from vsearch_app.core.library.duplicates import NEAR_THRESHOLD, find_duplicates
from vsearch_app.core.library.library import Library
from vsearch_app.errors import InvalidArgumentError, OperationCancelled


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("duplicates")
    made = write_library(tmp / "photos", scenes=12, singles=24)
    copy = shutil.copy(made["singles"][0], tmp / "photos" / "singles" / "copy of single00.jpg")
    library = Library(tmp / "data", model_id="pixels", embedder_factory=PixelEmbedder)
    library.add_folder(tmp / "photos")
    library.index()
    yield library, made, copy, tmp
    library.close()


def pairs(groups):
    return {frozenset((a.path, b.path)) for g in groups for a, b in itertools.combinations(g.members, 2)}


def test_near_groups_are_precise_and_complete_and_start_with_the_sharpest_copy(scenes):
    library, made, _, _ = scenes
    events = []
    groups = find_duplicates(library, progress=events.append)
    near = [g for g in groups if g.kind == "near"]
    truth = {frozenset(p) for g in made["groups"] for p in itertools.combinations(g, 2)}
    found = pairs(near)
    precision, recall = len(found & truth) / len(found), len(found & truth) / len(truth)
    print(f"near duplicates at {NEAR_THRESHOLD}: pair precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.95 and recall >= 0.95
    for group in near:
        assert group.members[0].path.name == "original.jpg"  # sharp, full size, least compressed
        assert group.members[0].similarity == 1.0 and all(0.8 < m.similarity <= 1.0 for m in group.members)
        qualities = [m.quality for m in group.members]
        assert qualities == sorted(qualities, reverse=True)
        names = [m.path.name for m in group.members]
        if "blurred.jpg" in names:
            assert names[-1] == "blurred.jpg"
    assert {e.phase for e in events} == {"grouping", "rating"} and events[-1].done == events[-1].total


def test_a_byte_copy_is_an_exact_group_and_not_also_a_near_one(scenes):
    library, made, copy, _ = scenes
    groups = find_duplicates(library)
    assert groups[0].kind == "exact"
    assert {m.path for m in groups[0].members} == {made["singles"][0], copy}
    assert groups[0].members[0].path == made["singles"][0]  # identical quality: the older file (the original) first
    assert [g.kind for g in groups].count("exact") == 1
    assert not any(copy in {m.path for m in g.members} for g in groups if g.kind == "near")


def test_the_index_path_for_large_libraries_finds_the_same_groups(scenes, monkeypatch):
    library, _, _, _ = scenes
    by_blocks = pairs(find_duplicates(library))
    monkeypatch.setattr(duplicates, "EXACT_PAIRS_LIMIT", 0)
    assert pairs(find_duplicates(library)) == by_blocks


def test_a_folder_limits_the_search_and_a_lower_threshold_finds_more(scenes):
    library, made, _, tmp = scenes
    inside = find_duplicates(library, folder=tmp / "photos" / "scene03")
    assert len(inside) == 1 and {m.path for m in inside[0].members} == set(made["groups"][3])
    assert len(pairs(find_duplicates(library, threshold=0.5))) > len(pairs(find_duplicates(library)))


@pytest.mark.parametrize("threshold", [0.0, 1.5, -0.2])
def test_bad_thresholds_and_folders_are_refused(scenes, threshold, tmp_path):
    library = scenes[0]
    with pytest.raises(InvalidArgumentError) as err:
        find_duplicates(library, threshold=threshold)
    assert err.value.param == "threshold"
    with pytest.raises(InvalidArgumentError) as err:
        find_duplicates(library, folder=tmp_path)
    assert err.value.param == "folder"


def test_cancel_stops_it(scenes):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(OperationCancelled):
        find_duplicates(scenes[0], cancel=cancel)


def test_a_library_without_folders_says_so_before_looking_for_the_model(tmp_path):
    from vsearch_app.errors import ModelNotFoundError, NothingToSearchError

    def no_model():
        raise ModelNotFoundError("the model is not downloaded")

    library = Library(tmp_path / "data", model_id="pixels", embedder_factory=no_model)
    try:
        with pytest.raises(NothingToSearchError) as err:
            find_duplicates(library)
        assert err.value.reason == "no_folders"
    finally:
        library.close()
