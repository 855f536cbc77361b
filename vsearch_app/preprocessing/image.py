"""Photos in, model pixels out: opening any image file as upright RGB, then SigLIP's resize/rescale/normalize.

``open_image`` is where user files meet Pillow, so it is defensive: every failure becomes an ``ImageDecodeError``
that names the file and says why in words, Pillow's decompression-bomb limit is kept, and every pixel mode a
camera, scanner or editor produces is turned into the RGB a person would see on screen. What the decoders say
while reading (Pillow's warnings, libtiff's messages) goes to the debug log, not the terminal (decoder_messages).

``ImageTransform`` reproduces the checkpoint's image processor (``transformers``' SiglipImageProcessor, PIL
backend): a plain resize to exactly (height, width) with the configured filter on 8-bit pixels, ``x * rescale_factor``
computed in float64 and stored as float32, then ``(x - mean) / std`` in float32.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.JpegImagePlugin import JpegImageFile

from vsearch_app.errors import CheckpointError, ImageDecodeError
from vsearch_app.preprocessing.decoder_messages import decoding

if TYPE_CHECKING:  # decoding must not load torch (seconds of import); only to_tensor needs it
    import torch

log = logging.getLogger(__name__)

ImageSource = str | Path | IO[bytes]

PREPROCESSOR_CONFIG = "preprocessor_config.json"

# A transparent area should look like the paper (or page) it is shown on, and photo viewers and browsers show it on
# white; dropping the alpha channel instead would expose whatever colour the encoder left there, often black.
BACKGROUND = (255, 255, 255)

# The processors that resize a whole image to one fixed size (SigLIP v1, the fixed-resolution SigLIP 2 checkpoints
# and PaliGemma all ship one of these names). Siglip2ImageProcessor is the NaFlex variable-resolution processor,
# which cuts images into a variable number of patches; our model input is a fixed grid, so it is refused.
_SIGLIP_PROCESSORS = frozenset({"SiglipImageProcessor", "SiglipImageProcessorFast", "SiglipImageProcessorPil"})
_KNOWN_KEYS = frozenset({
    "image_processor_type", "feature_extractor_type", "processor_class", "size", "resample", "do_resize",
    "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std", "do_convert_rgb",
})

_plugins_lock = threading.Lock()
_plugins_registered = False


def register_optional_plugins() -> None:
    """Let Pillow open HEIC/HEIF (iPhone photos) when pillow-heif is installed. Idempotent and thread-safe.

    AVIF needs nothing here: Pillow >= 11.2 reads it itself when built with libavif.
    """
    global _plugins_registered
    with _plugins_lock:
        if _plugins_registered:
            return
        _plugins_registered = True
        try:
            import pillow_heif
        except ImportError:
            log.debug("pillow-heif is not installed: HEIC/HEIF files cannot be opened")
            return
        pillow_heif.register_heif_opener()


# --- opening files --------------------------------------------------------------------------------------------------


def open_image(source: ImageSource, target_size: tuple[int, int] | None = None) -> Image.Image:
    """Open ``source`` (a path or a binary file object) as an upright RGB image, fully decoded.

    The first frame of animated or multi-page files is used. With ``target_size`` (height, width), a JPEG much
    larger than it is decoded at 1/2, 1/4 or 1/8 scale, keeping at least the larger target side on both sides
    (see ``_draft``); the decompression-bomb limit then applies to the pixels that reduced decode produces, so a
    200-megapixel panorama opens in bounded memory (see ``_open_large_jpeg``). A path's file is closed on return; a
    file object is left open for its owner. Raises ``ImageDecodeError("<name>: <reason>")`` on any failure, with the
    reason alone in ``.reason``.
    """
    register_optional_plugins()
    name = _display_name(source)
    try:
        with decoding(name), _open(source, target_size) as image:
            if target_size is not None:
                _draft(image, target_size)
            image.load()
            upright = _apply_orientation(image)
            rgb = to_rgb(upright)
            # Never hand out the object tied to the file: leaving the ``with`` closes it.
            return rgb.copy() if rgb is image else rgb
    except ImageDecodeError as exc:
        raise _failed(name, exc.reason) from exc
    except Image.DecompressionBombError as exc:
        raise _failed(name, "image too large (possible decompression bomb)") from exc
    except FileNotFoundError as exc:
        raise _failed(name, "file not found") from exc
    except PermissionError as exc:
        raise _failed(name, "permission denied") from exc
    except IsADirectoryError as exc:
        raise _failed(name, "is a folder, not an image file") from exc
    except UnidentifiedImageError as exc:
        raise _failed(name, "empty file" if _is_empty(source) else "not an image or unsupported format") from exc
    except MemoryError as exc:
        raise _failed(name, "not enough memory to decode this image") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, RuntimeError) as exc:
        # Pillow's decoders (and pillow-heif) report damaged data with any of these; a read error of the disk
        # itself also lands here, with its own words.
        if isinstance(exc, OSError) and exc.errno is not None:
            raise _failed(name, f"could not read the file ({exc.strerror})") from exc
        log.debug("decoding %s failed", name, exc_info=True)
        if _says_unsupported(exc):
            # A valid file in a variant this Pillow cannot decode (a BMP bitfields layout, a codec it was built
            # without): calling it corrupt would send the user looking for damage that is not there.
            raise _failed(name, f"unsupported image variant (Pillow: {_short(exc)})") from exc
        raise _failed(name, "truncated or corrupt image data") from exc


def _failed(name: str, reason: str) -> ImageDecodeError:
    return ImageDecodeError(f"{name}: {reason}", reason=reason)


# Pillow's own words for "valid, but not something I can decode": "Unsupported BMP bitfields layout",
# "Unsupported BMP compression (4)", "decoder jpeg2k not available", "... is not supported".
_UNSUPPORTED = re.compile(r"\bunsupported\b|\bnot supported\b|\bnot available\b", re.IGNORECASE)


def _says_unsupported(exc: BaseException) -> bool:
    return bool(_UNSUPPORTED.search(str(exc)))


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_empty(source: ImageSource) -> bool:
    """True for a zero-byte file or stream (Pillow calls those unidentifiable, which sounds like a wrong format)."""
    try:
        if isinstance(source, (str, Path)):
            return os.stat(source).st_size == 0
        position = source.tell()
        size = source.seek(0, os.SEEK_END)
        source.seek(position)
        return size == 0
    except (OSError, ValueError, AttributeError):
        return False


def _display_name(source: ImageSource) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    name = getattr(source, "name", None)
    return str(name) if isinstance(name, (str, Path)) else "<image stream>"


def _open(source: ImageSource, target_size: tuple[int, int] | None = None) -> Image.Image:
    # Image.open checks the size against Image.MAX_IMAGE_PIXELS (which we never change) before decoding anything.
    try:
        return Image.open(source)
    except Image.DecompressionBombError:
        large = _open_large_jpeg(source, target_size) if target_size is not None else None
        if large is None:
            raise
        return large


_JPEG_MAGIC = b"\xff\xd8\xff"


def _open_large_jpeg(source: ImageSource, target_size: tuple[int, int]) -> Image.Image | None:
    """A JPEG over Pillow's pixel limit, opened without ``Image.open``'s size check and drafted to ``target_size``;
    None when ``source`` is not a JPEG. Raises DecompressionBombError when even the reduced decode is too large.

    The limit exists to bound the memory a decode takes. libjpeg's scaled decode never holds the full-size image
    (it reduces each 8x8 block as it reads), so for a JPEG the pixels that count are the drafted ones: a 200 MP
    panorama decodes at 1/8 scale into about 3 MP.
    """
    if isinstance(source, (str, Path)):
        with open(source, "rb") as head:
            magic = head.read(3)
    else:
        position = source.tell()
        magic = source.read(3)
        source.seek(position)
    if magic != _JPEG_MAGIC:
        return None
    image = JpegImageFile(source)
    try:
        _draft(image, target_size)
        width, height = image.size
        if width * height > 2 * (Image.MAX_IMAGE_PIXELS or 0) > 0:
            raise Image.DecompressionBombError(f"{width}x{height} pixels even at reduced scale")
    except BaseException:
        image.close()
        raise
    return image


def _draft(image: Image.Image, target_size: tuple[int, int]) -> None:
    """Ask libjpeg to decode at a reduced scale (1/2, 1/4 or 1/8) when the JPEG is at least twice as large as needed.

    libjpeg scales in the DCT domain, averaging each block, which is itself a good anti-aliasing filter, so the
    decoded image only has to stay at least as large as the model input. Measured on 12 MP photos at 224 px: model
    pixels differ from a full decode by 0.0024 mean absolute (normalised units, about 0.3 grey levels) at 1/8 scale,
    0.0015 at 1/4, while 1/8 decodes about 1.5x faster than 1/4 and 3x faster than full size (shared 2-core CPU).
    The draft happens before the EXIF rotation, when we do not yet know which side becomes the height, so the bound
    is square: both decoded sides stay >= max(target). (MPO, the multi-picture JPEG of some cameras, is a JPEG.)
    """
    if not isinstance(image, JpegImageFile):
        return
    bound = max(target_size)
    if min(image.size) < 2 * bound:  # libjpeg only scales by 1/2, 1/4, 1/8: nothing to gain below 2x
        return
    before = image.size
    image.draft("RGB", (bound, bound))
    log.debug("draft decode %s -> %s", before, image.size)


# EXIF Orientation: 1 upright, 2-4 mirrored or turned half way, 5-8 stored sideways (a quarter turn, maybe mirrored).
ORIENTATION_TAG = 0x0112
_SIDEWAYS = (5, 6, 7, 8)


def upright_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) of ``image`` as a photo viewer shows it (EXIF orientation applied), from the header alone:
    the pixels need not be decoded. Broken EXIF counts as upright, as in ``open_image``."""
    width, height = image.size
    try:
        orientation = image.getexif().get(ORIENTATION_TAG)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, struct.error):
        return width, height
    return (height, width) if orientation in _SIDEWAYS else (width, height)


