"""Library: reconciliation with the disk, indexing, search and the safety rules, with a fake embedder."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from tests.core.library_fakes import FakeEmbedder, content_vector
from vsearch_app.core.library.library import Library
from vsearch_app.errors import InvalidArgumentError, NothingToSearchError


@pytest.fixture
def embedder():
    return FakeEmbedder()


@pytest.fixture
def library(tmp_path, embedder):
    lib = Library(tmp_path / "data", model_id="fake-model", embedder_factory=lambda: embedder, commit_every=4)
    yield lib
    lib.close()


def _photo(path, tag):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"IMG" + tag.encode() * 20)
    return path


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    for i in range(6):
        _photo(root / ("a" if i < 3 else "b") / f"p{i}.jpg", f"photo{i}")
    return root


def test_index_then_second_index_does_no_work(library, embedder, photos):
    library.add_folder(photos)
    report = library.index()
    assert report.embedded == 6
    assert library.catalog.counts()["indexed"] == 6
    assert len(library.vector_index()) == 6
    embedder.embedded_paths.clear()
    again = library.index()
    assert again.embedded == 0 and embedder.embedded_paths == []


def test_nothing_to_do_never_loads_the_model(tmp_path, photos):
    loads = []

    def factory():
        loads.append(1)
        return FakeEmbedder()

    lib = Library(tmp_path / "data", model_id="fake-model", embedder_factory=factory)
    lib.add_folder(photos)
    lib.index()
    lib.close()
    lib = Library(tmp_path / "data", model_id="fake-model", embedder_factory=factory)
    try:
        assert lib.index().embedded == 0
        assert loads == [1]
    finally:
        lib.close()


def test_rename_and_move_keep_the_vector(library, embedder, photos):
    library.add_folder(photos)
    library.index()
    old_id = library.catalog.get_file(photos / "a" / "p0.jpg").id
    os.rename(photos / "a" / "p0.jpg", photos / "b" / "renamed.jpg")
    os.rename(photos / "b", photos / "c")  # a whole folder moves
    embedder.embedded_paths.clear()
    library.index()
    assert embedder.embedded_paths == []
    moved = library.catalog.get_file(photos / "c" / "renamed.jpg")
    assert moved.id == old_id and moved.state == "indexed"
    assert library.catalog.counts() == {"indexed": 6, "failed": 0, "offline": 0, "pending": 0}
    assert library.catalog.get_file(photos / "b" / "p3.jpg") is None


def test_edit_re_embeds_and_delete_forgets(library, embedder, photos):
    library.add_folder(photos)
    library.index()
    edited = photos / "a" / "p1.jpg"
    edited.write_bytes(b"IMG completely different content")
    (photos / "b" / "p4.jpg").unlink()
    embedder.embedded_paths.clear()
    library.index()
    assert embedder.embedded_paths == [str(edited)]
    np.testing.assert_allclose(library.catalog.get_embedding(edited, "fake-model"),
                               content_vector(edited.read_bytes()), rtol=1e-6)
    assert library.catalog.get_file(photos / "b" / "p4.jpg") is None
    assert len(library.vector_index()) == 5


def test_unplugged_root_goes_offline_and_returns_without_re_embedding(library, embedder, photos, tmp_path):
    library.add_folder(photos)
    library.index()
    os.rename(photos, tmp_path / "unplugged")
    library.index()
    assert library.catalog.counts() == {"indexed": 0, "failed": 0, "offline": 6, "pending": 0}
    assert library.search(str(tmp_path / "unplugged" / "a" / "p0.jpg")) == []  # offline files are not results
    os.rename(tmp_path / "unplugged", photos)
    embedder.embedded_paths.clear()
    library.index()
    assert embedder.embedded_paths == []
    assert library.catalog.counts()["indexed"] == 6


def test_emptied_mount_point_is_offline_not_deleted(library, photos, tmp_path):
    library.add_folder(photos)
    library.index()
    os.rename(photos, tmp_path / "elsewhere")
    photos.mkdir()  # the mount point stays behind, empty
    library.index()
    assert library.catalog.counts()["offline"] == 6


def test_failed_file_is_not_retried_until_it_changes(library, embedder, photos):
    bad = photos / "a" / "broken.jpg"
    bad.write_bytes(b"BAD data")
    library.add_folder(photos)
    library.index()
    (failed,) = library.catalog.failed()
    assert failed.path == bad and "not an image" in failed.fail_reason
    embedder.embedded_paths.clear()
    library.index()
    assert library.catalog.failed()[0].path == bad
    assert str(bad) not in embedder.embedded_paths
    bad.write_bytes(b"IMG repaired")
    library.index()
    assert library.catalog.get_file(bad).state == "indexed"


def test_search_by_image_returns_it_first_and_filters(library, photos):
    library.add_folder(photos)
    library.index()
    target = photos / "b" / "p4.jpg"
    hits = library.search(str(target), limit=3)
    assert hits[0].path == target and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert len(hits) == 3 and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    only_a = library.search(str(target), limit=10, folder=photos / "a")
    assert {h.path.parent.name for h in only_a} == {"a"} and len(only_a) == 3
    assert [h.path for h in library.search(str(target), threshold=0.999)] == [target]


def _exact_ranking(library, query_path, folder):
    """Every indexed photo under ``folder``, ranked by exact cosine with ``query_path``'s stored vector."""
    q = library.catalog.get_embedding(query_path, "fake-model")
    ranked = []
    for path in sorted(folder.rglob("*.jpg")):
        v = library.catalog.get_embedding(path, "fake-model")
        ranked.append((float(v @ q / np.linalg.norm(v) / np.linalg.norm(q)), path))
    return [p for _, p in sorted(ranked, key=lambda t: -t[0])]


