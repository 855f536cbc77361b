"""Turning photos and sentences into L2-normalised vectors in one space, with our SigLIP.

Images are decoded (JPEGs at reduced scale when much larger than the model input) in a small thread pool while the
model runs earlier ones; a few batches of decoded pixels exist at once, so memory stays bounded whatever the number
or size of the inputs. On a multi-core CPU each batch is split in two halves that run at once in two "model streams",
each with half of the torch threads (see ``ModelStreams``). A text query from the search bar runs in its caller's
thread straight away, next to any indexing, rather than waiting for an image batch to finish.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vsearch_app.core.devices import keep_freed_memory_for_reuse, resolve_device, resolve_dtype
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
        return cls(
            model,
            tokenizer,
            transform,
            model_id=model_id or str(folder),
            decode_workers=decode_workers,
            model_streams=model_streams,
        )

    def close(self) -> None:
        """Stop the model stream threads (the Embedder starts them again if it is used afterwards)."""
        self._streams.close()

    # --- images ---------------------------------------------------------------------------------------------------

    def _decode(self, source: ImageSource) -> np.ndarray:
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
            in_flight: deque[tuple[range, list[Future]]] = deque()
            decoding: deque[list[Future]] = deque()

            def launch(batch: range) -> None:
                ranges = self._streams.split(batch)
                parts = []
                for part in ranges:
                    decoded = [(i, decode_pool.submit(self._decode, sources[i])) for i in part]
                    decoding.append([future for _, future in decoded])
                    parts.append(self._streams.submit(self._embed_part, decoded, sources, whole=len(ranges) == 1))
                in_flight.append((batch, parts))

            ahead = iter(batches)
            for _ in range(self._streams.count + 1):  # every stream busy, and the next batch already decoding
                batch = next(ahead, None)
                if batch is not None:
                    launch(batch)
            done = 0
            while in_flight:
                if should_stop is not None and should_stop():
                    _abandon([part for _, parts in in_flight for part in parts], decoding)
                    break
                batch, parts = in_flight.popleft()
                for part in parts:
                    part_vectors, ok, part_failures = part.result()
                    if ok:
                        vectors.append(part_vectors)
                        indices.extend(ok)
                    failures.extend(part_failures)
                for _ in parts:
                    decoding.popleft()
                with self._count_lock:
                    self.forward_calls += 1
                next_batch = next(ahead, None)
                if next_batch is not None:
                    launch(next_batch)
                done += len(batch)
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


def default_stream_count(device: torch.device) -> int:
    """Two model streams on a CPU with at least two torch threads, when torch's thread counts are per thread (its
    OpenMP backend: the wheels for every desktop platform); otherwise, and on GPUs, one."""
    if device.type != "cpu" or torch.get_num_threads() < 2:
        return 1
    return 2 if "ATen parallel backend: OpenMP" in torch.__config__.parallel_info() else 1


class ModelStreams:
    """Runs the parts of image batches at the same time, each in its own thread with ``1/count`` of the torch threads.

    Why: one forward pass over all cores synchronises its threads after every operator, and the small operators
    (layer norms, softmax, adds) do not divide well; the decode threads also preempt a core in the middle of a matrix
    product, which stalls the other threads at the next barrier. Independent half-batches do neither. Measured on the
    2-core CPU with bench_embed's photos, batches of 16, medians of 4 interleaved runs: +6% (8.26 vs 7.80 images/s)
    and +2% (7.95 vs 7.78) in two sessions of a noisy shared machine.

    torch keeps the thread count per OS thread (OpenMP), but ``torch.set_num_threads`` also sets the default that
    threads created later start from; so the stream threads are started together, each takes its count, and the
    starting thread then puts the default back.
    """

    SMALLEST_SPLIT = 4  # a smaller batch (a query image) runs whole, in the calling thread with all its threads

    def __init__(self, count: int) -> None:
        self.count = max(1, count)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def split(self, batch: range) -> list[range]:
        """The parts a batch is embedded in: ``count`` near-equal ranges, or the batch itself when it is small."""
        if self.count == 1 or len(batch) < self.SMALLEST_SPLIT:
            return [batch]
        bounds = np.linspace(batch.start, batch.stop, self.count + 1).round().astype(int)
        return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def submit(self, fn: Callable[..., Any], *args: Any, whole: bool) -> Future:
        """Start ``fn(*args)`` on a stream thread. A ``whole`` batch (one that was not split), or any work when there
        is a single stream (a GPU, or one core), runs instead in the caller's thread, with all its torch threads,
        when its result is asked for."""
        if whole or self.count == 1:
            return _Deferred(fn, args)
        return self._started().submit(fn, *args)

    def _started(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                own = torch.get_num_threads()
                pool = ThreadPoolExecutor(self.count, thread_name_prefix="vsearch-model")
                ready = threading.Barrier(self.count + 1)
                for _ in range(self.count):  # each blocks at the barrier, so the pool must start all its threads
                    pool.submit(_take_threads, max(1, own // self.count), ready)
                ready.wait()
                torch.set_num_threads(own)
                self._pool = pool
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


class _Deferred(Future):
    """A future whose work runs in the thread that first asks for its result."""

    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        super().__init__()
        self._work: tuple[Callable[..., Any], tuple] | None = (fn, args)

    def result(self, timeout: float | None = None) -> Any:
        work, self._work = self._work, None
        if work is not None and self.set_running_or_notify_cancel():
            try:
                self.set_result(work[0](*work[1]))
            except BaseException as exc:
                self.set_exception(exc)
        return super().result(timeout)


def _take_threads(count: int, ready: threading.Barrier) -> None:
    torch.get_num_threads()  # runs torch's lazy per-thread set-up now, so it cannot later replace the count below
    torch.set_num_threads(count)
    ready.wait()


def _abandon(parts: list[Future], decoding: deque[list[Future]]) -> None:
    """Stop work that was started ahead: cancel what has not begun, and wait for the parts already running, so no
    forward pass outlives the call that asked for it."""
    for part in parts:
        part.cancel()
    for futures in decoding:
        for future in futures:
            future.cancel()
    for part in parts:
        if not part.cancelled():
            try:
                part.result()
            except Exception:  # its inputs were cancelled under it; nothing of it is used
                pass


def _normalised(features: torch.Tensor) -> np.ndarray:
    return F.normalize(features.float(), dim=-1).cpu().numpy()