def _apply_orientation(image: Image.Image) -> Image.Image:
    """Rotate/flip as the EXIF orientation tag says, so the pixels are upright as a photo viewer shows them."""
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, struct.error):
        # Broken EXIF blocks are common (edited or stripped files); the pixels are still good, so use them as stored.
        log.debug("unreadable EXIF orientation; using the image as stored", exc_info=True)
        return image


# --- pixel modes ----------------------------------------------------------------------------------------------------


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB as it would be displayed. Returns ``image`` itself when already RGB.

    Raises ``ImageDecodeError`` for a mode that has no sensible RGB rendering.
    """
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        return _integer_to_rgb(image)  # a colour key on 16-bit grey (rare) is ignored
    if mode == "F":
        return _float_to_rgb(image)
    if image.has_transparency_data:  # an alpha channel, an RGBA palette, or a transparent palette entry/colour key
        return _on_background(image)
    if mode == "RGB":
        return image
    if mode == "LAB":
        return _lab_to_rgb(image)
    try:
        # 1, L, P (opaque), CMYK, YCbCr, HSV, RGBX: Pillow's own conversions are right for these. A CMYK file with
        # an ICC profile would ideally go through it; the naive conversion is close enough to embed.
        return image.convert("RGB")
    except ValueError as exc:
        raise ImageDecodeError(f"unsupported pixel mode {mode!r}") from exc


def _on_background(image: Image.Image) -> Image.Image:
    """Composite an image with an alpha channel (or a transparent palette entry/colour key) onto BACKGROUND."""
    if image.mode == "La":  # premultiplied; Pillow only un-premultiplies it into LA
        image = image.convert("LA")
    rgba = image.convert("RGBA")  # P + tRNS, L/RGB + colour key, LA, PA, RGBa all have this conversion
    background = Image.new("RGB", rgba.size, BACKGROUND)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _integer_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit (I;16*) and 32-bit (I) greyscale to 8-bit by their full range; ``convert("RGB")`` would clip at 255.

    I;16 is a 16-bit container (16-bit PNG, TIFF, PGM), so 65535 is white. Mode I holds 16-bit data too (Pillow
    opens 16-bit PGM and older 16-bit PNG so) and is read the same way when its values fit; genuinely wider data
    has no declared white point, so its own range is stretched to 0..255.
    """
    raw = np.asarray(image)
    if image.mode.startswith("I;16") or (raw.size and raw.min() >= 0 and raw.max() <= 65535):
        return _sixteen_bit_to_rgb(raw)
    values = raw.astype(np.float64)
    return _grey_to_rgb(values, float(values.min()), float(values.max()))


