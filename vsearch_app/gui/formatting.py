"""Numbers as the app shows them: counts with thousands separators, sizes, rates and times left.

Plain functions with no Qt, shared by the status bar, the folders panel and the dialogs so a count reads the same
everywhere. English words and comma grouping, like the rest of the app's text.
"""

from __future__ import annotations

import math


def count(n: int) -> str:
    """``12345`` -> ``"12,345"``."""
    return f"{int(n):,}"


def plural(n: int, singular: str, plural_form: str | None = None) -> str:
    """``plural(1, "photo")`` -> ``"1 photo"``; ``plural(12345, "photo")`` -> ``"12,345 photos"``."""
    word = singular if n == 1 else (plural_form or singular + "s")
    return f"{count(n)} {word}"


def size(num_bytes: int | float) -> str:
    """A byte count in decimal units, as download sites and file managers show them: ``"813 MB"``, ``"1.5 GB"``.
    Three significant figures at most, so a progress line does not jitter in its last digits."""
    value = float(max(0, num_bytes))
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            break
        value /= 1000
    if unit == "B":
        return f"{int(value)} B"
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.3g} {unit}"


def rate(per_second: float, unit: str = "photos") -> str:
    """``"14 photos/s"``; slow rates keep one decimal (``"0.8 photos/s"``) rather than showing 0 or 1."""
    if per_second >= 10:
        return f"{per_second:,.0f} {unit}/s"
    return f"{per_second:.1f} {unit}/s"


def time_left(seconds: float | None) -> str | None:
    """A rough, calm estimate: ``"less than a minute left"``, ``"about 5 min left"``, ``"about 2 h 10 min left"``.
    None when unknown (no rate yet, or an estimate too large to mean anything)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    if seconds < 60:
        return "less than a minute left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    hours, minutes = divmod(minutes, 60)
    if hours >= 48:
        return f"about {round(hours / 24)} days left"
    if hours >= 10 or minutes == 0:
        return f"about {hours} h left"
    return f"about {hours} h {minutes} min left"


def sentence(message: str) -> str:
    """An engine message shown as a sentence: capitalised, ending with a full stop ("" stays "")."""
    message = message.strip()
    if not message:
        return ""
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."
