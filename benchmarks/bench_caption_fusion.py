"""Caption fusion (issue 13): Recall@1 of a fact only the captions know, with fusion off and on, and what fusion
costs in search latency, on a synthetic library searched through the app's own code (Library.search_results).

The library: N photo vectors (default 100,000, 768-d) from bench_library.py's generator (clustered, anisotropic, like
real image embeddings), filed in a real catalog and vector index. A share of the photos (default 5%) get a stored
caption of 6 to 10 everyday words; NAMED of those captions also carry a made-up name ("Zorblax ...") that nothing
else knows. Text queries get the generator's text-like vectors (best cosine to a photo ~0.2-0.35, as SigLIP's text
queries), unrelated to any photo's caption: the worst case for the vectors, which cannot know a name.

Reported, in one run:
- Recall@1 of "photo of NAME" (is the named photo first?) with caption weight 0 (vectors alone; chance is 1 in N),
  weaker weights (a match then moves its photo only part of the way up) and the default;
- the p50 latency of a search (query vector given, ranking and the first page of 50 hits built) for name queries and
  for everyday-word queries that match many captions, with fusion off and on, and the ratio on/off.

Usage:
    python benchmarks/bench_caption_fusion.py [--size 100000] [--captioned 0.05] [--named 200] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import print_table
from bench_library import Generator

from vsearch_app.core.library.caption_match import DEFAULT_CAPTION_WEIGHT
from vsearch_app.core.library.library import Library
from vsearch_app.core.store import captions
from vsearch_app.core.types import CaptionResult

MODEL = "bench-model"
SEED = 20261202
PAGE = 50
EVERYDAY = ("red blue green yellow white black dog cat car bike tree house street beach sea mountain snow sky "
            "child woman man table chair window door flower garden river bridge city road boat train plane "
            "kitchen sofa lamp book cake ball hat shoe bag cup plate park lake forest field night sunset").split()
WORD_QUERIES = ["a dog on the beach", "red car in the street", "child with a ball in the park",
                "sunset over the lake", "a cake on a table", "snow on the mountain"]
SYLLABLES = ("zor bla quen ta vio mir ro wen plum beck tha drix ova lin de kres pin yul va bran noch se fi "
             "rah gor vath elo wick").split()


def made_up_names(count: int, rng: np.random.Generator) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        parts = rng.choice(SYLLABLES, size=int(rng.integers(3, 5)))
        names.add("".join(parts).capitalize())
    return sorted(names)


class QueryEmbedder:
    """Stands in for the text tower: each query text gets its own text-like vector from the generator."""

    model_id = MODEL

    def __init__(self, texts: list[str], vectors: np.ndarray) -> None:
        self.vectors = dict(zip(texts, vectors, strict=True))
        self.dim = vectors.shape[1]

    def embed_texts(self, texts, *, batch_size=32):
        return np.stack([self.vectors[t] for t in texts])


def build_library(folder: Path, data: np.ndarray, embedder: QueryEmbedder) -> Library:
    root = folder / "photos"
    root.mkdir(parents=True)
    lib = Library(folder / "data", model_id=MODEL, embedder_factory=lambda: embedder)
    lib.add_folder(root)
    with lib.catalog.transaction():
        for i, vector in enumerate(data):
            lib.catalog.record_embedding(root / f"IMG_{i:06d}.jpg", MODEL, vector, size=1000, mtime_ns=i)
    lib.vector_index(create=False)  # built from the catalog by the app's own rebuild path
    return lib


def store_captions(lib: Library, count: int, named: list[str], rng: np.random.Generator) -> dict[str, Path]:
    """Captions for ``count`` random photos; the first len(named) of them also carry a name. Returns name -> photo."""
    ids, _ = lib.catalog.embeddings(MODEL)
    chosen = rng.choice(ids, size=count, replace=False)
    paths = lib.catalog.paths_for_ids(chosen)
    owner = {}
    with lib.catalog.transaction():
        for i, path in enumerate(paths):
            text = " ".join(rng.choice(EVERYDAY, size=int(rng.integers(6, 11))))
            if i < len(named):
                text = f"{named[i]} with a {text}"
                owner[named[i]] = path
            photo = captions.find_photo(lib.catalog, path)
            captions.save(lib.catalog, photo, CaptionResult(text, "caption en", "bench-captioner", "stop_token",
                                                            token_count=12))
    return owner


def recall_at_1(lib: Library, owner: dict[str, Path], weight: float) -> float:
    found = sum(lib.search(f"photo of {name}", limit=1, caption_weight=weight)[0].path == path
                for name, path in owner.items())
    return found / len(owner)


def p50_ms(lib: Library, queries: list[str], weight: float, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        for query in queries:
            start = time.perf_counter()
            lib.search_results(query, caption_weight=weight).page(0, PAGE)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="photos in the library (default 100,000)")
    parser.add_argument("--captioned", type=float, default=0.05, help="share of photos with a caption (0.05)")
    parser.add_argument("--named", type=int, default=200, help="captions that carry a made-up name (200)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over the queries (5)")
    parser.add_argument("--quick", action="store_true", help="5,000 photos, 40 names, 2 passes (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.named, args.repeats = 5_000, 40, 2
    rng = np.random.default_rng(SEED)
    count = max(args.named, int(args.size * args.captioned))
    names = made_up_names(args.named, rng)
    texts = [f"photo of {name}" for name in names] + WORD_QUERIES
    gen = Generator()
    embedder = QueryEmbedder(texts, gen.text_queries(len(texts)))
    print(f"library: {args.size:,} photos, 768-d vectors (bench_library.py's clustered generator); {count:,} "
          f"captioned ({count / args.size:.1%}), {args.named} of them with a made-up name; text-like query vectors "
          "unrelated to the captions")
    with tempfile.TemporaryDirectory(prefix="bench_caption_fusion_") as tmp:
        start = time.perf_counter()
        lib = build_library(Path(tmp), gen.vectors(args.size), embedder)
        owner = store_captions(lib, count, names, rng)
        print(f"built in {time.perf_counter() - start:.1f} s")
        try:
            weights = [0.0, 0.25, 0.5, DEFAULT_CAPTION_WEIGHT]
            rows = [[f"{w:g}" + (" (off)" if w == 0 else " (default)" if w == DEFAULT_CAPTION_WEIGHT else ""),
                     f"{recall_at_1(lib, owner, w):.3f}"] for w in weights]
            print_table(f'Recall@1 of "photo of NAME" ({len(owner)} names; chance {1 / args.size:.5f})',
                        ["caption weight", "Recall@1"], rows)
            rows = []
            for label, queries in (("name queries", texts[:len(names)][:50]), ("everyday-word queries", WORD_QUERIES)):
                lib.search_results(queries[0], caption_weight=1.0).page(0, PAGE)  # warm the index and caches
                off = p50_ms(lib, queries, 0.0, args.repeats)
                on = p50_ms(lib, queries, DEFAULT_CAPTION_WEIGHT, args.repeats)
                rows.append([label, f"{off:.2f}", f"{on:.2f}", f"{on / off:.2f}x"])
            print_table(f"search p50 latency, ranking + first page of {PAGE} hits (ms)",
                        ["queries", "fusion off", "fusion on", "ratio on/off"], rows)
        finally:
            lib.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
