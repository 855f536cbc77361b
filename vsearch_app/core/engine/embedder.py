"""Turning photos and sentences into L2-normalised vectors in one space, with our SigLIP.

Images are decoded (JPEGs at reduced scale when much larger than the model input) in a small thread pool while the
model runs earlier ones; a few batches of decoded pixels exist at once, so memory stays bounded whatever the number
or size of the inputs. On a multi-core CPU each batch is split in two halves that run at once in two "model streams",
each with half of the torch threads (see ``ModelStreams``). A text query from the search bar runs in its caller's
thread straight away, next to any indexing, rather than waiting for an image batch to finish. With
``isolate_decoding`` (the library's embedder) photo files are decoded in worker processes (``IsolatedDecoder``), so a
decoder that crashes or hangs on one file fails that file only.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vsearch_app.core.engine.decode_pool import IsolatedDecoder, is_isolated_source
from vsearch_app.core.engine.devices import keep_freed_memory_for_reuse, resolve_device, resolve_dtype
from vsearch_app.core.engine.model_streams import ModelStreams, default_stream_count
from vsearch_app.errors import ImageDecodeError, InvalidArgumentError, VSearchError
from vsearch_app.modeling.siglip import SiglipModel, load_siglip
from vsearch_app.preprocessing.image import ImageTransform, open_image
from vsearch_app.preprocessing.text import TextTokenizer

log = logging.getLogger(__name__)

ImageSource = str | Path | Image.Image


@dataclass(frozen=True)
class ImageEmbeddings:
    """Vectors for the sources that decoded; ``indices[i]`` is the input position of ``vectors[i]``."""

    vectors: np.ndarray
    indices: list[int] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)


class Embedder:
    def __init__(
        self,
        model: SiglipModel,
        tokenizer: TextTokenizer,
        transform: ImageTransform,
        *,
        model_id: str,
        decode_workers: int = 2,
        model_streams: int | None = None,
        decoder: IsolatedDecoder | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.transform = transform
        self.model_id = model_id
        self.dim = model.config.embed_dim
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self._decode_workers = max(1, decode_workers)
        self._streams = ModelStreams(default_stream_count(self.device) if model_streams is None else model_streams)
        self._count_lock = threading.Lock()
        self.decoder = decoder  # photo files go to its worker processes when set
        self.forward_calls = 0  # image batches run; tests and `status` use it to prove work was skipped

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        *,
        device: str = "auto",
        dtype: str = "auto",
        model_id: str | None = None,
        decode_workers: int = 2,
        model_streams: int | None = None,
        isolate_decoding: bool = False,
    ) -> Embedder:
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        if torch_device.type == "cpu":
            keep_freed_memory_for_reuse()
        folder = Path(model_dir)
        model = load_siglip(folder, device=torch_device, dtype=torch_dtype)
        model.pack_for_inference()
        # Both SigLIP generations were trained on lowercased text; SigLIP 2's Gemma tokenizer does not lowercase
        # by itself, so we always do.
        tokenizer = TextTokenizer.from_folder(
            folder, max_length=model.config.text_config.max_position_embeddings, lowercase=True
        )
        transform = ImageTransform.from_folder(folder)
        log.info("loaded %s on %s in %s", folder, torch_device, torch_dtype)
        decoder = IsolatedDecoder(transform, workers=decode_workers) if isolate_decoding else None
        return cls(
            model,
            tokenizer,
            transform,
            model_id=model_id or str(folder),
            decode_workers=decode_workers,
            model_streams=model_streams,
            decoder=decoder,
        )

    def close(self) -> None:
        """Stop the model stream threads and decoder processes (the Embedder starts them again if it is used
        afterwards)."""
        self._streams.close()
        if self.decoder is not None:
            self.decoder.close()

    # --- images ---------------------------------------------------------------------------------------------------

    def _decode(self, source: ImageSource) -> np.ndarray:
        if self.decoder is not None and is_isolated_source(source):
            return self.decoder.decode(source)
        # In-memory images go straight to to_array, whose RGB conversion handles 16-bit and transparency properly.
        image = source if isinstance(source, Image.Image) else open_image(source, target_size=self.transform.size)
        return self.transform.to_array(image)

    def embed_images(
        self,
        sources: Sequence[ImageSource],
        *,
        batch_size: int = 16,
        should_stop: Callable[[], bool] | None = None,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> ImageEmbeddings:
        """Embed ``sources`` in order. Unreadable images are reported in ``failures`` with their reason and do not
        stop the others. ``should_stop`` is checked between batches; ``on_batch(done, total)`` reports progress."""
        if batch_size < 1:
            raise InvalidArgumentError("batch size must be at least 1")
        batches = [range(i, min(i + batch_size, len(sources))) for i in range(0, len(sources), batch_size)]
        vectors: list[np.ndarray] = []
        indices: list[int] = []
        failures: list[tuple[int, str]] = []
        with ThreadPoolExecutor(self._decode_workers, thread_name_prefix="vsearch-decode") as decode_pool:
            in_flight: deque[_BatchInFlight] = deque()

            def launch(batch: range) -> None:
                ranges = self._streams.split(batch)
                parts, decodes = [], []
                for part in ranges:
                    decoded = [(i, decode_pool.submit(self._decode, sources[i])) for i in part]
                    decodes.extend(future for _, future in decoded)
                    parts.append(self._streams.submit(self._embed_part, decoded, sources, whole=len(ranges) == 1))
                in_flight.append(_BatchInFlight(batch, parts, decodes))

            ahead = iter(batches)
            for _ in range(self._streams.count + 1):  # every stream busy, and the next batch already decoding
                batch = next(ahead, None)
                if batch is not None:
                    launch(batch)
            done = 0
            while in_flight:
                if should_stop is not None and should_stop():
                    _abandon(in_flight)
                    break
                current = in_flight.popleft()
                for part in current.parts:
                    part_vectors, ok, part_failures = part.result()
                    if ok:
                        vectors.append(part_vectors)
                        indices.extend(ok)
                    failures.extend(part_failures)
                with self._count_lock:
                    self.forward_calls += 1
                next_batch = next(ahead, None)
                if next_batch is not None:
                    launch(next_batch)
                done += len(current.inputs)
                if on_batch is not None:
                    on_batch(done, len(sources))
        stacked = np.concatenate(vectors) if vectors else np.zeros((0, self.dim), np.float32)
        return ImageEmbeddings(stacked, indices, failures)

    def _embed_part(
        self, decoded: list[tuple[int, Future]], sources: Sequence[ImageSource]
    ) -> tuple[np.ndarray | None, list[int], list[tuple[int, str]]]:
        """Wait for one part's decoded pixels and embed them: (vectors, their input positions, failures)."""
        arrays, ok, failures = [], [], []
        for i, future in decoded:
            try:
                arrays.append(future.result())
                ok.append(i)
            except ImageDecodeError as exc:
                failures.append((i, exc.reason))  # the caller knows which file it was
            except VSearchError as exc:
                failures.append((i, str(exc)))
            except Exception as exc:  # a decoder bug must not lose the rest of the batch
                log.exception("unexpected error decoding input %d", i)
                failures.append((i, f"could not decode: {exc}"))
        if not arrays:
            return None, ok, failures
        batch = torch.from_numpy(np.stack(arrays)).to(device=self.device, dtype=self.dtype)
        with torch.inference_mode():
            return _normalised(self.model.get_image_features(batch)), ok, failures

    # --- text -----------------------------------------------------------------------------------------------------

    def embed_texts(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        out = []
        for start in range(0, len(texts), batch_size):
            ids = self.tokenizer.encode_padded(texts[start : start + batch_size]).to(self.device)
            with torch.inference_mode():
                out.append(_normalised(self.model.get_text_features(ids)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


@dataclass(frozen=True)
class _BatchInFlight:
    inputs: range  # positions in the sources
    parts: list[Future]  # (vectors, positions, failures) per part, in order
    decodes: list[Future]  # the decoded pixels the parts wait for


def _abandon(batches: Iterable[_BatchInFlight]) -> None:
    """Stop work that was started ahead: cancel what has not begun, and wait for the parts already running, so no
    forward pass outlives the call that asked for it."""
    batches = list(batches)
    parts = [part for batch in batches for part in batch.parts]
    for future in parts + [decode for batch in batches for decode in batch.decodes]:
        future.cancel()
    for part in parts:
        if not part.cancelled():
            try:
                part.result()
            except Exception:  # its inputs were cancelled under it; nothing of it is used
                pass


def _normalised(features: torch.Tensor) -> np.ndarray:
    return F.normalize(features.float(), dim=-1).cpu().numpy()
