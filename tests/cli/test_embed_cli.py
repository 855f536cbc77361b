"""`vsearch embed` and `vsearch models` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from vsearch_app.cli.main import main


def _photo(path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(path)
    return path


def test_json_output_keeps_input_order(tiny_siglip_dir, tmp_path, capsys):
    photo = _photo(tmp_path / "a.png")
    code = main(["embed", "--model", str(tiny_siglip_dir), "--dtype", "float32",
                 "--text", "a red bike", "--image", str(photo), "--text", "a dog", "--json"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["dim"] == 32 and document["model"] == str(tiny_siglip_dir.resolve())
    assert [(it["kind"], it["input"]) for it in document["items"]] == [
        ("text", "a red bike"), ("image", str(photo)), ("text", "a dog")]
    for item in document["items"]:
        assert abs(np.linalg.norm(item["vector"]) - 1) < 1e-4 and len(item["vector"]) == 32


def test_plain_output_one_vector_per_line(tiny_siglip_dir, capsys):
    assert main(["embed", "--model", str(tiny_siglip_dir), "--text", "one", "--text", "two"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(len(line.split()) == 32 for line in lines)


def test_unreadable_image_is_reported_with_reason(tiny_siglip_dir, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    good = _photo(tmp_path / "good.png")
    code = main(["embed", "--model", str(tiny_siglip_dir), "--image", str(broken), "--image", str(good), "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert "broken.jpg" in captured.err and "Traceback" not in captured.err
    assert [it["input"] for it in json.loads(captured.out)["items"]] == [str(good)]


def test_missing_model_is_a_clear_message(capsys):
    code = main(["embed", "--model", "google/siglip2-base-patch16-224", "--text", "hello"])
    err = capsys.readouterr().err
    assert code == 2 and "vsearch models download google/siglip2-base-patch16-224" in err


def test_wrong_model_folder_is_a_clear_message(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    code = main(["embed", "--model", str(tmp_path), "--text", "hello"])
    assert code == 2 and "SigLIP" in capsys.readouterr().err


def test_no_inputs_is_a_usage_error(tiny_siglip_dir, capsys):
    assert main(["embed", "--model", str(tiny_siglip_dir)]) == 2


def test_models_list_on_empty_cache(capsys):
    assert main(["models", "list"]) == 0
    assert "vsearch models download" in capsys.readouterr().err


def test_console_script_runs_offline_without_traceback(tmp_path):
    """The installed entry point, as a new user meets it: no model yet, clear advice, exit 2, no hang."""
    result = subprocess.run(
        [sys.executable, "-m", "vsearch_app", "embed", "--text", "hello"],
        capture_output=True, text=True, timeout=120,
        env={"HF_HUB_CACHE": str(tmp_path / "hub"), "VSEARCH_DATA_DIR": str(tmp_path / "d"), "PATH": ""},
    )
    assert result.returncode == 2, result.stderr
    assert "vsearch models download" in result.stderr and "Traceback" not in result.stderr


def test_data_dir_flag_works_before_and_after_the_command(tmp_path, monkeypatch):
    from vsearch_app.cli import main as cli_main

    seen = []
    monkeypatch.setattr(cli_main, "build_parser", _parser_recording(cli_main.build_parser, seen))
    for argv in (["--data-dir", str(tmp_path / "a"), "models", "list"], ["models", "list", "--data-dir",
                                                                         str(tmp_path / "b")]):
        assert main(argv) == 0
    assert seen == [str(tmp_path / "a"), str(tmp_path / "b")]


def _parser_recording(build, seen):
    def wrapped():
        parser = build()
        original = parser.parse_args

        def parse(argv=None):
            args = original(argv)
            seen.append(getattr(args, "data_dir", None))
            return args

        parser.parse_args = parse
        return parser

    return wrapped