_ROWS_PER_STEP = 512


def _sixteen_bit_to_rgb(raw: np.ndarray) -> Image.Image:
    """0..65535 grey to 8-bit, a band of rows at a time: a float64 copy of a whole 16-bit image would take 1.4 GB at
    Pillow's pixel limit. v * 255 / 65535 is v / 257, and no integer v lies half way between two steps, so integer
    rounding gives exactly what float rounding would."""
    grey = np.empty(raw.shape, np.uint8)
    for top in range(0, raw.shape[0], _ROWS_PER_STEP):
        band = raw[top:top + _ROWS_PER_STEP].astype(np.uint32)
        grey[top:top + _ROWS_PER_STEP] = (band + 128) // 257
    return Image.fromarray(grey, mode="L").convert("RGB")


def _float_to_rgb(image: Image.Image) -> Image.Image:
    """32-bit float greyscale: 0..1 (the usual convention) or 0..255 as they are, anything else stretched."""
    values = np.nan_to_num(np.asarray(image).astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if low >= 0.0 and high <= 1.0:
        low, high = 0.0, 1.0
    elif low >= 0.0 and high <= 255.0:
        low, high = 0.0, 255.0
    return _grey_to_rgb(values, low, high)


def _grey_to_rgb(values: np.ndarray, low: float, high: float) -> Image.Image:
    scale = 255.0 / (high - low) if high > low else 0.0
    grey = np.clip(np.rint((values - low) * scale), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def _lab_to_rgb(image: Image.Image) -> Image.Image:
    # Pillow's direct LAB -> RGB conversion just relabels the channels (black comes out blue); a colour-managed
    # transform gives the real colours.
    try:
        from PIL import ImageCms
    except ImportError as exc:
        raise ImageDecodeError("unsupported pixel mode 'LAB' (Pillow was built without littlecms)") from exc
    transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
    return ImageCms.applyTransform(image, transform)


# --- model input ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageTransform:
    """The checkpoint's image preprocessing. Defaults are SiglipImageProcessor's own defaults."""

    size: tuple[int, int] = (224, 224)  # (height, width)
    resample: Image.Resampling = Image.Resampling.BICUBIC
    do_resize: bool = True
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    @classmethod
    def from_folder(cls, folder: str | Path) -> ImageTransform:
        path = Path(folder) / PREPROCESSOR_CONFIG
        if not path.is_file():
            raise CheckpointError(
                f"{path}: missing; a SigLIP model folder needs the checkpoint's {PREPROCESSOR_CONFIG} "
                "(download the model again)"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: unreadable ({exc}); download the model again") from exc
        if not isinstance(data, dict):
            raise CheckpointError(f"{path}: expected a JSON object; download the model again")
        try:
            return cls.from_dict(data)
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from exc

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageTransform:
        """Read a Hugging Face ``preprocessor_config.json`` of a SigLIP image processor; missing keys take the
        processor's defaults, keys that do not concern this processor are ignored."""
        _check_processor_type(d)
        for key in sorted(set(d) - _KNOWN_KEYS):
            if key.startswith("do_") and d[key]:
                log.warning("preprocessor config enables %s, which SigLIP's image processor does not do; ignored", key)
            else:
                log.debug("preprocessor config key %r ignored", key)
        defaults = cls()
        return cls(
            size=_read_size(d.get("size"), defaults.size),
            resample=_read_resample(d.get("resample"), defaults.resample),
            do_resize=_read_bool(d, "do_resize", defaults.do_resize),
            do_rescale=_read_bool(d, "do_rescale", defaults.do_rescale),
            rescale_factor=_read_float(d, "rescale_factor", defaults.rescale_factor),
            do_normalize=_read_bool(d, "do_normalize", defaults.do_normalize),
            image_mean=_read_triple(d, "image_mean", defaults.image_mean),
            image_std=_read_triple(d, "image_std", defaults.image_std),
        )

    def to_array(self, image: Image.Image) -> np.ndarray:
        """One image to float32 [3, H, W] (thread-safe; the decode pool calls it)."""
        image = to_rgb(image)
        height, width = self.size
        if self.do_resize and image.size != (width, height):
            # A plain resize to the exact model size, aspect ratio not kept, on 8-bit pixels: as SigLIP was trained.
            image = image.resize((width, height), resample=self.resample)
        pixels: np.ndarray = np.asarray(image)
        if self.do_rescale:
            # float64 first and float32 after, as transformers does, so the values agree to the last bit.
            pixels = (pixels.astype(np.float64) * self.rescale_factor).astype(np.float32)
        else:
            pixels = pixels.astype(np.float32)
        if self.do_normalize:
            pixels = (pixels - np.asarray(self.image_mean, np.float32)) / np.asarray(self.image_std, np.float32)
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))

    def to_tensor(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Images to a float32 batch [B, 3, H, W]."""
        import torch

        if not images:
            height, width = self.size
            return torch.zeros((0, 3, height, width), dtype=torch.float32)
        arrays = [self.to_array(image) for image in images]
        if len({a.shape for a in arrays}) > 1:
            raise ValueError("images of different sizes cannot form one batch without do_resize")
        return torch.from_numpy(np.stack(arrays))


def _check_processor_type(d: dict[str, Any]) -> None:
    kind = d.get("image_processor_type") or d.get("feature_extractor_type")
    if kind is None:
        log.debug("preprocessor config names no processor type; reading it as SigLIP's")
        return
    if kind in _SIGLIP_PROCESSORS:
        return
    if isinstance(kind, str) and kind.startswith("Siglip2"):
        raise CheckpointError(
            f"uses {kind}, the variable-resolution (NaFlex) SigLIP 2 preprocessing, which VSearch does not support; "
            "use a fixed-resolution checkpoint such as google/siglip2-base-patch16-224"
        )
    raise CheckpointError(f"uses {kind}, not a SigLIP image processor; VSearch needs a SigLIP checkpoint")


def _read_size(value: Any, default: tuple[int, int]) -> tuple[int, int]:
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return (value, value)
    if isinstance(value, dict):
        height, width = value.get("height"), value.get("width")
        if _positive_int(height) and _positive_int(width):
            return (height, width)
        # SigLIP's position embeddings form a fixed square grid, so a shortest edge can only mean a square input.
        edge = value.get("shortest_edge")
        if _positive_int(edge) and height is None and width is None:
            return (edge, edge)
    raise CheckpointError(f"size {value!r} is not {{'height': H, 'width': W}} or {{'shortest_edge': S}}")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _read_resample(value: Any, default: Image.Resampling) -> Image.Resampling:
    if value is None:
        return default
    try:
        return Image.Resampling(value)
    except ValueError as exc:
        raise CheckpointError(f"resample {value!r} is not a Pillow resampling filter (0-5)") from exc


def _read_bool(d: dict[str, Any], key: str, default: bool) -> bool:
    value = d.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise CheckpointError(f"{key} {value!r} is not true or false")
    return value


def _read_float(d: dict[str, Any], key: str, default: float) -> float:
    value = d.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CheckpointError(f"{key} {value!r} is not a number")
    return float(value)


def _read_triple(d: dict[str, Any], key: str, default: tuple[float, float, float]) -> tuple[float, float, float]:
    value = d.get(key)
    if value is None:
        return default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * 3
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise CheckpointError(f"{key} {value!r} is not three numbers (one per RGB channel)")
    if key == "image_std" and any(v == 0 for v in value):
        raise CheckpointError(f"{key} {value!r} has a zero; it divides the pixels")
    return (float(value[0]), float(value[1]), float(value[2]))
