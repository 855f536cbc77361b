"""The image loader under mutated input (tests/faults/fuzz_images.py): a short fixed-seed run finds nothing, and
every input a longer run flagged is a case here with the outcome it must have now."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.fuzz_images import is_finding, mutated_input, run, seed_images
from vsearch_app.core.engine.decode_pool import IsolatedDecoder
from vsearch_app.errors import ImageDecodeError
from vsearch_app.preprocessing.image import ImageTransform

# (run seed, input index, the reason the isolated decoder must give). Each came from a run of
# `python -m tests.faults.fuzz_images` (its docstring says how to read them).
FOUND = [
    # Seed 1: a 671-byte ICO holding a PNG whose IDAT chunk claims about 4 GB. Pillow skips the chunk with
    # fp.read(length), and a file's read(n) allocates n bytes before reading: 4 GB of address space for a file of
    # 671 bytes (on Linux overcommit hides it; where memory is committed up front it is real). The worker's budget
    # turns it into a clean failure.
    (1, 2886, "needs more than 3 GiB of memory to decode"),
    # Seed 1: a 16-bit PNG of under 2 KB that ran a 1 GiB budget (the fuzzer's first) out of address space the same
    # way; within the app's budget it fails as what it is.
    (1, 3731, "truncated or corrupt image data"),
]


def test_a_short_fixed_seed_run_finds_nothing():
    tried, findings, outcomes = run(seed=7, iterations=300)
    assert tried == 300
    assert findings == []
    assert outcomes.get("ok", 0) > 0 and sum(outcomes.values()) - outcomes.get("ok", 0) > 0  # both kinds occur


def test_inputs_are_reproducible_from_seed_and_index():
    seeds = seed_images()
    assert {"baseline.jpg", "rgba.png", "anim.gif", "lzw.tif", "lossy.webp"} <= set(seeds)
    assert mutated_input(3, 17, seeds) == mutated_input(3, 17)
    assert mutated_input(3, 17, seeds) != mutated_input(3, 18, seeds)


@pytest.mark.parametrize(("seed", "index", "reason"), FOUND, ids=[f"seed{s}-input{i}" for s, i, _ in FOUND])
def test_what_the_fuzzer_found_fails_cleanly(tmp_path, seed, index, reason):
    name, data = mutated_input(seed, index)
    path = tmp_path / f"found{name[name.rfind('.'):]}"
    path.write_bytes(data)
    with IsolatedDecoder(ImageTransform(), workers=1, time_limit_s=30.0) as decoder:  # the app's budget
        with pytest.raises(ImageDecodeError) as caught:
            decoder.decode(path)
    assert caught.value.reason == reason
    assert not is_finding(caught.value.reason)


# Inputs atheris found (not reproducible from a seed, so kept as files: each under a few KB), with the reason each
# must get from the isolated decoder.
CASE_FILES = Path(__file__).with_name("fuzz_cases")
FOUND_FILES = {
    # 862 bytes of WebP claiming 8020 x 15803 pixels (127 MP, under Pillow's 179 MP limit): libwebp allocates the
    # whole canvas (380 MB) and decodes until the data runs out, 1.2 s here, 11 s under atheris' instrumentation.
    # Bounded by the pixel limit, the memory budget and the time limit; the outcome is a clean failure.
    "webp-claims-127-megapixels.webp": "truncated or corrupt image data",
}


def test_every_kept_case_file_has_an_expected_outcome():
    assert sorted(p.name for p in CASE_FILES.iterdir()) == sorted(FOUND_FILES)


@pytest.mark.parametrize(("name", "reason"), sorted(FOUND_FILES.items()))
def test_what_atheris_found_fails_cleanly(name, reason):
    with IsolatedDecoder(ImageTransform(), workers=1) as decoder:
        with pytest.raises(ImageDecodeError) as caught:
            decoder.decode(CASE_FILES / name)
    assert caught.value.reason == reason
