"""Captions and answers about a photo, with our PaliGemma.

``Captioner.load`` reads a PaliGemma checkpoint folder (strictly), its tokenizer and image preprocessing; bf16 on
CPUs with native bf16, where the decoder's weights are also prepacked for oneDNN: after the first caption, while the
model is idle (core/engine/idle_packer.py), so a cold start does not wait for it; the weights packing replaces are
memory-mapped from the checkpoint until then rather than copied. ``caption`` runs one image through the phases of
``modeling.generate`` and streams text pieces to ``on_token``. Calls are serialised by a lock (one model lane), so the
desktop app may call it from a worker thread while another waits. The session (core.engine.caption_session) owns
the one Captioner of a LibraryService and stores what it writes; ``close`` stops the packing thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from vsearch_app.core.engine.devices import resolve_device, resolve_dtype
from vsearch_app.core.engine.idle_packer import IdlePacker
from vsearch_app.core.types import CaptionResult
from vsearch_app.modeling.generate import generate
from vsearch_app.modeling.layers import can_pack
from vsearch_app.modeling.paligemma import PaliGemmaForConditionalGeneration, load_paligemma, replaced_by_packing
from vsearch_app.modeling.sampling import GenerationParams
from vsearch_app.preprocessing.image import ImageTransform, open_image, to_rgb
from vsearch_app.preprocessing.prompts import DEFAULT_PROMPT, StreamingDecoder, build_prompt, check_prompt
from vsearch_app.preprocessing.text import TextTokenizer

log = logging.getLogger(__name__)

ImageSource = str | Path | Image.Image
Cancel = threading.Event | Callable[[], bool] | None

# The steps of Captioner.load, in order, as on_step reports them.
LOAD_STEPS = ("reading weights", "preparing")
# How Captioner.load prepacks the decoder for oneDNN (where that applies: bf16 on a CPU with native bf16):
PACK_IDLE = "idle"  # after the first caption, while idle (the default: the fastest cold start)
PACK_AT_LOAD = "load"  # all at once before load returns (the fastest first caption once loaded; the old way)
PACK_NEVER = "never"
PACKING_CHOICES = (PACK_IDLE, PACK_AT_LOAD, PACK_NEVER)


class Captioner:
    def __init__(
        self,
        model: PaliGemmaForConditionalGeneration,
        tokenizer: TextTokenizer,
        transform: ImageTransform,
        *,
        model_id: str = "",
        pack_when_idle: bool = True,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.transform = transform
        self.model_id = model_id
        self._lane = threading.Lock()
        # Packing steps left for idle time (none when packing does not apply or was done at load).
        steps = model.language_model.packing_steps() if pack_when_idle else []
        self._packer = IdlePacker(steps, self._lane, name="caption-packer")

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        *,
        device: str = "auto",
        dtype: str = "auto",
        model_id: str | None = None,
        packing: str = PACK_IDLE,
        on_step: Callable[[str], None] | None = None,
    ) -> Captioner:
        """Load a checkpoint folder. ``on_step(phase)`` is called before each of LOAD_STEPS (a caller may raise
        there to abandon the load: nothing is kept). ``packing`` is one of PACKING_CHOICES."""
        if packing not in PACKING_CHOICES:
            raise ValueError(f"packing must be one of {PACKING_CHOICES}, not {packing!r}")
        step = on_step or (lambda phase: None)
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        folder = Path(model_dir)
        step(LOAD_STEPS[0])
        # Weights that packing replaces are only read through once more (to pack them): map them, don't copy them.
        mapped = replaced_by_packing if packing != PACK_NEVER and can_pack(torch_dtype, torch_device) else None
        model = load_paligemma(folder, device=torch_device, dtype=torch_dtype, map_weights=mapped)
        step(LOAD_STEPS[1])
        if packing == PACK_AT_LOAD and model.language_model.optimize_for_inference():
            log.debug("decoder weights prepacked for oneDNN")
        tokenizer = TextTokenizer.from_folder(folder, lowercase=False)
        transform = ImageTransform.from_folder(folder)
        return cls(model, tokenizer, transform, model_id=model_id or str(folder), pack_when_idle=packing == PACK_IDLE)

    @property
    def packing_pending(self) -> int:
        """Packing steps not yet done (0 once the decoder is packed, or when it is not packed at all)."""
        return self._packer.pending

    def start_packing(self) -> None:
        """Pack the rest now, in the background, between captions (it also starts after the first caption)."""
        self._packer.start()

    def wait_until_packed(self, timeout: float | None = None) -> bool:
        """Start packing if needed and wait until it is done; False after ``timeout`` or when it ended early."""
        return self._packer.wait(timeout)

    def close(self) -> None:
        """Stop background packing (after the step in progress) and join its thread. The captioner still works."""
        self._packer.close()

    def prepare_image(self, image: ImageSource) -> Image.Image:
        """Decode a path (raising ImageDecodeError with the reason) or normalise a PIL image to RGB."""
        if isinstance(image, Image.Image):
            return to_rgb(image)
        return open_image(image, target_size=self.transform.size)

    def caption(
        self,
        image: ImageSource,
        prompt: str = DEFAULT_PROMPT,
        params: GenerationParams | None = None,
        on_token: Callable[[str], None] | None = None,
        cancel: Cancel = None,
    ) -> CaptionResult:
        """Generate text about ``image`` for ``prompt`` ("caption en", "describe en", "question: ...?", or a free
        start such as "this building is " for pt checkpoints)."""
        params = params or GenerationParams()
        check_prompt(prompt)
        picture = self.prepare_image(image)
        config = self.model.config
        layout = build_prompt(self.tokenizer, prompt, num_image_tokens=config.num_image_tokens,
                              image_token_id=config.image_token_index)
        pixels = self.transform.to_tensor([picture]).to(self.model.device)
        decoder = StreamingDecoder(self.tokenizer)
        stops = set(layout.stop_token_ids)

        def emit(token_id: int) -> None:
            if token_id in stops:
                return
            piece = decoder.push(token_id)
            if piece and on_token is not None:
                on_token(piece)

        should_stop = None
        if isinstance(cancel, threading.Event):
            should_stop = cancel.is_set
        elif cancel is not None:
            should_stop = cancel
        with self._packer.generation(), torch.inference_mode():
            output = generate(self.model, layout.input_ids, pixels, params, stop_token_ids=stops, on_token=emit,
                              should_stop=should_stop)
        self._packer.start()  # the model is idle now: pack what is left, between captions
        return CaptionResult(
            text=decoder.text(),
            prompt=prompt,
            model=self.model_id,
            stop_reason=output.stop_reason,
            token_count=len(output.token_ids),
            token_ids=output.token_ids,
            prefill_s=output.prefill_s,
            decode_s=output.decode_s,
            decode_tokens_per_s=output.decode_tokens_per_s,
        )
