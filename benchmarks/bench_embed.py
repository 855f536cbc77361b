"""Images/s from photo files to vectors: our pipeline against the one a user would write with `transformers`.

Both run in their own subprocess (so peak memory is each pipeline's own) on the same SigLIP-base-shaped checkpoint
with random weights and the same 12-megapixel JPEGs:
- reference: full Pillow decode, `SiglipImageProcessor`, `transformers` SiglipModel in float32, batches of 16;
- ours: `core.engine.embedder.Embedder` with dtype auto (bf16 on CPUs with native bf16), reduced-scale JPEG decoding
  in a thread pool overlapped with the model, batches of 16.
Model loading is excluded; one warm-up batch runs before timing. Usage:
    python benchmarks/bench_embed.py [--images 64] [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import CACHE, ROOT, peak_rss_mb, print_table

BATCH = 16


def build_checkpoint(folder: Path, quick: bool) -> Path:
    if (folder / "model.safetensors").is_file():
        return folder
    import torch
    from transformers import SiglipConfig, SiglipModel

    from tests.support.tiny_models import build_word_tokenizer, write_preprocessor_config

    vocab = build_word_tokenizer(folder, max_length=64)
    if quick:
        vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
        text = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
    else:  # google/siglip-base-patch16-224 shapes (the transformers defaults)
        vision, text = {}, {}
    config = SiglipConfig(
        vision_config=dict(image_size=224, patch_size=16, **vision),
        text_config=dict(vocab_size=vocab, max_position_embeddings=64, pad_token_id=0, eos_token_id=1, **text),
    )
    torch.manual_seed(0)
    SiglipModel(config).save_pretrained(folder)
    write_preprocessor_config(folder, 224, resample=3)
    return folder


def build_photos(folder: Path, count: int, size: tuple[int, int]) -> list[Path]:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"photo_{i:03d}.jpg"
        if not path.is_file():
            rng = np.random.default_rng(i)
            # Smooth colour fields plus fine grain: photo-like content, photo-like JPEG size.
            base = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).resize(size, Image.BICUBIC)
            grain = rng.integers(-12, 12, (size[1], size[0], 1), dtype=np.int16)
            pixels = np.clip(np.asarray(base, dtype=np.int16) + grain, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


def run_reference(model_dir: Path, paths: list[Path]) -> float:
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, SiglipModel

    processor = AutoImageProcessor.from_pretrained(model_dir)
    model = SiglipModel.from_pretrained(model_dir, dtype=torch.float32).eval()

    def embed(batch_paths):
        images = [Image.open(p).convert("RGB") for p in batch_paths]
        inputs = processor(images=images, return_tensors="pt")
        with torch.no_grad():
            features = model.get_image_features(**inputs).pooler_output
        return torch.nn.functional.normalize(features, dim=-1).numpy()

    embed(paths[:2])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(paths), BATCH):
        embed(paths[i:i + BATCH])
    return time.perf_counter() - start


def run_ours(model_dir: Path, paths: list[Path]) -> float:
    from vsearch_app.core.engine.embedder import Embedder

    embedder = Embedder.load(model_dir, device="cpu", dtype="auto")
    embedder.embed_images(paths[:2])  # warm-up
    start = time.perf_counter()
    result = embedder.embed_images(paths, batch_size=BATCH)
    elapsed = time.perf_counter() - start
    assert len(result.indices) == len(paths), result.failures
    return elapsed


def worker(kind: str, model_dir: Path, paths: list[Path]) -> None:
    elapsed = (run_ours if kind == "ours" else run_reference)(model_dir, paths)
    if kind == "ours":
        import torch

        from vsearch_app.core.engine.devices import resolve_dtype

        dtype = str(resolve_dtype("auto", torch.device("cpu"))).removeprefix("torch.")
    else:
        dtype = "float32"
    print(json.dumps({"seconds": elapsed, "images": len(paths), "peak_rss_mb": peak_rss_mb(), "dtype": dtype}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="tiny model and small photos: a smoke run")
    parser.add_argument("--worker", choices=["ours", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    tag = "quick" if args.quick else "base"
    model_dir = CACHE / f"embed-siglip-{tag}"
    size = (640, 480) if args.quick else (4000, 3000)
    count = min(args.images, 8) if args.quick else args.images
    paths = build_photos(CACHE / f"photos-{size[0]}x{size[1]}", count, size)
    if args.worker:
        worker(args.worker, args.model_dir, paths)
        return
    build_checkpoint(model_dir, args.quick)

    results = {}
    for kind in ("reference", "ours"):
        command = [sys.executable, __file__, "--worker", kind, "--model-dir", str(model_dir), "--images", str(count)]
        if args.quick:
            command.append("--quick")
        out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])

    rate = {k: v["images"] / v["seconds"] for k, v in results.items()}
    rows = [
        [kind, results[kind]["dtype"], f"{rate[kind]:.2f}", f"{results[kind]['peak_rss_mb']:.0f}"]
        for kind in ("reference", "ours")
    ]
    print_table(
        f"{count} JPEGs of {size[0]}x{size[1]} px, {'tiny' if args.quick else 'SigLIP-base'} model, batch {BATCH}",
        ["pipeline", "dtype", "images/s", "peak RSS MB"], rows,
    )
    print(f"\nratio ours/reference: {rate['ours'] / rate['reference']:.2f}x  (target >= 4.0 on the 2-core CPU)")


if __name__ == "__main__":
    main()
