"""LibraryService.folder_counts: photos per watched folder (the desktop app's folder list), in one catalog query."""

from __future__ import annotations

from tests.core.library_fakes import FakeEmbedder
from tests.core.test_session import open_session, photo


def test_folder_counts_give_each_watched_folder_its_photos(tmp_path):
    holidays, work, empty = tmp_path / "holidays", tmp_path / "work", tmp_path / "empty"
    for folder in (holidays, work, empty):
        folder.mkdir()
    for i in range(5):
        photo(holidays, i)
    for i in range(2):
        photo(work, i)
    (holidays / "nested").mkdir()
    photo(holidays / "nested", 9)
    service = open_session(tmp_path, FakeEmbedder())
    try:
        for folder in (holidays, work, empty):
            service.add_folder(folder)
        assert service.folder_counts() == {holidays: 0, work: 0, empty: 0}  # nothing scanned yet
        service.index()
        assert service.folder_counts() == {holidays: 6, work: 2, empty: 0}
        service.remove_folder(work)
        assert service.folder_counts() == {holidays: 6, empty: 0}
    finally:
        service.close()
