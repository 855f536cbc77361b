"""A mutation fuzzer for the image loader (``open_image`` followed by the model transform).

    python -m tests.faults.fuzz_images --minutes 10 [--seed N] [--out DIR]       # our own mutator
    python -m tests.faults.fuzz_images --engine atheris --minutes 10            # coverage-guided, where installed

Our mutator (the default, and the suite's short run) starts from small seed images in every format the app opens
(JPEG, progressive JPEG, PNG, GIF, BMP, TIFF, WebP, ICO, PPM, and HEIC/AVIF where their codecs are installed)
and applies one to four random edits: bit flips, bytes set to boundary values, truncation, a range deleted or
repeated, a chunk of another seed spliced in. Input ``i`` of a run depends only on (seed, i), so every finding is
reproducible from two numbers: ``mutated_input(seed, i)``. Each input is decoded in an ``IsolatedDecoder`` worker,
exactly as the library decodes photos, so a crash or a hang is observed rather than suffered.

A finding is an outcome the app must never see: the decoder crashed, hung (longer than ``--time-limit``), or raised
something other than ``ImageDecodeError`` (``could not decode: <type>``). A few-kilobyte file that claims tens of
megapixels (under Pillow's limit) and so needs more memory than the worker's budget is not one: the budget is what
bounds it, and the file fails with that reason. Findings are printed and, with
``--out``, written as files; each one found becomes a case in tests/faults/test_fuzz_images.py.

The atheris engine runs ``open_image`` in this process under libFuzzer (Pillow's Python code instrumented), with
the same seeds as its corpus: it finds Python-level surprises faster, and a native crash ends the run with
libFuzzer's crash file.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vsearch_app.core.engine.decode_pool import DEFAULT_MEMORY_BUDGET, IsolatedDecoder
from vsearch_app.errors import ImageDecodeError
from vsearch_app.preprocessing.image import ImageTransform, open_image, register_optional_plugins

TARGET = (224, 224)
BOUNDARY_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)


def seed_images() -> dict[str, bytes]:
    """Small images in every format the app opens (those whose encoder this Pillow has)."""
    register_optional_plugins()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    pixels[8:16, 8:24] = (200, 30, 40)
    rgb = Image.fromarray(pixels)
    variants: list[tuple[str, Callable[[io.BytesIO], None]]] = [
        ("baseline.jpg", lambda out: rgb.save(out, "JPEG", quality=80)),
        ("progressive.jpg", lambda out: rgb.save(out, "JPEG", progressive=True, quality=70)),
        ("cmyk.jpg", lambda out: rgb.convert("CMYK").save(out, "JPEG")),
        ("rgba.png", lambda out: rgb.convert("RGBA").save(out, "PNG")),
        ("palette.png", lambda out: rgb.convert("P").save(out, "PNG", transparency=3)),
        ("grey16.png", lambda out: Image.fromarray(pixels[..., 0].astype(np.uint16) * 257).save(out, "PNG")),
        ("anim.gif", lambda out: rgb.convert("P").save(out, "GIF", save_all=True,
                                                       append_images=[rgb.rotate(90).convert("P")])),
        ("rle.bmp", lambda out: rgb.convert("P").save(out, "BMP")),
        ("lzw.tif", lambda out: rgb.save(out, "TIFF", compression="tiff_lzw")),
        ("deflate.tif", lambda out: rgb.save(out, "TIFF", compression="tiff_adobe_deflate")),
        ("lossy.webp", lambda out: rgb.save(out, "WEBP", quality=60)),
        ("icon.ico", lambda out: rgb.save(out, "ICO", sizes=[(16, 16)])),
        ("plain.ppm", lambda out: rgb.save(out, "PPM")),
        ("photo.heic", lambda out: rgb.save(out, "HEIF", quality=50)),
        ("photo.avif", lambda out: rgb.save(out, "AVIF", quality=50)),
    ]
    seeds = {}
    for name, save in variants:
        out = io.BytesIO()
        try:
            save(out)
        except (KeyError, OSError, ValueError):  # no encoder for this format in this Pillow
            continue
        seeds[name] = out.getvalue()
    return seeds


def mutate(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """One to four random edits of ``data``."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buffer:
            break
        kind = rng.randrange(6)
        at = rng.randrange(len(buffer))
        if kind == 0:  # flip a few bits
            for _ in range(rng.randint(1, 8)):
                spot = rng.randrange(len(buffer))
                buffer[spot] ^= 1 << rng.randrange(8)
        elif kind == 1:  # a boundary value where a length or a dimension may be
            width = rng.choice((1, 2, 4))
            value = rng.choice(BOUNDARY_BYTES)
            buffer[at:at + width] = bytes([value]) * min(width, len(buffer) - at)
        elif kind == 2:  # truncate
            del buffer[max(1, at):]
        elif kind == 3:  # delete a range
            del buffer[at:at + rng.randint(1, 64)]
        elif kind == 4:  # repeat a range
            piece = buffer[at:at + rng.randint(1, 64)]
            buffer[at:at] = piece * rng.randint(1, 8)
        else:  # splice a chunk of another seed in
            donor = rng.choice(others)
            start = rng.randrange(len(donor))
            buffer[at:at + rng.randint(0, 32)] = donor[start:start + rng.randint(1, 256)]
    return bytes(buffer)


