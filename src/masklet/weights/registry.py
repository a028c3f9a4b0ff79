"""The registry of Meta's eight released checkpoints: names, aliases, URLs and exact sizes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from masklet.errors import ConfigError

OFFICIAL_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2"
BASE_URL_ENV = "MASKLET_WEIGHTS_BASE_URL"


@dataclass(frozen=True)
class WeightsEntry:
    """One downloadable checkpoint: the preset it belongs to, where it lives, how big it is."""

    name: str  # preset name, e.g. "sam2.1_hiera_t"
    file_name: str  # e.g. "sam2.1_hiera_tiny.pt"
    url: str  # official URL; `MASKLET_WEIGHTS_BASE_URL` may replace its prefix
    size: int  # exact size in bytes
    sha256: str | None = None  # published digest, if any
    aliases: tuple[str, ...] = ()  # other names users know (HF ids, ...)

    @property
    def stem(self) -> str:
        """File name without `.pt` (`sam2.1_hiera_tiny`)."""
        return self.file_name.removesuffix(".pt")

    def download_url(self) -> str:
        """The URL to fetch, with the base URL override from the environment applied."""
        base_url = os.environ.get(BASE_URL_ENV, "").rstrip("/")
        if base_url and self.url.startswith(OFFICIAL_BASE_URL):
            return base_url + self.url[len(OFFICIAL_BASE_URL) :]
        return self.url


_RELEASE_DIRS = {"sam2": "072824", "sam2.1": "092824"}
_VARIANTS = (("t", "tiny"), ("s", "small"), ("b+", "base_plus"), ("l", "large"))
_SIZES = {  # exact bytes of the released files, in `_VARIANTS` order
    "sam2": (155_906_050, 184_309_650, 323_493_298, 897_952_466),
    "sam2.1": (156_008_466, 184_416_285, 323_606_802, 898_083_611),
}


def _official_entries() -> tuple[WeightsEntry, ...]:
    entries = []
    for release, directory in _RELEASE_DIRS.items():
        for (short, long), size in zip(_VARIANTS, _SIZES[release], strict=True):
            stem = f"{release}_hiera_{long}"
            url = f"{OFFICIAL_BASE_URL}/{directory}/{stem}.pt"
            hf_id = f"facebook/{release}-hiera-{long.replace('_', '-')}"
            entries.append(
                WeightsEntry(f"{release}_hiera_{short}", f"{stem}.pt", url, size, None, (hf_id,))
            )
    return tuple(entries)


_ENTRIES: tuple[WeightsEntry, ...] = _official_entries()
WEIGHTS: Mapping[str, WeightsEntry] = MappingProxyType({entry.name: entry for entry in _ENTRIES})


def _alias_table() -> dict[str, WeightsEntry]:
    table: dict[str, WeightsEntry] = {}
    for entry in _ENTRIES:
        for alias in (entry.name, entry.stem, entry.file_name, *entry.aliases):
            table[alias.lower()] = entry
    return table


_ALIASES: Mapping[str, WeightsEntry] = MappingProxyType(_alias_table())


def get_weights(name: str | WeightsEntry) -> WeightsEntry:
    """Registry entry for a preset name, file stem, file name or Hugging Face id.

    A `WeightsEntry` is returned unchanged, so callers (and tests) may pass their own.
    """
    if isinstance(name, WeightsEntry):
        return name
    entry = _ALIASES.get(name.strip().lower())
    if entry is None:
        known = ", ".join(WEIGHTS)
        raise ConfigError(f"unknown checkpoint {name!r}; known: {known}")
    return entry
