"""The trainer: Hugging Face output that transformers reads identically, exact resume, freezing, bad data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from tests.support.file_modes import modes_of, posix_modes, umask
from vsearch_app.errors import CheckpointError, InvalidArgumentError
from vsearch_app.training.data import BadDataError, load_dataset
from vsearch_app.training.shapes import ShapesRecipe, write_shapes_dataset
from vsearch_app.training.trainer import TrainConfig, train_model


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes_dataset(tmp_path_factory.mktemp("shapes"), ShapesRecipe(n_train=48, n_test=8))


def _config(**overrides):
    base = dict(epochs=2, batch_size=16, lr=2e-3, from_scratch=True, save_every_s=1e9)
    return TrainConfig(**{**base, **overrides})


def _train(shapes, out, **kwargs):
    config = kwargs.pop("config", _config())
    dataset = load_dataset(shapes / "train")
    return train_model(shapes / "model", dataset, out, config, **kwargs)


def test_trained_checkpoint_loads_in_transformers_with_the_same_embeddings(shapes, tmp_path):
    from transformers import AutoTokenizer, SiglipModel

    from vsearch_app.core.engine.embedder import Embedder

    result = _train(shapes, tmp_path / "out")
    assert result.steps == 6 and not result.stopped and len(result.losses) == 6
    out = result.out_dir
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "preprocessor_config.json"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoint").exists()  # the resumable snapshot is dropped once the model is written

    ours = Embedder.load(out, device="cpu", dtype="float32")
    reference = SiglipModel.from_pretrained(out).eval()
    texts = ["a small red circle on the left", "a big blue square on the right and a little green diamond"]
    hf_tokenizer = AutoTokenizer.from_pretrained(out)
    hf_ids = hf_tokenizer(texts, padding="max_length", max_length=16, return_tensors="pt")["input_ids"]
    assert torch.equal(hf_ids, ours.tokenizer.encode_padded(texts))
    images = sorted((shapes / "test" / "images").iterdir())[:4]
    ours_images = ours.embed_images(images).vectors
    pixels = ours.transform.to_tensor([Image.open(p).convert("RGB") for p in images])
    with torch.no_grad():
        ref_images = _features(reference.get_image_features(pixel_values=pixels))
        ref_texts = _features(reference.get_text_features(input_ids=hf_ids))
    cos_images = np.sum(ours_images * ref_images.numpy(), axis=1)
    cos_texts = np.sum(ours.embed_texts(texts) * ref_texts.numpy(), axis=1)
    assert cos_images.min() >= 0.9999 and cos_texts.min() >= 0.9999
    # and the model really changed from its initial (t', b)
    weights = load_file(str(out / "model.safetensors"))
    assert weights["logit_bias"].item() != -10.0


def _features(output) -> torch.Tensor:
    # transformers 5 returns an output object whose pooler_output is the embedding; 4.x returned the tensor
    tensor = output if isinstance(output, torch.Tensor) else output.pooler_output
    return torch.nn.functional.normalize(tensor, dim=-1)


def test_resume_continues_exactly_where_the_interrupted_run_stopped(shapes, tmp_path):
    straight = _train(shapes, tmp_path / "straight", config=_config(epochs=3))
    calls = {"n": 0}

    def stop_after_four():
        calls["n"] += 1
        return calls["n"] > 4

    first = _train(shapes, tmp_path / "resumed", config=_config(epochs=3), should_stop=stop_after_four)
    assert first.stopped and first.steps == 4
    assert (tmp_path / "resumed" / "checkpoint" / "trainer_state.json").is_file()
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    with pytest.raises(InvalidArgumentError, match="--resume"):
        _train(shapes, tmp_path / "resumed", config=_config(epochs=3))
    with pytest.raises(InvalidArgumentError, match="different settings.*lr"):
        _train(shapes, tmp_path / "resumed", config=_config(epochs=3, lr=1e-3), resume=True)
    second = _train(shapes, tmp_path / "resumed", config=_config(epochs=3), resume=True)
    assert second.steps == 9 and not second.stopped
    assert list(first.losses + second.losses) == pytest.approx(list(straight.losses), rel=1e-5)
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-5


@posix_modes
def test_checkpoints_and_training_state_get_the_users_normal_mode(shapes, tmp_path):
    out = tmp_path / "out"
    with umask(0o027) as normal:  # a umask no default reproduces: the files must follow it
        _train(shapes, out, should_stop=lambda: True)  # stops after its first step, leaving the resumable state
        state = modes_of(out / "checkpoint")
        _train(shapes, out, resume=True)
    assert {"model.safetensors", "optimizer.safetensors", "trainer_state.json"} <= set(state)
    assert set(state.values()) == {normal}, state
    final = modes_of(out)
    assert {"model.safetensors", "config.json", "tokenizer.json", "preprocessor_config.json"} <= set(final)
    assert set(final.values()) == {normal}, final


def test_resume_without_a_checkpoint_is_an_error(shapes, tmp_path):
    with pytest.raises(InvalidArgumentError, match="no training checkpoint"):
        _train(shapes, tmp_path / "nothing", resume=True)


def test_missing_weights_need_from_scratch(shapes, tmp_path):
    with pytest.raises(CheckpointError, match="--from-scratch"):
        _train(shapes, tmp_path / "out", config=_config(from_scratch=False))


def test_freeze_vision_changes_only_the_text_tower(tiny_siglip_dir, shapes, tmp_path):
    dataset = load_dataset(shapes / "train")
    config = TrainConfig(epochs=1, batch_size=16, lr=1e-2, freeze_vision=True, save_every_s=1e9)
    result = train_model(tiny_siglip_dir, dataset, tmp_path / "ft", config)
    before = load_file(str(tiny_siglip_dir / "model.safetensors"))
    after = load_file(str(result.out_dir / "model.safetensors"))
    vision_same = all(torch.equal(before[k], after[k]) for k in before if k.startswith("vision_model."))
    text_changed = any(not torch.equal(before[k], after[k]) for k in before if k.startswith("text_model."))
    assert vision_same and text_changed
    # fine-tuning keeps the checkpoint's own config
    assert json.loads((result.out_dir / "config.json").read_text())["text_config"]["hidden_size"] == 32


def test_unreadable_image_stops_or_is_skipped_with_its_line(shapes, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(shapes / "train", data)
    lines = (data / "captions.jsonl").read_text().splitlines()
    broken = json.loads(lines[2])["image"]
    (data / broken).write_bytes(b"not a png at all")
    dataset = load_dataset(data)
    with pytest.raises(BadDataError, match=r"captions.jsonl:3: cannot read image"):
        train_model(shapes / "model", dataset, tmp_path / "a", _config(epochs=1))
    result = train_model(shapes / "model", dataset, tmp_path / "b", _config(epochs=1), on_bad_data="skip")
    assert result.steps == 3


def test_invalid_settings_are_user_errors(shapes, tmp_path):
    for bad in (dict(loss="hinge"), dict(batch_size=1), dict(lr=0.0), dict(freeze_vision=True, freeze_text=True)):
        with pytest.raises(InvalidArgumentError):
            _train(shapes, tmp_path / "x", config=_config(**bad))
