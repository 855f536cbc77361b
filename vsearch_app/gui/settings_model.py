"""The user's choices in the Settings dialog, as a plain dataclass, and where they are kept (QSettings).

``Preferences`` holds only what the user chose; window geometry and other UI state live elsewhere (ui_state).
``PreferencesStore(path=None)`` reads and writes them: the platform's usual place by default (registry on Windows,
a plist on macOS, an INI file under ~/.config on Linux), or an INI file at ``path`` (tests, portable installs). A
value that cannot be read back (edited by hand, from a newer version) falls back to its default, with a log line,
so a bad settings file never stops the app from starting.

``Preferences.app_settings(...)`` builds the engine's AppSettings for this run: the command line's ``--model``,
``--caption-model``, ``--device`` and ``--dtype`` win over the saved choices (and ``VSEARCH_MODEL`` over the saved
search model), so a user, a test or the installer can point one run elsewhere without changing what is saved.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from PySide6.QtCore import QSettings

from vsearch_app.errors import InvalidArgumentError
from vsearch_app.settings import DEFAULT_CAPTION_MODEL, MODEL_ENV, AppSettings

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
COLOR_SCHEMES = ("system", "light", "dark")  # as gui.theme.SCHEMES
THUMBNAIL_SIZES = (96, 320)  # logical pixels, inclusive
MAX_RESULT_LIMIT = 100_000
ORGANIZATION = APPLICATION = "VSearch"
_GROUP = "preferences"


@dataclass(frozen=True)
class Preferences:
    search_model: str | None = None  # hub id or local folder; None: the library's own model, else the default
    caption_model: str = DEFAULT_CAPTION_MODEL
    device: str = "auto"
    dtype: str = "auto"
    thumbnail_size: int = 160
    result_limit: int = 0  # 0: every match above the threshold (the grid pages them in)
    color_scheme: str = "system"

    def __post_init__(self) -> None:
        if self.search_model is not None and not self.search_model.strip():
            object.__setattr__(self, "search_model", None)
        if not self.caption_model.strip():
            raise InvalidArgumentError("the caption model cannot be empty")
        _require(self.device, DEVICES, "device")
        _require(self.dtype, DTYPES, "number format")
        _require(self.color_scheme, COLOR_SCHEMES, "colour scheme")
        low, high = THUMBNAIL_SIZES
        if not low <= self.thumbnail_size <= high:
            raise InvalidArgumentError(f"thumbnail size {self.thumbnail_size} is outside {low}..{high} pixels")
        if not 0 <= self.result_limit <= MAX_RESULT_LIMIT:
            raise InvalidArgumentError(f"result limit {self.result_limit} is outside 0..{MAX_RESULT_LIMIT:,}")

    def app_settings(self, data_dir: str | os.PathLike[str] | None = None, *, model: str | None = None,
                     caption_model: str | None = None, device: str | None = None, dtype: str | None = None,
                     env: dict[str, str] | None = None) -> AppSettings:
        """The engine's settings for this run; explicit (command-line) values win over these preferences."""
        env = os.environ if env is None else env
        return AppSettings.resolve(
            data_dir,
            model=model or env.get(MODEL_ENV) or self.search_model,
            caption_model=caption_model or self.caption_model,
            device=device or self.device,
            dtype=dtype or self.dtype,
            env=env,
        )


def _require(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise InvalidArgumentError(f"{what} {value!r} is not one of {', '.join(allowed)}")


class PreferencesStore:
    """Loads and saves Preferences in QSettings (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None

    def _settings(self) -> QSettings:
        if self.path is not None:
            return QSettings(str(self.path), QSettings.Format.IniFormat)
        return QSettings(QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)

    def load(self) -> Preferences:
        settings = self._settings()
        settings.beginGroup(_GROUP)
        prefs = Preferences()
        for field in fields(Preferences):
            if not settings.contains(field.name):
                continue
            raw = settings.value(field.name)
            try:
                prefs = replace(prefs, **{field.name: _parse(field.name, raw, getattr(prefs, field.name))})
            except (InvalidArgumentError, TypeError, ValueError) as exc:
                log.warning("ignoring the saved setting %s=%r: %s", field.name, raw, exc)
        settings.endGroup()
        return prefs

    def save(self, prefs: Preferences) -> None:
        settings = self._settings()
        settings.beginGroup(_GROUP)
        for name, value in asdict(prefs).items():
            if value is None:
                settings.remove(name)
            else:
                settings.setValue(name, value)
        settings.endGroup()
        settings.sync()
        if settings.status() != QSettings.Status.NoError:
            log.warning("could not save the settings (%s)", settings.status())


def _parse(name: str, raw: object, default: object) -> object:
    """QSettings gives back strings from INI files and typed values elsewhere; accept both."""
    if isinstance(default, int) and not isinstance(default, bool):
        return int(str(raw).strip())
    if raw is None:
        return None
    return str(raw)