def test_folder_search_is_exact_from_the_catalog(library, photos, monkeypatch):
    library.add_folder(photos)
    library.index()
    target = photos / "b" / "p4.jpg"
    index = library.vector_index()

    def no_index(*args, **kwargs):
        raise AssertionError("a small folder is searched from the catalog, not through the index")

    monkeypatch.setattr(index, "search", no_index)
    hits = library.search(str(target), limit=10, folder=photos / "a")
    assert [h.path for h in hits] == _exact_ranking(library, target, photos / "a")
    assert [h.path for h in library.search(str(target), limit=2, folder=photos)] == [target] + [
        _exact_ranking(library, target, photos)[1]
    ]
    best = hits[0].score
    assert [h.path for h in library.search(str(target), threshold=best - 1e-6, folder=photos / "a")] == [hits[0].path]


def test_a_big_folder_is_searched_through_the_index(library, photos, monkeypatch):
    library.add_folder(photos)
    library.index()
    monkeypatch.setattr("vsearch_app.core.library.library.EXACT_FOLDER_LIMIT", 2)  # folder "a" holds 3
    monkeypatch.setattr(library.catalog, "embeddings_under", lambda *a: pytest.fail("must use the index"))
    target = photos / "b" / "p4.jpg"
    hits = library.search(str(target), limit=10, folder=photos / "a")
    assert [h.path for h in hits] == _exact_ranking(library, target, photos / "a")


def test_folder_search_leaves_out_offline_photos(library, photos, tmp_path):
    library.add_folder(photos)
    library.index()
    library.catalog.set_offline(photos)
    assert library.search(str(photos / "a" / "p0.jpg"), folder=photos / "a") == []


def test_combined_query_follows_the_weights(library, photos):
    library.add_folder(photos)
    library.index()
    a, b = photos / "a" / "p0.jpg", photos / "b" / "p3.jpg"
    assert library.search(f"{a} + 3:{b}", limit=1)[0].path == b
    assert library.search(f"3:{a} + {b}", limit=1)[0].path == a
    assert library.search(f"{a} + {b} - 5:{b}", limit=1)[0].path != b


def test_text_query_uses_the_embedder(library, embedder, photos):
    library.add_folder(photos)
    library.index()
    hits = library.search('"red car"', limit=2)
    assert len(hits) == 2 and embedder.text_calls == 1


def test_add_and_remove_folder_rules(library, photos, tmp_path):
    with pytest.raises(InvalidArgumentError, match="not a folder"):
        library.add_folder(tmp_path / "nope")
    with pytest.raises(InvalidArgumentError, match="data folder"):
        library.add_folder(library.data_dir)
    library.add_folder(photos)
    library.index()
    assert library.remove_folder(photos) == 6
    assert library.catalog.counts()["indexed"] == 0
    assert len(library.vector_index()) == 0
    assert all(p.exists() for p in photos.rglob("*.jpg"))  # the user's files are untouched
    with pytest.raises(InvalidArgumentError, match="not a watched folder"):
        library.remove_folder(photos)


def test_data_dir_inside_a_root_is_not_indexed(tmp_path, embedder):
    root = tmp_path / "home"
    _photo(root / "x.jpg", "x")
    lib = Library(root / "vsearch-data", model_id="fake-model", embedder_factory=lambda: embedder)
    try:
        (root / "vsearch-data" / "thumbs").mkdir()
        _photo(root / "vsearch-data" / "thumbs" / "t.jpg", "t")
        lib.add_folder(root)
        lib.index()
        assert [r.path.name for r in lib.catalog.files_under(root)] == ["x.jpg"]
    finally:
        lib.close()


