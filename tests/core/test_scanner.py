"""Scanner: which files a walk finds, and how a walk compares with the catalog."""

from __future__ import annotations

import os
import sys

import pytest

from vsearch_app.core.library.scanner import (
    KnownFile,
    diff_root,
    fingerprint,
    is_photo_name,
    is_skipped_below,
    walk_root,
)

symlinks = pytest.mark.skipif(sys.platform == "win32", reason="creating symlinks needs privileges on Windows")


def _write(path, data=b"x" * 10):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _known(path, data_path=None, state="indexed"):
    st = os.stat(data_path or path)
    return KnownFile(str(path), st.st_size, st.st_mtime_ns, fingerprint(data_path or path), state)


@pytest.mark.parametrize("name", ["a.jpg", "B.JPEG", "c.png", "d.webp", "e.gif", "f.bmp", "g.tif", "h.TIFF",
                                  "i.heic", "j.heif", "k.avif"])
def test_photo_extensions(name):
    assert is_photo_name(name)


@pytest.mark.parametrize("name", ["a.txt", "b.mp4", "jpg", "c.jpg.part"])
def test_non_photo_names(name):
    assert not is_photo_name(name)


def test_walk_finds_photos_and_skips_hidden_data_dir_and_other_files(tmp_path):
    root = tmp_path / "root"
    keep = [_write(root / "a.jpg"), _write(root / "sub" / "b.PNG"), _write(root / "sub" / "deeper" / "c.heic")]
    _write(root / ".hidden.jpg")
    _write(root / ".cache" / "d.jpg")
    _write(root / "notes.txt")
    _write(root / "vsearch-data" / "thumb.jpg")
    result = walk_root(root, exclude=[root / "vsearch-data"])
    assert result.online
    assert sorted(result.files) == sorted(str(p) for p in keep)
    assert result.files[str(keep[0])].size == 10
    assert result.errors == []


@symlinks
def test_symlink_loop_does_not_trap_the_walk(tmp_path):
    root = tmp_path / "root"
    _write(root / "a" / "x.jpg")
    os.symlink(root, root / "a" / "loop")
    os.symlink(root / "a", root / "again")
    result = walk_root(root)
    # The folder is entered once, through whichever path came first.
    assert len(result.files) == 1
    assert result.errors == []


@symlinks
def test_dangling_symlink_is_ignored(tmp_path):
    root = tmp_path / "root"
    _write(root / "x.jpg")
    os.symlink(tmp_path / "nowhere.jpg", root / "dangling.jpg")
    result = walk_root(root)
    assert list(result.files) == [str(root / "x.jpg")]
    assert result.errors == []


SYSTEM_FOLDERS = ["@eaDir", "@__thumb", ".@__thumb", "#recycle", "#snapshot", "$RECYCLE.BIN", "$Recycle.Bin",
                  "System Volume Information", ".Trashes", ".thumbnails", "@Recycle", "@Recently-Snapshot",
                  "RECYCLER", ".Trash-1000", "lost+found"]


@pytest.mark.parametrize("name", SYSTEM_FOLDERS)
def test_nas_and_os_thumbnail_trash_and_snapshot_folders_are_skipped(tmp_path, name):
    root = tmp_path / "root"
    keep = _write(root / "2023" / "IMG_0001.jpg")
    _write(root / "2023" / name / "IMG_0001.jpg" / "SYNOPHOTO_THUMB_XL.jpg")  # Synology's layout
    _write(root / name / "old.jpg")
    assert list(walk_root(root).files) == [str(keep)]
    assert is_skipped_below(str(root / "2023" / name / "IMG_0001.jpg"), str(root))


def test_folders_that_only_resemble_system_folders_are_walked(tmp_path):
    root = tmp_path / "root"
    keep = sorted(str(_write(root / name / "a.jpg")) for name in ["eaDir", "recycle", "Thumbnails", "snapshot 2020"])
    assert sorted(walk_root(root).files) == keep
    assert not is_skipped_below(str(root / "recycle" / "a.jpg"), str(root))
    assert not is_skipped_below(str(tmp_path / "@eaDir" / "x.jpg"), str(root))  # outside the root: not its business


def test_a_root_inside_a_hidden_or_system_folder_is_still_walked(tmp_path):
    root = tmp_path / ".local" / "#snapshot" / "photos"
    keep = _write(root / "a.jpg")
    assert list(walk_root(root).files) == [str(keep)]


@symlinks
def test_a_symlinked_photo_is_listed_once_under_the_real_path(tmp_path):
    root = tmp_path / "root"
    real = _write(root / "2023" / "beach.jpg")
    os.symlink(real, root / "favourite.jpg")
    os.symlink(real, root / "2023" / "also.jpg")
    assert list(walk_root(root).files) == [str(real)]


