"""Dataset readers: both formats, and bad data reported with file and line, skipped or stopped as asked."""

from __future__ import annotations

import json
import logging

import pytest
from PIL import Image

from vsearch_app.training.data import BadDataError, load_dataset


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 0, 0)).save(path)


@pytest.fixture
def jsonl_folder(tmp_path):
    folder = tmp_path / "data"
    _image(folder / "img" / "a.png")
    _image(folder / "img" / "b.png")
    lines = [
        json.dumps({"image": "img/a.png", "captions": ["a red square", "red thing"]}),
        "",
        json.dumps({"image": "img/b.png", "captions": ["another red square"]}),
    ]
    (folder / "captions.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_reads_a_captions_jsonl_folder(jsonl_folder):
    dataset = load_dataset(jsonl_folder)
    assert [item.image.name for item in dataset.items] == ["a.png", "b.png"]
    assert dataset.items[0].captions == ("a red square", "red thing")
    assert dataset.items[1].where.endswith("captions.jsonl:3")
    assert dataset.n_captions == 3 and dataset.issues == []


def _with_bad_lines(folder):
    path = folder / "captions.jsonl"
    path.write_text(path.read_text() + "\n".join([
        '{"image": "img/a.png", "captions": ["ok"',                        # line 4: malformed
        json.dumps({"image": "img/missing.png", "captions": ["x"]}),     # line 5: missing image
        json.dumps({"image": "img/b.png", "captions": []}),              # line 6: empty captions
        json.dumps({"captions": ["no image"]}),                          # line 7: no image field
    ]) + "\n")
    return path


def test_bad_data_stops_by_default_naming_file_and_line(jsonl_folder):
    path = _with_bad_lines(jsonl_folder)
    with pytest.raises(BadDataError) as info:
        load_dataset(jsonl_folder)
    message = str(info.value)
    assert f"{path}:4: malformed JSON" in message
    assert f"{path}:5: image file not found" in message
    assert f"{path}:6: empty caption list" in message
    assert f"{path}:7: missing \"image\"" in message
    assert "--on-bad-data skip" in message
    assert message.startswith("4 of 6 entries")


def test_bad_data_skip_keeps_the_good_entries_and_reports_each(jsonl_folder, caplog):
    path = _with_bad_lines(jsonl_folder)
    with caplog.at_level(logging.WARNING):
        dataset = load_dataset(jsonl_folder, on_bad_data="skip")
    assert len(dataset.items) == 2
    for line in (4, 5, 6, 7):
        assert f"{path}:{line}:" in caplog.text
    assert "skipped 4 of 6 entries" in caplog.text


def test_unknown_policy_and_missing_dataset(tmp_path):
    from vsearch_app.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="on-bad-data"):
        load_dataset(tmp_path, on_bad_data="ignore")
    with pytest.raises(InvalidArgumentError, match="captions.jsonl"):
        load_dataset(tmp_path)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        load_dataset(tmp_path / "nope.json")


def _karpathy(tmp_path):
    root = tmp_path / "coco"
    _image(root / "val2014" / "x.jpg")
    _image(root / "val2014" / "y.jpg")
    _image(root / "train2014" / "z.jpg")
    doc = {"dataset": "coco", "images": [
        {"filepath": "val2014", "filename": "x.jpg", "split": "test",
         "sentences": [{"raw": "A dog."}, {"raw": "A brown dog."}]},
        {"filepath": "val2014", "filename": "y.jpg", "split": "test", "sentences": [{"raw": "A cat."}]},
        {"filepath": "train2014", "filename": "z.jpg", "split": "train", "sentences": [{"raw": "A car."}]},
        {"filepath": "val2014", "filename": "gone.jpg", "split": "test", "sentences": [{"raw": "Gone."}]},
    ]}
    (tmp_path / "dataset_coco.json").write_text(json.dumps(doc))
    return tmp_path / "dataset_coco.json", root


def test_karpathy_split_selects_entries_and_reports_missing_images(tmp_path):
    path, root = _karpathy(tmp_path)
    with pytest.raises(BadDataError, match=r"dataset_coco.json:images\[3\]: image file not found"):
        load_dataset(path, splits=["test"], image_root=root)
    test = load_dataset(path, splits=["test"], image_root=root, on_bad_data="skip")
    assert [item.image.name for item in test.items] == ["x.jpg", "y.jpg"]
    assert test.items[0].captions == ("A dog.", "A brown dog.")
    train = load_dataset(path, splits=["train", "restval"], image_root=root)
    assert [item.image.name for item in train.items] == ["z.jpg"]


def test_karpathy_unknown_split_says_which_exist(tmp_path):
    from vsearch_app.errors import InvalidArgumentError

    path, root = _karpathy(tmp_path)
    with pytest.raises(InvalidArgumentError, match="the file has test, train"):
        load_dataset(path, splits=["val"], image_root=root)