def test_reconcile_paths_handles_watcher_reports(library, embedder, photos):
    library.add_folder(photos)
    library.index()
    new = _photo(photos / "a" / "new.jpg", "new")
    os.rename(photos / "b" / "p3.jpg", photos / "a" / "p3-moved.jpg")
    result = library.reconcile_paths([str(new), str(photos / "b" / "p3.jpg"), str(photos / "a" / "p3-moved.jpg")])
    assert (result.report.new, result.report.moved, result.report.gone) == (1, 1, 0) and result.deferred == set()
    unsettled = _photo(photos / "a" / "unsettled.jpg", "unsettled")
    held = library.reconcile_paths([str(photos / "a")], accept=lambda st: False)
    assert not held.report.any and held.deferred == {str(unsettled)}


def test_move_between_roots_during_a_full_scan_keeps_the_vector(library, embedder, photos, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    library.add_folder(photos)
    library.add_folder(other)
    library.index()
    old_id = library.catalog.get_file(photos / "a" / "p1.jpg").id
    os.rename(photos / "a" / "p1.jpg", other / "p1.jpg")
    embedder.embedded_paths.clear()
    library.index()
    assert embedder.embedded_paths == []
    assert library.catalog.get_file(other / "p1.jpg").id == old_id


def test_new_file_matching_a_missing_row_elsewhere_is_a_move(library, embedder, photos):
    library.add_folder(photos)
    library.index()
    old = photos / "a" / "p2.jpg"
    old_id = library.catalog.get_file(old).id
    os.rename(old, photos / "b" / "p2.jpg")
    result = library.reconcile_paths([str(photos / "b" / "p2.jpg")])  # the delete was not reported (yet)
    assert result.report.moved == 1 and library.catalog.get_file(photos / "b" / "p2.jpg").id == old_id
    assert library.catalog.get_file(old) is None


def test_copy_is_not_a_move(library, photos):
    library.add_folder(photos)
    library.index()
    copy = photos / "b" / "copy.jpg"
    copy.write_bytes((photos / "a" / "p0.jpg").read_bytes())
    result = library.reconcile_paths([str(copy)])
    assert result.report.new == 1 and result.report.moved == 0
    assert library.catalog.get_file(photos / "a" / "p0.jpg").state == "indexed"


def test_vanished_rows_can_be_kept_for_a_late_move_partner(library, photos):
    library.add_folder(photos)
    library.index()
    old = photos / "a" / "p0.jpg"
    old_id = library.catalog.get_file(old).id
    elsewhere = photos / "late.jpg"
    os.rename(old, elsewhere)
    first = library.reconcile_paths([str(old)], keep_gone=True)
    assert first.gone == {str(old)} and library.catalog.get_file(old) is not None
    second = library.reconcile_paths([str(elsewhere), str(old)], keep_gone=True)
    assert second.report.moved == 1 and library.catalog.get_file(elsewhere).id == old_id
    os.rename(elsewhere, photos / "z.jpg")
    (photos / "z.jpg").unlink()
    assert library.forget_missing([str(elsewhere)]) == 1


symlinks = pytest.mark.skipif(sys.platform == "win32", reason="creating symlinks needs privileges on Windows")


def _paths_found(library, query_path) -> list[str]:
    return sorted(str(hit.path) for hit in library.search(str(query_path), limit=100))


@symlinks
def test_a_symlinked_photo_is_indexed_and_found_once(library, embedder, photos, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    real = photos / "a" / "p0.jpg"
    os.symlink(real, photos / "b" / "link-to-p0.jpg")  # link and target in one root
    os.symlink(real, other / "link-in-another-root.jpg")  # link in another watched root
    os.symlink(photos / "a", other / "linked-folder")
    library.add_folder(photos)
    library.add_folder(other)
    library.index()
    assert embedder.embedded_paths.count(str(real)) == 1 and len(embedder.embedded_paths) == 6
    found = _paths_found(library, real)
    assert len(found) == 6 and found.count(str(real)) == 1
    # The watcher reports a new link: it adds nothing either.
    late = photos / "b" / "late-link.jpg"
    os.symlink(real, late)
    assert not library.reconcile_paths([str(late)]).report.any
    assert library.catalog.get_file(late) is None


@symlinks
def test_a_symlink_to_a_photo_outside_the_roots_is_indexed_once_under_the_link(library, photos, tmp_path):
    outside = _photo(tmp_path / "elsewhere" / "sunset.jpg", "sunset")
    os.symlink(outside, photos / "a" / "sunset.jpg")
    os.symlink(outside, photos / "b" / "sunset-again.jpg")
    library.add_folder(photos)
    library.index()
    found = _paths_found(library, outside)
    assert len(found) == 7 and str(photos / "a" / "sunset.jpg") in found
    assert library.catalog.get_file(photos / "b" / "sunset-again.jpg") is None


def test_nas_thumbnail_folders_are_not_indexed_by_scans_or_watcher_reports(library, embedder, photos):
    thumb = _photo(photos / "a" / "@eaDir" / "p0.jpg" / "SYNOPHOTO_THUMB_XL.jpg", "thumb")
    library.add_folder(photos)
    library.index()
    assert library.catalog.counts()["indexed"] == 6 and library.catalog.get_file(thumb) is None
    recycled = _photo(photos / "#recycle" / "old.jpg", "old")
    result = library.reconcile_paths([str(recycled), str(recycled.parent), str(thumb), str(thumb.parent)])
    assert not result.report.any and library.catalog.get_file(recycled) is None


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="needs a file system that accepts any bytes")
def test_file_name_that_is_not_utf8_is_indexed_and_found(library, photos):
    raw = os.fsencode(str(photos / "a")) + b"/caf\xe9.jpg"
    with open(raw, "wb") as handle:
        handle.write(b"IMG latin-1 name")
    library.add_folder(photos)
    library.index()
    path = os.fsdecode(raw)
    assert library.catalog.get_file(path).state == "indexed"
    (hit,) = library.search(path, limit=1)
    assert os.fsencode(hit.path) == raw


def test_empty_library_search_does_not_load_the_model(tmp_path):
    def factory():
        raise AssertionError("the model must not be loaded")

    lib = Library(tmp_path / "data", model_id="fake-model", embedder_factory=factory)
    try:
        with pytest.raises(NothingToSearchError, match="no photo folders") as caught:
            lib.search('"anything"')
        assert caught.value.reason == "no_folders"
        with pytest.raises(InvalidArgumentError):
            lib.search('"unclosed')
        (tmp_path / "empty").mkdir()
        lib.add_folder(tmp_path / "empty")
        with pytest.raises(NothingToSearchError) as caught:
            lib.search('"anything"')
        assert caught.value.reason == "no_photos"
    finally:
        lib.close()


def test_a_model_without_vectors_says_which_models_have_them(tmp_path, photos, embedder):
    lib = Library(tmp_path / "data", model_id="model-a@0123456789abcdef", embedder_factory=lambda: embedder)
    lib.add_folder(photos)
    lib.index()
    lib.close()
    other = Library(tmp_path / "data", model_id="model-b@fedcba9876543210", embedder_factory=lambda: embedder)
    try:
        with pytest.raises(NothingToSearchError, match="model-b.*6 with model-a") as caught:
            other.search('"anything"')
        assert caught.value.reason == "other_model" and caught.value.other_models == {"model-a": 6}
        assert other.counts() == {"indexed": 0, "pending": 6, "failed": 0, "offline": 0}
        assert other.catalog.counts() == {"indexed": 6, "pending": 0, "failed": 0, "offline": 0}
    finally:
        other.close()


def test_service_with_the_tiny_model(tmp_path, tiny_siglip_dir):
    from PIL import Image

    from vsearch_app.core.service import LibraryService
    from vsearch_app.settings import AppSettings

    root = tmp_path / "pics"
    root.mkdir()
    colours = {"red": (230, 20, 20), "green": (20, 200, 30), "blue": (20, 30, 220), "white": (250, 250, 250)}
    for name, rgb in colours.items():
        Image.new("RGB", (40, 30), rgb).save(root / f"{name}.png")
    settings = AppSettings.resolve(tmp_path / "data", model=str(tiny_siglip_dir), dtype="float32")
    seen = []
    with LibraryService.open(settings) as service:
        assert service.add_folder(root).online
        report = service.index(progress=seen.append)
        assert report.embedded == 4 and seen[-1].done == seen[-1].total == 4
        hits = service.search(str(root / "blue.png"), limit=4)
        assert hits[0].path == root / "blue.png" and len(hits) == 4
        text_hits = service.search('"red car" + 0.5:"sky"', limit=2)
        assert len(text_hits) == 2 and all(-1.0 <= h.score <= 1.0 for h in text_hits)
        status = service.status()
        assert status.counts["indexed"] == 4 and status.model == str(tiny_siglip_dir)
        assert status.index_path is not None and status.index_bytes > 0
        assert [f.path for f in service.folders()] == [root]
        assert service.remove_folder(root) == 4