def mutated_input(seed: int, index: int, seeds: dict[str, bytes] | None = None) -> tuple[str, bytes]:
    """Input ``index`` of the run with ``seed``: (seed image name, bytes). Depends on nothing else."""
    seeds = seeds or seed_images()
    names = sorted(seeds)
    rng = random.Random(seed * 1_000_003 + index)
    name = rng.choice(names)
    return name, mutate(seeds[name], rng, [seeds[n] for n in names])


@dataclass(frozen=True)
class Finding:
    seed: int
    index: int
    seed_image: str
    reason: str
    data: bytes


def is_finding(reason: str) -> bool:
    """Outcomes a user's file must never produce (see the module docstring)."""
    return reason == "decoder crashed" or reason.startswith("took longer than") or reason.startswith("could not decode")


def run(seed: int, *, iterations: int | None = None, seconds: float | None = None, time_limit_s: float = 10.0,
        on_finding: Callable[[Finding], None] | None = None) -> tuple[int, list[Finding], dict[str, int]]:
    """Fuzz until ``iterations`` inputs or ``seconds`` have passed: (inputs tried, findings, outcome counts)."""
    seeds = seed_images()
    findings: list[Finding] = []
    outcomes: dict[str, int] = {}
    deadline = time.monotonic() + seconds if seconds is not None else None
    index = 0
    with tempfile.TemporaryDirectory(prefix="vsearch-fuzz-") as scratch, \
            IsolatedDecoder(ImageTransform(), workers=1, time_limit_s=time_limit_s,
                            memory_budget_bytes=DEFAULT_MEMORY_BUDGET) as decoder:
        while (iterations is None or index < iterations) and (deadline is None or time.monotonic() < deadline):
            name, data = mutated_input(seed, index, seeds)
            path = Path(scratch) / f"input{Path(name).suffix}"
            path.write_bytes(data)
            try:
                decoder.decode(path)
                reason = "ok"
            except ImageDecodeError as exc:
                reason = exc.reason
            outcomes[_bucket(reason)] = outcomes.get(_bucket(reason), 0) + 1
            if is_finding(reason):
                finding = Finding(seed, index, name, reason, data)
                findings.append(finding)
                if on_finding is not None:
                    on_finding(finding)
            index += 1
    return index, findings, outcomes


def _bucket(reason: str) -> str:
    return reason.split(" (")[0]


# --- atheris -------------------------------------------------------------------------------------------------------


def run_atheris(minutes: float, out: Path) -> int:
    import atheris

    # Pillow is imported already (this module needs it for the seeds), so its loaded code is instrumented in place.
    atheris.instrument_all()

    def test_one_input(data: bytes) -> None:
        try:
            open_image(io.BytesIO(data), target_size=TARGET)
        except ImageDecodeError:
            pass  # a clean refusal: what a bad file should get

    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for name, data in seed_images().items():
        (corpus / name).write_bytes(data)
    argv = [sys.argv[0], str(corpus), f"-max_total_time={int(minutes * 60)}", "-timeout=10", "-rss_limit_mb=2048",
            f"-artifact_prefix={out}{os.sep}"]
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.fuzz_images", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engine", choices=("mutator", "atheris"), default="mutator")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds one input may take")
    parser.add_argument("--out", type=Path, help="write findings (and the atheris corpus) here")
    args = parser.parse_args(argv)
    if args.engine == "atheris":
        return run_atheris(args.minutes, args.out or Path(tempfile.mkdtemp(prefix="vsearch-atheris-")))

    def report(finding: Finding) -> None:
        print(f"FINDING seed={finding.seed} index={finding.index} from {finding.seed_image}: {finding.reason}",
              flush=True)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"finding-{finding.seed}-{finding.index}{Path(finding.seed_image).suffix}").write_bytes(
                finding.data)

    started = time.monotonic()
    tried, findings, outcomes = run(args.seed, seconds=args.minutes * 60, time_limit_s=args.time_limit,
                                    on_finding=report)
    elapsed = time.monotonic() - started
    print(f"{tried} inputs in {elapsed:.0f} s ({tried / elapsed:.0f}/s), seed {args.seed}: {len(findings)} finding(s)")
    for reason, count in sorted(outcomes.items(), key=lambda item: -item[1]):
        print(f"  {count:7d}  {reason}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
