"""`vsearch make-shapes`, `vsearch train` and `vsearch eval` end to end on a small synthetic set."""

from __future__ import annotations

import json

import pytest

from vsearch_app.cli.main import main


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "shapes"
    assert main(["make-shapes", str(out), "--n-train", "40", "--n-test", "10"]) == 0
    return out


def test_train_then_eval_json(shapes_dir, tmp_path, capsys):
    capsys.readouterr()
    code = main(["train", "--data", str(shapes_dir / "train"), "--model", str(shapes_dir / "model"),
                 "--out", str(tmp_path / "run"), "--from-scratch", "--epochs", "2", "--batch-size", "8",
                 "--lr", "2e-3", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0
    assert "step 10/10" in captured.err and "step/s" in captured.err and "ETA" in captured.err
    assert "model written to" in captured.out
    assert main(["eval", "--data", str(shapes_dir / "test"), "--model", str(tmp_path / "run"), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"image_to_text", "text_to_image", "n_images", "n_texts"}
    for direction in ("image_to_text", "text_to_image"):
        assert {"R@1", "R@5", "R@10"} <= set(document[direction])
        assert all(0.0 <= document[direction][k] <= 1.0 for k in ("R@1", "R@5", "R@10"))
    assert document["n_images"] == 10 and document["n_texts"] == 20
    assert main(["eval", "--data", str(shapes_dir / "test"), "--model", str(tmp_path / "run")]) == 0
    assert "text->image" in capsys.readouterr().out


def test_bad_data_exits_2_naming_the_line(shapes_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "captions.jsonl").write_text('{"image": "gone.png", "captions": ["x"]}\n{"image": \n')
    code = main(["eval", "--data", str(data), "--model", str(shapes_dir / "model")])
    err = capsys.readouterr().err
    assert code == 2
    assert "captions.jsonl:1: image file not found" in err and "captions.jsonl:2: malformed JSON" in err
    assert "Traceback" not in err


def test_train_without_weights_or_from_scratch_exits_2(shapes_dir, tmp_path, capsys):
    code = main(["train", "--data", str(shapes_dir / "train"), "--model", str(shapes_dir / "model"),
                 "--out", str(tmp_path / "run"), "--epochs", "1", "--device", "cpu"])
    assert code == 2
    assert "--from-scratch" in capsys.readouterr().err