@symlinks
def test_a_symlink_into_another_root_is_left_to_that_root(tmp_path):
    left, right = tmp_path / "left", tmp_path / "right"
    real = _write(right / "beach.jpg")
    os.symlink(real, _mkdir(left) / "beach-link.jpg")
    os.symlink(right, left / "right-folder")
    assert walk_root(left, roots=[left, right]).files == {}
    assert list(walk_root(right, roots=[left, right]).files) == [str(real)]
    # Without knowing the other root, the link is all there is: it is listed (once).
    assert sorted(walk_root(left).files) == [str(left / "beach-link.jpg")]


@symlinks
def test_a_symlink_to_a_photo_outside_the_roots_is_listed_once_under_the_link(tmp_path):
    root = tmp_path / "root"
    outside = _write(tmp_path / "elsewhere" / "sunset.jpg")
    _mkdir(root)
    os.symlink(outside, root / "b-sunset.jpg")
    os.symlink(outside, root / "a-sunset.jpg")  # a second link to the same file: the first in name order wins
    os.symlink(outside.parent, root / "c-elsewhere")  # and the folder holding it
    assert list(walk_root(root).files) == [str(root / "a-sunset.jpg")]


@symlinks
def test_a_symlinked_folder_inside_the_root_is_walked_under_its_real_path(tmp_path):
    root = tmp_path / "root"
    real = _write(root / "zz-real" / "a.jpg")
    os.symlink(root / "zz-real", root / "aa-link")  # walked first in name order, but it is only another name
    assert list(walk_root(root).files) == [str(real)]


@symlinks
def test_a_symlink_to_a_photo_the_walk_does_not_list_is_kept(tmp_path):
    root = tmp_path / "root"
    hidden = _write(root / ".private" / "a.jpg")
    thumb = _write(root / "@eaDir" / "b.jpg")
    raw = _write(root / "c.raw")
    for target, name in [(hidden, "a.jpg"), (thumb, "b.jpg"), (raw, "c.jpg")]:
        os.symlink(target, root / name)
    assert sorted(walk_root(root).files) == [str(root / n) for n in ("a.jpg", "b.jpg", "c.jpg")]


@symlinks
def test_a_symlinked_root_keeps_its_own_spelling(tmp_path):
    real_root = tmp_path / "disk" / "photos"
    real = _write(real_root / "a.jpg")
    spelled = tmp_path / "Pictures"
    os.symlink(real_root, spelled)
    os.symlink(real, real_root / "link.jpg")
    assert list(walk_root(spelled).files) == [str(spelled / "a.jpg")]


def _mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def _lock(monkeypatch, folder):
    """Make ``folder`` unreadable. chmod does not stop root (CI containers), so the denial is simulated at scandir,
    which is where a real one surfaces."""
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(folder):
            raise PermissionError(13, "Permission denied", str(folder))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_unreadable_folder_is_reported_not_skipped_silently(tmp_path, monkeypatch):
    root = tmp_path / "root"
    _write(root / "ok.jpg")
    locked = root / "locked"
    _write(locked / "secret.jpg")
    _lock(monkeypatch, locked)
    result = walk_root(root)
    assert result.online
    assert list(result.files) == [str(root / "ok.jpg")]
    assert [path for path, _ in result.errors] == [str(locked)]
    assert "ermission" in result.errors[0][1]


def test_unreadable_root_is_offline(tmp_path, monkeypatch):
    root = tmp_path / "root"
    _write(root / "x.jpg")
    _lock(monkeypatch, root)
    assert not walk_root(root).online


def test_missing_root_is_offline(tmp_path):
    result = walk_root(tmp_path / "unplugged")
    assert not result.online
    assert result.files == {}
    assert result.errors


def test_non_utf8_file_name_round_trips(tmp_path):
    if sys.platform == "darwin":
        pytest.skip("APFS refuses names that are not UTF-8")
    root = tmp_path / "root"
    root.mkdir()
    raw = os.fsencode(str(root)) + b"/caf\xe9.jpg"
    with open(raw, "wb") as handle:
        handle.write(b"data")
    result = walk_root(root)
    (path,) = result.files
    assert os.fsencode(path) == raw


def test_fingerprint_depends_on_content_not_name(tmp_path):
    a = _write(tmp_path / "a.jpg", b"1" * 200_000)
    b = _write(tmp_path / "b.jpg", b"1" * 200_000)
    c = _write(tmp_path / "c.jpg", b"1" * 199_999 + b"2")
    d = _write(tmp_path / "d.jpg", b"small")
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(c)
    assert fingerprint(d) != fingerprint(a)


