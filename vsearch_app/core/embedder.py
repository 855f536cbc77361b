"""Turning photos and sentences into L2-normalised vectors in one space, with our SigLIP.

Images are decoded (JPEGs at reduced scale when much larger than the model input) in a small thread pool while the
model runs the previous batch; at most two batches of decoded pixels exist at once, so memory stays bounded whatever
the number or size of the inputs. Forward passes go through one lock (the "model lane") so a text query from the
search bar can run between two indexing batches without racing them.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vsearch_app.core.devices import resolve_device, resolve_dtype
from vsearch_app.errors import InvalidArgumentError, VSearchError
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
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.transform = transform
        self.model_id = model_id
        self.dim = model.config.embed_dim
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self._decode_workers = max(1, decode_workers)
        self._lane = threading.Lock()
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
    ) -> Embedder:
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
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
        return cls(model, tokenizer, transform, model_id=model_id or str(folder), decode_workers=decode_workers)

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
        with ThreadPoolExecutor(self._decode_workers, thread_name_prefix="vsearch-decode") as pool:
            pending: deque[list[tuple[int, Future]]] = deque()

            def submit(batch: range) -> None:
                pending.append([(i, pool.submit(self._decode, sources[i])) for i in batch])

            ahead = iter(batches)
            for batch in [next(ahead, None), next(ahead, None)]:  # decode two batches ahead of the model
                if batch is not None:
                    submit(batch)
            done = 0
            while pending:
                if should_stop is not None and should_stop():
                    for futures in pending:
                        for _, future in futures:
                            future.cancel()
                    break
                futures = pending.popleft()
                arrays, ok = [], []
                for i, future in futures:
                    try:
                        arrays.append(future.result())
                        ok.append(i)
                    except VSearchError as exc:
                        failures.append((i, _reason_only(str(exc), sources[i])))
                    except Exception as exc:  # a decoder bug must not lose the rest of the batch
                        log.exception("unexpected error decoding input %d", i)
                        failures.append((i, f"could not decode: {exc}"))
                next_batch = next(ahead, None)
                if next_batch is not None:
                    submit(next_batch)
                if arrays:
                    vectors.append(self._embed_pixels(np.stack(arrays)))
                    indices.extend(ok)
                done += len(futures)
                if on_batch is not None:
                    on_batch(done, len(sources))
        stacked = np.concatenate(vectors) if vectors else np.zeros((0, self.dim), np.float32)
        return ImageEmbeddings(stacked, indices, failures)

    def _embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(pixels).to(device=self.device, dtype=self.dtype)
        with self._lane, torch.inference_mode():
            features = self.model.get_image_features(batch)
            self.forward_calls += 1
        return _normalised(features)

    # --- text -----------------------------------------------------------------------------------------------------

    def embed_texts(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        out = []
        for start in range(0, len(texts), batch_size):
            ids = self.tokenizer.encode_padded(texts[start:start + batch_size]).to(self.device)
            with self._lane, torch.inference_mode():
                out.append(_normalised(self.model.get_text_features(ids)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


def _normalised(features: torch.Tensor) -> np.ndarray:
    return F.normalize(features.float(), dim=-1).cpu().numpy()


def _reason_only(message: str, source: ImageSource) -> str:
    """Decode errors read "<path>: <reason>"; callers already know the path, so keep the reason alone."""
    prefix = f"{source}: "
    return message[len(prefix):] if message.startswith(prefix) else message
