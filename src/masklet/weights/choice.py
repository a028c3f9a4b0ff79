"""Which model a command runs (DESIGN §11): the one named, else an official checkpoint that is
already in the cache, else `masklet_nano` with the weights shipped in the package.

Nothing here downloads: a model chosen by default is one whose weights are on disk.
"""

from __future__ import annotations

import os

from masklet.errors import ConfigError
from masklet.weights.cache import list_weights
from masklet.weights.registry import WEIGHTS, get_weights
from masklet.weights.shipped import DEFAULT_SHIPPED_MODEL, SHIPPED_MODELS

#: Official checkpoints in the order a command prefers them when several are cached: SAM 2.1
#: before SAM 2, the smaller (faster) first.
PREFERRED_OFFICIAL = tuple(
    f"{release}_hiera_{size}" for release in ("sam2.1", "sam2") for size in ("t", "s", "b+", "l")
)


def default_model(cache_dir: str | os.PathLike[str] | None = None) -> str:
    """The first of `PREFERRED_OFFICIAL` whose file is cached with its full size, else
    `masklet_nano` (shipped). Only sizes are compared: loading checks the digest."""
    cached = {status.name for status in list_weights(cache_dir) if status.cached}
    for name in PREFERRED_OFFICIAL:
        if name in cached:
            return name
    return DEFAULT_SHIPPED_MODEL


def model_name(name: str) -> str:
    """The preset a `--model NAME` means: an official checkpoint by any name the registry
    knows (`sam2.1_hiera_tiny.pt`, `facebook/sam2.1-hiera-tiny`), or a shipped model
    (`masklet_nano`, `masklet_nano.pt`)."""
    key = name.strip().lower().removesuffix(".pt")
    if key in SHIPPED_MODELS:
        return key
    try:
        return get_weights(name).name
    except ConfigError:
        known = ", ".join((*SHIPPED_MODELS, *WEIGHTS))
        raise ConfigError(f"unknown model {name!r}; known: {known}") from None
