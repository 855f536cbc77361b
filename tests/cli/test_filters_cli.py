"""`vsearch search` with filters and --sort, browsing without a query, the good-match field, and `vsearch duplicates`,
through the real CLI in a subprocess with the tiny random SigLIP."""

from __future__ import annotations

import shutil

import pytest

from tests.core.library_fakes import Cli
from tests.core.test_photo_metadata import jpeg


@pytest.fixture(scope="module")
def cli(tmp_path_factory, tiny_siglip_dir):
    tmp = tmp_path_factory.mktemp("filters_cli")
    root = tmp / "photos"
    root.mkdir()
    jpeg(root / "pixel_2019.jpg", make="Google", model="Pixel 7", taken="2019:06:01 10:00:00", size=(60, 40))
    jpeg(root / "pixel_2020.jpg", make="Google", model="Pixel 7", taken="2020:07:01 10:00:00", size=(40, 60))
    jpeg(root / "nikon_2018.jpg", make="NIKON CORPORATION", model="NIKON D750", taken="2018:01:01 10:00:00",
         size=(100, 100))
    shutil.copy(root / "nikon_2018.jpg", root / "nikon_2018 copy.jpg")
    runner = Cli(tmp, tiny_siglip_dir)
    runner.run("folders", "add", str(root))
    runner.run("index")
    return runner


def names(hits):
    return [h["path"].rsplit("/", 1)[-1] for h in hits]


def test_filters_and_sort_without_a_query_list_photos(cli):
    assert names(cli.json("search", "--camera", "PIXEL")) == ["pixel_2020.jpg", "pixel_2019.jpg"]
    assert names(cli.json("search", "--after", "2019", "--before", "2020-07")) == ["pixel_2019.jpg"]
    assert names(cli.json("search", "--before", "2019")) == ["nikon_2018 copy.jpg", "nikon_2018.jpg"]
    assert names(cli.json("search", "--sort", "name")) == ["nikon_2018 copy.jpg", "nikon_2018.jpg",
                                                          "pixel_2019.jpg", "pixel_2020.jpg"]
    assert names(cli.json("search", "--orientation", "landscape")) == ["pixel_2019.jpg"]
    assert names(cli.json("search", "--min-pixels", "5000")) == ["nikon_2018 copy.jpg", "nikon_2018.jpg"]


def test_a_query_with_a_filter_and_the_json_fields(cli):
    hits = cli.json("search", "a red square", "--camera", "nikon d750", "--limit", "5")
    assert names(hits) and set(names(hits)) <= {"nikon_2018.jpg", "nikon_2018 copy.jpg"}
    assert set(hits[0]) == {"path", "score", "good", "taken_at", "camera", "caption_matched", "caption"}
    assert hits[0]["camera"] == "Nikon D750" and hits[0]["taken_at"] == "2018-01-01T10:00:00"
    assert isinstance(hits[0]["good"], bool)
    by_date = cli.json("search", "a red square", "--sort", "date")
    assert [h["taken_at"] for h in by_date] == sorted((h["taken_at"] for h in by_date), reverse=True)


@pytest.mark.parametrize(("args", "message"), [
    (("search",), "nothing to search for: give a query, or a filter"),
    (("search", "--after", "2019-13"), "'2019-13' is not a real date (--after)"),
    (("search", "dog", "--before", "June"), "is not a date; write it as 2019, 2019-06 or 2019-06-01 (--before)"),
    (("search", "--after", "2020", "--before", "2019"), "the date range is empty"),
    (("search", "--camera", " "), "the camera filter is empty; give part of a camera's name (--camera)"),
    (("search", "--min-pixels", "lots"), "argument --min-pixels: 'lots' is not a whole number"),
    (("search", "--orientation", "diagonal"), "argument --orientation: invalid choice"),
    (("duplicates", "--threshold", "2"), "above 0 and at most 1, got 2.0 (--threshold)"),
])
def test_bad_flags_get_one_line_and_status_2(cli, args, message):
    proc = cli.run(*args, expect=2)
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_duplicates_lists_the_byte_copy_with_its_keeper(cli):
    document = cli.json("duplicates")
    assert document["threshold"] == pytest.approx(0.92)
    exact = [g for g in document["groups"] if g["kind"] == "exact"]
    assert len(exact) == 1 and sorted(names(exact[0]["members"])) == ["nikon_2018 copy.jpg", "nikon_2018.jpg"]
    keeper, other = exact[0]["members"]
    assert keeper["keeper"] is True and other["keeper"] is False
    assert set(keeper) == {"path", "keeper", "quality", "similarity", "size", "width", "height"}
    assert other["similarity"] == pytest.approx(1.0)
    text = cli.run("duplicates").stdout
    assert text.startswith("exact  2 photos (byte-identical)\n  keep  ")
