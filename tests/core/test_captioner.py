"""core.engine.captioner: prompt layout as transformers' processor builds it, streaming, stopping, cancelling,
dtypes."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support.tiny_paligemma import make_tiny_paligemma
from vsearch_app.core.engine.captioner import PACK_AT_LOAD, PACK_NEVER, Captioner
from vsearch_app.errors import ImageDecodeError, InvalidArgumentError
from vsearch_app.modeling.generate import generate
from vsearch_app.modeling.layers import can_pack
from vsearch_app.modeling.sampling import GenerationParams
from vsearch_app.preprocessing.prompts import build_prompt


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_tiny_paligemma(tmp_path_factory.mktemp("cap"), seed=0)


@pytest.fixture(scope="module")
def captioner(folder):
    return Captioner.load(folder, device="cpu", dtype="float32")


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(path)
    return path


def test_prompt_and_pixels_match_transformers_processor(folder, captioner, photo):
    from transformers import PaliGemmaProcessor, PreTrainedTokenizerFast, SiglipImageProcessor

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), bos_token="<bos>",
                                        eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
    image_processor = SiglipImageProcessor.from_pretrained(folder)
    image_processor.image_seq_length = captioner.model.config.num_image_tokens
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    picture = captioner.prepare_image(photo)
    expected = processor(images=picture, text="<image>caption en", return_tensors="pt")
    config = captioner.model.config
    layout = build_prompt(captioner.tokenizer, "caption en", num_image_tokens=config.num_image_tokens,
                          image_token_id=config.image_token_index)
    assert layout.input_ids == expected["input_ids"][0].tolist()
    assert torch.allclose(captioner.transform.to_tensor([picture]), expected["pixel_values"], atol=1e-6)
    vocab = tokenizer.get_vocab()
    assert set(layout.stop_token_ids) == {vocab["<eos>"], vocab["\n"]}


def test_caption_streams_the_text_it_returns(captioner, photo):
    pieces = []
    result = captioner.caption(photo, "caption en", GenerationParams(max_new_tokens=12), on_token=pieces.append)
    assert "".join(pieces) == result.text
    assert 1 <= len(result.token_ids) <= 12
    assert result.prefill_s > 0 and result.stop_reason in ("stop_token", "max_tokens")
    # The same tokens as the bare generation loop on the same inputs.
    config = captioner.model.config
    layout = build_prompt(captioner.tokenizer, "caption en", num_image_tokens=config.num_image_tokens,
                          image_token_id=config.image_token_index)
    pixels = captioner.transform.to_tensor([captioner.prepare_image(photo)])
    direct = generate(captioner.model, layout.input_ids, pixels, GenerationParams(max_new_tokens=12),
                      stop_token_ids=layout.stop_token_ids)
    assert direct.token_ids == result.token_ids


@pytest.mark.parametrize("prompt", ["caption en", "describe en", "question: what is this?", "this building is "])
def test_model_card_prompts_work(captioner, photo, prompt):
    result = captioner.caption(Image.open(photo), prompt, GenerationParams(max_new_tokens=4))
    assert result.prompt == prompt and result.token_ids


def test_generation_stops_at_a_stop_token(captioner, photo):
    config = captioner.model.config
    layout = build_prompt(captioner.tokenizer, "caption en", num_image_tokens=config.num_image_tokens,
                          image_token_id=config.image_token_index)
    pixels = captioner.transform.to_tensor([captioner.prepare_image(photo)])
    free = generate(captioner.model, layout.input_ids, pixels, GenerationParams(max_new_tokens=8))
    stop_at = free.token_ids[2]
    first = free.token_ids.index(stop_at)
    stopped = generate(captioner.model, layout.input_ids, pixels, GenerationParams(max_new_tokens=8),
                       stop_token_ids={stop_at})
    assert stopped.token_ids == free.token_ids[: first + 1]
    assert stopped.stop_reason == "stop_token"


def test_cancel_stops_between_steps(captioner, photo):
    cancel = threading.Event()
    seen = []

    def on_token(piece):
        seen.append(piece)
        cancel.set()

    result = captioner.caption(photo, "caption en", GenerationParams(max_new_tokens=20), on_token=on_token,
                               cancel=cancel)
    assert result.stop_reason in ("cancelled", "stop_token")
    assert len(result.token_ids) <= 2


def test_seeded_sampling_is_reproducible(captioner, photo):
    params = GenerationParams(max_new_tokens=10, do_sample=True, temperature=1.5, top_p=0.95, seed=42)
    assert captioner.caption(photo, params=params).token_ids == captioner.caption(photo, params=params).token_ids


def test_bf16_captioner_runs(folder, photo):
    bf16 = Captioner.load(folder, device="cpu", dtype="bfloat16")
    assert bf16.model.dtype == torch.bfloat16
    assert bf16.caption(photo, params=GenerationParams(max_new_tokens=5)).token_ids


def test_bad_inputs_are_user_errors(captioner, tmp_path):
    with pytest.raises(ImageDecodeError):
        captioner.caption(tmp_path / "missing.jpg")
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("hello")
    with pytest.raises(ImageDecodeError):
        captioner.caption(not_image)
    with pytest.raises(InvalidArgumentError):
        captioner.caption(Image.new("RGB", (8, 8)), "   ")
    with pytest.raises(InvalidArgumentError):
        captioner.caption(Image.new("RGB", (8, 8)), "<image> caption en")


@pytest.mark.skipif(not can_pack(torch.bfloat16, torch.device("cpu")), reason="no oneDNN bf16 packing here")
def test_packing_while_idle_changes_no_token_even_with_captions_racing_it(folder, photo):
    params = GenerationParams(max_new_tokens=8)
    plain = Captioner.load(folder, device="cpu", dtype="bfloat16", packing=PACK_NEVER)
    expected = plain.caption(photo, params=params).token_ids
    assert plain.packing_pending == 0

    at_load = Captioner.load(folder, device="cpu", dtype="bfloat16", packing=PACK_AT_LOAD)
    assert at_load.packing_pending == 0 and at_load.model.language_model._head is not None
    assert at_load.caption(photo, params=params).token_ids == expected

    lazy = Captioner.load(folder, device="cpu", dtype="bfloat16")
    layers = lazy.model.config.text_config.num_hidden_layers
    assert lazy.packing_pending == layers + 1  # nothing packed before the first caption
    assert lazy.model.language_model._head is None
    assert lazy.caption(photo, params=params).token_ids == expected  # the first caption: plain weights
    results, errors = [], []

    def caption_repeatedly():
        try:
            for _ in range(4):
                results.append(lazy.caption(photo, params=params).token_ids)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=caption_repeatedly) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert lazy.wait_until_packed(120)
    assert not errors and len(results) == 8 and all(tokens == expected for tokens in results)
    assert lazy.packing_pending == 0 and lazy.model.language_model._head is not None
    assert lazy.caption(photo, params=params).token_ids == expected  # fully packed
    lazy.close()
    assert not any(t.name == "caption-packer" and t.is_alive() for t in threading.enumerate())


def test_float32_has_nothing_to_pack(captioner):
    assert captioner.packing_pending == 0 and captioner.wait_until_packed(0)
