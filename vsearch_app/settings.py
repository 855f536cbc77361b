"""Where VSearch keeps its data, and how the user overrides it.

Precedence for the data directory: the ``--data-dir`` flag, then ``VSEARCH_DATA_DIR``, then the platform default
(platformdirs, app name "VSearch", no author folder). For the search model: the ``--model`` flag, then
``VSEARCH_MODEL``, then the model the library remembers (core.service reads it from the catalog), then
``DEFAULT_MODEL``; ``AppSettings.model`` is None when neither the flag nor the variable chose one.

Models live in the Hugging Face hub cache so that a model the user already downloaded with other tools is reused
rather than fetched twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "VSearch"
DATA_DIR_ENV = "VSEARCH_DATA_DIR"
MODEL_ENV = "VSEARCH_MODEL"
DEFAULT_MODEL = "google/siglip2-base-patch16-224"
DEFAULT_CAPTION_MODEL = "google/paligemma-3b-mix-224"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def default_hub_cache_dir() -> Path:
    """The Hugging Face hub cache, honouring HF_HUB_CACHE and HF_HOME as huggingface_hub does."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


@dataclass(frozen=True)
class AppSettings:
    data_dir: Path
    cache_dir: Path
    hub_cache_dir: Path
    model: str | None = None  # the search model chosen for this run (flag or VSEARCH_MODEL); None: not chosen
    caption_model: str = DEFAULT_CAPTION_MODEL
    device: str = "auto"
    dtype: str = "auto"

    @classmethod
    def resolve(
        cls,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        caption_model: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        env: dict[str, str] | None = None,
    ) -> AppSettings:
        """Build settings with precedence: explicit argument > environment > platform default."""
        env = os.environ if env is None else env
        if data_dir is not None:
            chosen = Path(data_dir)
        elif env.get(DATA_DIR_ENV):
            chosen = Path(env[DATA_DIR_ENV])
        else:
            chosen = default_data_dir()
        return cls(
            data_dir=chosen.expanduser().resolve(),
            cache_dir=default_cache_dir(),
            hub_cache_dir=default_hub_cache_dir(),
            model=model or env.get(MODEL_ENV) or None,
            caption_model=caption_model or DEFAULT_CAPTION_MODEL,
            device=device or "auto",
            dtype=dtype or "auto",
        )

    @property
    def search_model(self) -> str:
        """The chosen search model, else the default (commands that have no library to ask)."""
        return self.model or DEFAULT_MODEL

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir
