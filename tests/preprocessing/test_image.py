"""Opening user images (modes, EXIF, animation, draft decoding, errors) and SigLIP pixel preprocessing parity."""

from __future__ import annotations

import builtins
import io
import json
import logging
import os
import struct

import numpy as np
import pytest
import torch
from PIL import Image, features

from vsearch_app.errors import CheckpointError, ImageDecodeError
from vsearch_app.preprocessing.image import ORIENTATION_TAG, ImageTransform, open_image, to_rgb, upright_size

DEFAULT_MAX_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)  # Pillow's own default


def _pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    assert image.mode == "RGB"
    return image.getpixel(xy)


def _close(actual, expected, tol: int = 0) -> bool:
    return all(abs(int(a) - int(e)) <= tol for a, e in zip(actual, expected, strict=True))


def _scene(width: int = 64, height: int = 48) -> Image.Image:
    """An asymmetric picture: any flip or rotation of it differs from it a lot."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // (width - 1), y * 255 // (height - 1), np.zeros_like(x)], axis=-1)
    pixels[: height // 3, : width // 4] = (255, 255, 255)  # a white block in the top-left corner
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


# --- pixel modes ----------------------------------------------------------------------------------------------------


def test_the_module_keeps_pillows_decompression_bomb_limit():
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_PIXELS


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_transparency_becomes_white(tmp_path, fmt):
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 200, 30, 40] + [0] * 762)
    image.putpixel((0, 0), 0)
    path = tmp_path / f"palette.{fmt.lower()}"
    image.save(path, fmt, transparency=0)
    rgb = open_image(path)
    assert _pixel(rgb, (0, 0)) == (255, 255, 255)  # black under the transparent entry, but shown as paper
    assert _pixel(rgb, (2, 2)) == (200, 30, 40)


def test_rgba_is_composited_on_white(tmp_path):
    image = Image.new("RGBA", (3, 1))
    image.putdata([(255, 0, 0, 0), (0, 0, 255, 255), (0, 0, 0, 128)])
    image.save(tmp_path / "a.png")
    rgb = open_image(tmp_path / "a.png")
    assert _pixel(rgb, (0, 0)) == (255, 255, 255)
    assert _pixel(rgb, (1, 0)) == (0, 0, 255)
    assert _close(_pixel(rgb, (2, 0)), (127, 127, 127), tol=1)


def test_la_is_composited_on_white(tmp_path):
    image = Image.new("LA", (2, 1))
    image.putdata([(0, 0), (50, 255)])
    image.save(tmp_path / "la.png")
    rgb = open_image(tmp_path / "la.png")
    assert _pixel(rgb, (0, 0)) == (255, 255, 255)
    assert _pixel(rgb, (1, 0)) == (50, 50, 50)


def test_greyscale_colour_key_is_transparent(tmp_path):
    image = Image.new("L", (2, 1), 9)
    image.putpixel((1, 0), 100)
    image.save(tmp_path / "key.png", transparency=9)
    rgb = open_image(tmp_path / "key.png")
    assert _pixel(rgb, (0, 0)) == (255, 255, 255)
    assert _pixel(rgb, (1, 0)) == (100, 100, 100)


@pytest.mark.parametrize("mode", ["RGBa", "La", "PA"])
def test_premultiplied_and_palette_alpha_modes(mode):
    image = Image.new(mode, (1, 1))  # all zero: fully transparent
    assert to_rgb(image).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_gradient_keeps_its_range(tmp_path, fmt):
    ramp = np.linspace(0, 65535, 256).round().astype(np.uint16)
    image = Image.fromarray(np.tile(ramp, (4, 1)))
    assert image.mode == "I;16"
    path = tmp_path / f"g16.{fmt.lower()}"
    image.save(path, fmt)
    grey = np.asarray(open_image(path))[0, :, 0].astype(int)
    assert image.convert("RGB").getpixel((128, 0))[0] == 255  # what a naive conversion does: saturated
    assert grey[0] == 0 and grey[-1] == 255
    assert abs(grey[128] - 128) <= 1
    assert np.all(np.diff(grey) >= 0) and len(set(grey.tolist())) > 200


def test_16_bit_big_endian_and_32_bit_integer_modes():
    ramp = np.linspace(0, 65535, 256).round().astype(np.uint16)
    big = Image.frombytes("I;16B", (256, 1), ramp.astype(">u2").tobytes())
    assert np.asarray(to_rgb(big))[0, [0, 128, 255], 0].tolist() == [0, 128, 255]
    as_i = Image.fromarray(ramp.astype(np.int32)[None, :])  # Pillow opens 16-bit PGM this way
    assert as_i.mode == "I"
    assert np.asarray(to_rgb(as_i))[0, [0, 128, 255], 0].tolist() == [0, 128, 255]
    wide = Image.fromarray(np.array([[-1000, 0, 1_000_000]], dtype=np.int32))
    assert np.asarray(to_rgb(wide))[0, :, 0].tolist() == [0, 0, 255]


def test_16_bit_pgm(tmp_path):
    ramp = np.linspace(0, 65535, 256).round().astype(np.uint16)
    Image.fromarray(np.tile(ramp, (2, 1))).save(tmp_path / "g.pgm")
    grey = np.asarray(open_image(tmp_path / "g.pgm"))[0, :, 0]
    assert grey[0] == 0 and grey[-1] == 255 and abs(int(grey[128]) - 128) <= 1


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk_cyan_is_cyan(tmp_path, fmt):
    path = tmp_path / f"cmyk.{fmt.lower()}"
    Image.new("CMYK", (16, 16), (255, 0, 0, 0)).save(path, fmt)
    assert _close(_pixel(open_image(path), (8, 8)), (0, 255, 255), tol=4)


def test_one_bit(tmp_path):
    image = Image.new("1", (2, 1))
    image.putpixel((1, 0), 1)
    image.save(tmp_path / "bw.png")
    rgb = open_image(tmp_path / "bw.png")
    assert (_pixel(rgb, (0, 0)), _pixel(rgb, (1, 0))) == ((0, 0, 0), (255, 255, 255))


def test_float_image(tmp_path):
    Image.fromarray(np.linspace(0, 1, 256, dtype=np.float32)[None, :]).save(tmp_path / "f.tiff")
    grey = np.asarray(open_image(tmp_path / "f.tiff"))[0, :, 0]
    assert grey.tolist() == list(range(256))
    stretched = to_rgb(Image.fromarray(np.array([[-2.0, 0.0, 6.0]], dtype=np.float32)))
    assert np.asarray(stretched)[0, :, 0].tolist() == [0, 64, 255]


def test_plain_greyscale(tmp_path):
    Image.new("L", (3, 3), 77).save(tmp_path / "l.png")
    assert _pixel(open_image(tmp_path / "l.png"), (1, 1)) == (77, 77, 77)


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("YCbCr", (76, 85, 255), (254, 0, 0)),  # red in JPEG's YCbCr
        ("HSV", (0, 255, 255), (255, 0, 0)),
        ("LAB", (255, 128, 128), (255, 255, 255)),  # L=100, a=b=0: white (Pillow's direct conversion gives cyan)
        ("LAB", (0, 128, 128), (0, 0, 0)),
        ("RGBX", (1, 2, 3, 0), (1, 2, 3)),
    ],
)
def test_colour_spaces(mode, value, expected):
    assert _close(to_rgb(Image.new(mode, (1, 1), value)).getpixel((0, 0)), expected, tol=2)


# --- frames and orientation ----------------------------------------------------------------------------------------


def _frames() -> list[Image.Image]:
    return [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG", "TIFF"])
def test_animated_and_multi_page_files_give_the_first_frame(tmp_path, fmt):
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    first, *rest = _frames()
    path = tmp_path / f"anim.{fmt.lower()}"
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    first.save(path, fmt, save_all=True, append_images=rest, duration=100, **kwargs)
    with Image.open(path) as check:
        assert getattr(check, "n_frames", 1) == 3  # the file really is animated
    assert _close(_pixel(open_image(path), (4, 4)), (255, 0, 0), tol=2)


# For each EXIF orientation (TIFF/EXIF spec), the transpose that turns the upright scene into the stored pixels.
_STORED_AS = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,  # tag 6 means "rotate 90 degrees clockwise to display"
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize(("fmt", "tol"), [("PNG", 0), ("JPEG", 6), ("TIFF", 0)])
@pytest.mark.parametrize("orientation", sorted(_STORED_AS))
def test_exif_orientation_gives_the_upright_scene(tmp_path, orientation, fmt, tol):
    upright = _scene()
    op = _STORED_AS[orientation]
    stored = upright if op is None else upright.transpose(op)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.{fmt.lower()}"
    stored.save(path, fmt, exif=exif, **({"quality": 95, "subsampling": 0} if fmt == "JPEG" else {}))
    opened = open_image(path)
    assert opened.size == upright.size
    diff = np.abs(np.asarray(opened, np.int16) - np.asarray(upright, np.int16))
    assert diff.mean() <= max(tol / 3, 0) and np.percentile(diff, 99) <= 4 * tol


def test_broken_exif_does_not_lose_the_picture(tmp_path):
    path = tmp_path / "bad_exif.jpg"
    Image.new("RGB", (8, 8), (10, 200, 10)).save(path, exif=b"Exif\x00\x00garbage-not-tiff")
    assert _close(_pixel(open_image(path), (4, 4)), (10, 200, 10), tol=4)


# --- draft decoding -------------------------------------------------------------------------------------------------


def _big_jpeg(path, size=(4000, 3000), orientation: int | None = None) -> None:
    image = _scene(*size)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(path, quality=85, exif=exif)


def test_large_jpeg_is_decoded_at_reduced_scale_but_not_too_small(tmp_path):
    path = tmp_path / "big.jpg"
    _big_jpeg(path)
    full = open_image(path)
    assert full.size == (4000, 3000)
    drafted = open_image(path, target_size=(224, 224))
    assert drafted.size[0] < 4000 and drafted.size[1] < 3000
    assert min(drafted.size) >= 224
    # Same picture: compare both at model size.
    a = np.asarray(full.resize((224, 224), Image.Resampling.BICUBIC), np.int16)
    b = np.asarray(drafted.resize((224, 224), Image.Resampling.BICUBIC), np.int16)
    assert np.abs(a - b).mean() < 2.0


def test_draft_bound_holds_for_rotated_photos(tmp_path):
    path = tmp_path / "portrait.jpg"
    _big_jpeg(path, orientation=6)
    image = open_image(path, target_size=(224, 224))
    assert image.size[0] < image.size[1]  # the tag turned it to portrait after the reduced decode
    assert min(image.size) >= 224 and max(image.size) < 4000


def test_non_square_target_bounds_by_the_larger_side(tmp_path):
    path = tmp_path / "big.jpg"
    _big_jpeg(path)
    image = open_image(path, target_size=(224, 384))
    assert min(image.size) >= 384 and image.size != (4000, 3000)


@pytest.mark.parametrize("size", [(600, 400), (440, 800)])
def test_small_jpeg_is_not_drafted(tmp_path, size):
    path = tmp_path / "small.jpg"
    _scene(*size).save(path, quality=90)
    assert open_image(path, target_size=(224, 224)).size == size


def test_draft_is_only_for_jpeg(tmp_path):
    path = tmp_path / "big.png"
    _scene(2000, 1800).save(path, compress_level=1)
    assert open_image(path, target_size=(224, 224)).size == (2000, 1800)


# --- errors ---------------------------------------------------------------------------------------------------------


def _reason_of(path_or_file) -> str:
    with pytest.raises(ImageDecodeError) as caught:
        open_image(path_or_file)
    message, reason = str(caught.value), caught.value.reason
    assert message.endswith(f": {reason}") and not reason.startswith(str(getattr(path_or_file, "name", path_or_file)))
    return message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jpg"
    assert _reason_of(path) == f"{path}: file not found"


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("shopping list: milk, eggs\n" * 20)
    assert _reason_of(path) == f"{path}: not an image or unsupported format"


def _bitfields_bmp(masks=(0x3FF00000, 0x000FFC00, 0x000003FF)) -> bytes:
    """A valid 32-bit BI_BITFIELDS BMP with 10-bit channels (like the BMP suite's g/rgb32bf.bmp): Pillow reads only a
    few fixed mask layouts and refuses this one."""
    width = height = 2
    pixels = b"\x00\x00\x00\x00" * width * height
    offset = 14 + 40 + 12
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 32, 3, len(pixels), 2835, 2835, 0, 0)
    file_header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    return file_header + header + struct.pack("<III", *masks) + pixels


def test_valid_image_in_a_variant_pillow_cannot_decode_is_not_called_corrupt(tmp_path):
    path = tmp_path / "rgb32bf.bmp"
    path.write_bytes(_bitfields_bmp())
    assert _reason_of(path) == f"{path}: unsupported image variant (Pillow: Unsupported BMP bitfields layout)"
    # The same header with a mask layout Pillow knows decodes fine: the words above are about the variant.
    path.write_bytes(_bitfields_bmp((0xFF0000, 0xFF00, 0xFF)))
    assert open_image(path).size == (2, 2)


def test_empty_file(tmp_path):
    path = tmp_path / "zero.jpg"
    path.write_bytes(b"")
    assert _reason_of(path) == f"{path}: empty file"
    assert _reason_of(io.BytesIO(b"")) == "<image stream>: empty file"


def test_truncated_jpeg(tmp_path):
    rng = np.random.default_rng(0)
    data = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(data, "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data.getvalue()[: len(data.getvalue()) * 6 // 10])
    assert _reason_of(path) == f"{path}: truncated or corrupt image data"


def test_decompression_bomb(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("RGB", (100, 100)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 pixels is > 2x the limit: Pillow's error
    assert _reason_of(path) == f"{path}: image too large (possible decompression bomb)"


def test_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(path)
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):
        # chmod cannot lock out root (CI often runs as root), so refuse the way the OS would.
        if os.fspath(file) == os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    assert _reason_of(path) == f"{path}: permission denied"


def test_folder_instead_of_file(tmp_path):
    assert _reason_of(tmp_path).startswith(f"{tmp_path}: ")


def test_file_objects_are_read_and_left_open_for_their_owner(tmp_path):
    path = tmp_path / "x.png"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(path)
    with open(path, "rb") as handle:
        assert _pixel(open_image(handle), (0, 0)) == (1, 2, 3)
        assert not handle.closed
    assert _reason_of(io.BytesIO(b"not an image")) == "<image stream>: not an image or unsupported format"


@pytest.mark.parametrize("name", ["anim.gif", "plain.png", "photo.jpg"])
def test_files_are_closed_and_the_image_stays_usable(tmp_path, monkeypatch, name):
    path = tmp_path / name
    first, *rest = _frames()
    first.save(path, save_all=True, append_images=rest) if name.endswith(".gif") else first.save(path)
    opened = []
    real_open = builtins.open

    def tracking_open(*args, **kwargs):
        handle = real_open(*args, **kwargs)
        opened.append(handle)
        return handle

    monkeypatch.setattr(builtins, "open", tracking_open)
    image = open_image(path)
    monkeypatch.undo()
    assert opened and all(handle.closed for handle in opened)
    assert _close(image.getpixel((4, 4)), (255, 0, 0), tol=2)  # pixels live on without the file
    assert image.mode == "RGB" and image.size == (8, 8)


# --- other formats ---------------------------------------------------------------------------------------------------


def test_heic_roundtrip(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    path = tmp_path / "photo.heic"
    try:
        pillow_heif.from_pillow(Image.new("RGB", (64, 48), (200, 30, 40))).save(path, quality=95)
    except Exception as exc:  # a build without an HEVC encoder can still decode
        pytest.skip(f"pillow-heif cannot encode here: {exc}")
    image = open_image(path)
    assert image.size == (64, 48)
    assert _close(_pixel(image, (10, 10)), (200, 30, 40), tol=6)


@pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
def test_avif_roundtrip(tmp_path):
    path = tmp_path / "photo.avif"
    Image.new("RGB", (64, 48), (200, 30, 40)).save(path, quality=95)
    assert _close(_pixel(open_image(path), (10, 10)), (200, 30, 40), tol=6)


# --- ImageTransform --------------------------------------------------------------------------------------------------


def _siglip_config(**overrides) -> dict:
    config = {
        "do_convert_rgb": None, "do_normalize": True, "do_rescale": True, "do_resize": True,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "image_processor_type": "SiglipImageProcessor",
        "processor_class": "SiglipProcessor", "resample": 3, "rescale_factor": 1 / 255,
        "size": {"height": 224, "width": 224},
    }
    config.update(overrides)
    return config


def test_from_dict_reads_a_siglip_config():
    transform = ImageTransform.from_dict(
        _siglip_config(resample=2, size={"height": 256, "width": 192}, image_mean=[0.1, 0.2, 0.3], do_normalize=False)
    )
    assert transform.size == (256, 192)
    assert transform.resample == Image.Resampling.BILINEAR
    assert transform.image_mean == (0.1, 0.2, 0.3)
    assert transform.do_normalize is False and transform.do_rescale is True
    assert ImageTransform.from_dict(_siglip_config(size={"shortest_edge": 384})).size == (384, 384)


def test_from_dict_defaults_and_unknown_keys(caplog):
    with caplog.at_level(logging.DEBUG, logger="vsearch_app.preprocessing.image"):
        transform = ImageTransform.from_dict({"image_processor_type": "SiglipImageProcessor", "image_seq_length": 256})
    assert transform == ImageTransform()
    assert "image_seq_length" in caplog.text


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"image_processor_type": "CLIPImageProcessor"}, "not a SigLIP image processor"),
        ({"image_processor_type": "Siglip2ImageProcessor"}, "NaFlex"),
        ({"size": {"longest_edge": 5}}, "size"),
        ({"resample": 17}, "resample"),
        ({"image_std": [0.5, 0.5]}, "image_std"),
        ({"do_resize": "yes"}, "do_resize"),
    ],
)
def test_from_dict_refuses_what_it_cannot_reproduce(overrides, words):
    with pytest.raises(CheckpointError, match=words):
        ImageTransform.from_dict(_siglip_config(**overrides))


def test_from_folder(tmp_path):
    with pytest.raises(CheckpointError, match="preprocessor_config.json"):
        ImageTransform.from_folder(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(_siglip_config(size={"height": 32, "width": 32})))
    assert ImageTransform.from_folder(tmp_path).size == (32, 32)
    (tmp_path / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="preprocessor_config.json"):
        ImageTransform.from_folder(tmp_path)


def _random_images(seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    sizes = [(70, 50), (300, 200), (16, 16), (224, 224), (513, 97)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB") for w, h in sizes]


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # SigLIP v1 style: bicubic 224
        {"resample": 2, "size": {"height": 32, "width": 48}},  # SigLIP 2 style bilinear, non-square
        {"image_mean": [0.48, 0.45, 0.4], "image_std": [0.26, 0.26, 0.27], "resample": 1},
        {"do_normalize": False, "rescale_factor": 0.5, "resample": 0},
    ],
)
def test_to_tensor_matches_transformers(tmp_path, overrides):
    from transformers import AutoImageProcessor

    (tmp_path / "preprocessor_config.json").write_text(json.dumps(_siglip_config(**overrides)))
    reference = AutoImageProcessor.from_pretrained(tmp_path)
    # torchvision is not installed, so transformers falls back to its PIL backend (the one we reproduce).
    assert type(reference).__name__ == "SiglipImageProcessorPil"
    images = _random_images(len(overrides))
    expected = reference(images=images, return_tensors="pt")["pixel_values"]
    ours = ImageTransform.from_folder(tmp_path).to_tensor(images)
    assert ours.dtype == torch.float32 and ours.shape == expected.shape
    assert (ours - expected).abs().max().item() <= 1e-6


def test_to_array_is_one_row_of_to_tensor_and_converts_modes():
    transform = ImageTransform(size=(8, 8))
    image = _random_images(3)[1]
    assert np.array_equal(transform.to_array(image), transform.to_tensor([image])[0].numpy())
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert np.allclose(transform.to_array(rgba), 1.0)  # transparent -> white -> (1 - 0.5) / 0.5
    assert transform.to_tensor([]).shape == (0, 3, 8, 8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_size_from_the_header_matches_the_decoded_photo(tmp_path, orientation):
    path = tmp_path / f"o{orientation}.jpg"
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    Image.new("RGB", (40, 20), (200, 10, 10)).save(path, exif=exif)
    with Image.open(path) as lazy:  # header only: the indexer reads the size this way
        assert upright_size(lazy) == open_image(path).size
