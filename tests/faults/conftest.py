"""Fixtures of the hostile-input suite: a real library over a tiny model whose photo decoding runs isolated, as the
app's does, and the 200-megapixel JPEG (made once per session)."""

from __future__ import annotations

import pytest

from tests.faults.hostile_files import write_big_jpeg
from vsearch_app.core.engine.embedder import Embedder
from vsearch_app.core.library.library import Library

MODEL_ID = "tiny-siglip"


@pytest.fixture(scope="session")
def big_jpeg(tmp_path_factory):
    return write_big_jpeg(tmp_path_factory.mktemp("big") / "panorama-200mp.jpg")


@pytest.fixture
def make_library(tmp_path, tiny_siglip_dir):
    """``make_library(**decoder_options)``: a Library in tmp_path/data embedding with the tiny model, photo files
    decoded in worker processes (options go to the IsolatedDecoder: time_limit_s, memory_budget_bytes)."""
    libraries = []

    def make(**decoder_options) -> Library:
        def embedder() -> Embedder:
            loaded = Embedder.load(tiny_siglip_dir, device="cpu", dtype="float32", model_id=MODEL_ID,
                                   isolate_decoding=True, model_streams=1)
            for name, value in decoder_options.items():
                setattr(loaded.decoder, name, value)
            return loaded

        library = Library(tmp_path / "data", model_id=MODEL_ID, embedder_factory=embedder, commit_every=8)
        libraries.append(library)
        return library

    yield make
    for library in libraries:
        library.close()