def test_diff_new_changed_gone_unchanged(tmp_path):
    root = tmp_path / "root"
    same = _write(root / "same.jpg", b"same")
    edited = _write(root / "edited.jpg", b"old")
    gone = _write(root / "gone.jpg", b"gone-content")
    known = [_known(same), _known(edited), _known(gone)]
    gone.unlink()
    edited.write_bytes(b"new content, longer")
    new = _write(root / "new.jpg", b"brand new")
    diff = diff_root(walk_root(root), known)
    assert [f.path for f in diff.new] == [str(new)]
    assert [f.path for f in diff.changed] == [str(edited)]
    assert [k.path for k in diff.gone] == [str(gone)]
    assert diff.moved == [] and diff.offline == [] and diff.returned == []


def test_diff_matches_a_move_across_folders_by_fingerprint(tmp_path):
    root = tmp_path / "root"
    original = _write(root / "a" / "photo.jpg", b"p" * 1000)
    other = _write(root / "a" / "other.jpg", b"q" * 1000)  # same size, different content
    known = [_known(original), _known(other)]
    moved_to = root / "b" / "renamed.jpg"
    moved_to.parent.mkdir()
    os.rename(original, moved_to)
    diff = diff_root(walk_root(root), known)
    assert [(old.path, new.path) for old, new, _ in diff.moved] == [(str(original), str(moved_to))]
    assert diff.new == [] and diff.gone == []


def test_same_size_different_content_is_not_a_move(tmp_path):
    root = tmp_path / "root"
    original = _write(root / "photo.jpg", b"p" * 1000)
    known = [_known(original)]
    original.unlink()
    newcomer = _write(root / "newcomer.jpg", b"z" * 1000)
    diff = diff_root(walk_root(root), known)
    assert diff.moved == []
    assert [f.path for f in diff.new] == [str(newcomer)]
    assert [k.path for k in diff.gone] == [str(original)]


def test_missing_root_turns_files_offline_never_gone(tmp_path):
    root = tmp_path / "root"
    files = [_write(root / f"{i}.jpg", bytes([i]) * 20) for i in range(3)]
    known = [_known(f) for f in files]
    os.rename(root, tmp_path / "away")
    diff = diff_root(walk_root(root), known)
    assert sorted(k.path for k in diff.offline) == sorted(str(f) for f in files)
    assert diff.gone == [] and diff.new == []


def test_offline_files_return_unchanged(tmp_path):
    root = tmp_path / "root"
    files = [_write(root / f"{i}.jpg", bytes([i]) * 20) for i in range(2)]
    known = [_known(f, state="offline") for f in files]
    diff = diff_root(walk_root(root), known)
    assert sorted(k.path for k in diff.returned) == sorted(str(f) for f in files)
    assert diff.changed == [] and diff.new == [] and diff.offline == []


def test_empty_root_with_known_files_is_treated_as_unmounted(tmp_path):
    root = tmp_path / "mountpoint"
    photo = _write(root / "x.jpg")
    known = [_known(photo)]
    photo.unlink()
    diff = diff_root(walk_root(root), known)
    assert [k.path for k in diff.offline] == [str(photo)]
    assert diff.gone == []


def test_files_under_an_unreadable_folder_go_offline_not_gone(tmp_path, monkeypatch):
    root = tmp_path / "root"
    ok = _write(root / "ok.jpg", b"ok")
    hidden_away = _write(root / "locked" / "x.jpg", b"x")
    known = [_known(ok), _known(hidden_away)]
    _lock(monkeypatch, root / "locked")
    diff = diff_root(walk_root(root), known)
    assert [k.path for k in diff.offline] == [str(hidden_away)]
    assert diff.gone == []


def test_unchanged_failed_file_is_not_retried_but_changed_one_is(tmp_path):
    root = tmp_path / "root"
    broken = _write(root / "broken.jpg", b"not an image")
    fixed = _write(root / "fixed.jpg", b"not an image")
    known = [_known(broken, state="failed"), _known(fixed, state="failed")]
    fixed.write_bytes(b"now a different, longer file")
    diff = diff_root(walk_root(root), known)
    assert [f.path for f in diff.changed] == [str(fixed)]
    assert diff.new == []


@pytest.mark.skipif(sys.platform == "win32", reason="creating symlinks needs privileges on Windows")
def test_data_dir_reached_through_a_symlink_is_still_skipped(tmp_path):
    root = tmp_path / "root"
    _write(root / "a.jpg")
    data = tmp_path / "data"
    _write(data / "thumb.jpg")
    os.symlink(data, root / "link-to-data")
    result = walk_root(root, exclude=[data])
    assert list(result.files) == [str(root / "a.jpg")]
