"""What a photo's EXIF says about it: when it was taken (and in which UTC offset), with which camera and lens, whether
it carries a GPS position, and its upright pixel size. Read from the file's header only (Pillow opens lazily), so it
costs about a millisecond per photo and never decodes pixels.

The capture time is EXIF DateTimeOriginal (local time as the camera wrote it) with OffsetTimeOriginal when present;
without one it is the file's modification time in this computer's local time, and ``captured_source`` says which
("exif" or "mtime"), so the filters and the app can tell a guess from a record.

Camera names are normalised for people and for grouping: makers write "NIKON CORPORATION" / "NIKON D750" or "Google" /
"Pixel 7"; we keep a short make ("Nikon", "Google") and the model without the make repeated ("D750", "Pixel 7"), so
``camera_display`` gives "Nikon D750" and "Google Pixel 7" and two spellings of one maker count as one camera.

``META_VERSION`` is written to ``files.meta_version`` with the facts: a row below it is read again by the backfill
(core/library/metadata_backfill.py). Bump it when this reader learns something new.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from PIL import Image

from vsearch_app.preprocessing.decoder_messages import decoding
from vsearch_app.preprocessing.image import register_optional_plugins, upright_size

log = logging.getLogger(__name__)

META_VERSION = 1

_MAKE, _MODEL = 0x010F, 0x0110
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL, _LENS_MODEL = 0x9003, 0x9011, 0xA434

# Words makers append to their name that nobody says ("NIKON CORPORATION", "OLYMPUS IMAGING CORP.").
_MAKER_NOISE = re.compile(
    r"[\s,]+(corporation|corp\.?|co\.?,?\s*ltd\.?|ltd\.?|inc\.?|imaging|optical|electronics|company|"
    r"digital\s+solutions|camera)\b\.?",
    re.IGNORECASE,
)
_OFFSET = re.compile(r"^[+-]\d{2}:\d{2}$")


@dataclass(frozen=True)
class PhotoMetadata:
    captured_at: str | None  # ISO 8601 local time, "2019-06-01T14:22:01"
    captured_source: str | None  # "exif" or "mtime"
    captured_offset: str | None  # "+02:00" (EXIF OffsetTimeOriginal), None when unknown
    camera_make: str | None  # "Google"
    camera_model: str | None  # "Pixel 7" (the make not repeated)
    lens: str | None
    has_gps: bool
    width: int | None  # upright (after the EXIF orientation)
    height: int | None


def read_metadata(path: str, mtime_ns: int | None = None) -> PhotoMetadata:
    """The facts of the photo at ``path``; what cannot be read is None (a file that is not an image gives only the
    mtime). ``mtime_ns`` is the modification time the catalog recorded, used when EXIF has no capture time."""
    fallback = mtime_iso(mtime_ns)
    source = "mtime" if fallback else None
    try:
        register_optional_plugins()
        with decoding(path), Image.open(path) as image:  # lazy: reads the header, not the pixels
            width, height = upright_size(image)
            exif = image.getexif()
            sub = exif.get_ifd(_EXIF_IFD)
            captured = exif_datetime(sub.get(_DATETIME_ORIGINAL))
            offset = _text(sub.get(_OFFSET_TIME_ORIGINAL))
            make, model = normalise_camera(_text(exif.get(_MAKE)), _text(exif.get(_MODEL)))
            lens = _text(sub.get(_LENS_MODEL))
            has_gps = bool(exif.get_ifd(_GPS_IFD))
    except Exception as exc:  # facts are optional; the decoder reports real damage when it embeds
        log.debug("no photo metadata for %s: %s", path, exc)
        return PhotoMetadata(fallback, source, None, None, None, None, False, None, None)
    if captured is None:
        captured, offset = fallback, None
    else:
        source = "exif"
        offset = offset if offset and _OFFSET.match(offset) else None
    return PhotoMetadata(captured, source, offset, make, model, lens, has_gps, width, height)


def mtime_iso(mtime_ns: int | None) -> str | None:
    """A modification time as ISO 8601 local time (what a camera's clock would have said here)."""
    if mtime_ns is None:
        return None
    try:
        return datetime.fromtimestamp(int(mtime_ns) // 1_000_000_000).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):  # a nonsense timestamp on a damaged file system
        return None


def exif_datetime(raw: object) -> str | None:
    """'2021:05:03 14:22:01' -> '2021-05-03T14:22:01'; anything unparsable (or the all-zero "unset") -> None."""
    text = _text(raw)
    if text is None or len(text) < 19 or text[4] != ":" or text[7] != ":" or text[10] not in " T":
        return None
    try:
        moment = datetime.strptime(f"{text[:10]} {text[11:19]}", "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    return moment.isoformat(timespec="seconds")


def normalise_camera(make: str | None, model: str | None) -> tuple[str | None, str | None]:
    """("NIKON CORPORATION", "NIKON D750") -> ("Nikon", "D750"); ("Google", "Pixel 7") unchanged."""
    if make:
        make = _MAKER_NOISE.sub("", make).strip(" ,.") or make.strip()
        if make.isupper() and len(make) > 3:  # "NIKON", "SONY"; acronyms such as "HTC" and "LG" stay
            make = make.title()
    if model and make:
        first = model.split(None, 1)
        if len(first) == 2 and make.casefold().startswith(first[0].casefold()):  # "NIKON D750", "Canon EOS R5"
            model = first[1]
        elif model.casefold() == make.casefold():
            model = None
    return make or None, model or None


def camera_display(make: str | None, model: str | None) -> str | None:
    """"Google Pixel 7"; the model alone or the make alone when only one is known; None when neither is."""
    text = " ".join(part for part in (make, model) if part)
    return text or None


def _text(raw: object) -> str | None:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        return None
    text = " ".join(raw.replace("\x00", " ").split())
    return text or None
