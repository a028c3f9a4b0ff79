"""Weights: the official SAM 2 / SAM 2.1 checkpoints (registry, cache, resumable verified
downloads), the weights shipped in the package (`masklet_nano`), and which model a command
runs by default.

The registry holds Meta's eight released files with their exact sizes. None of their SHA-256
digests is published, so the digest of a file is computed after its first complete download
(or the first time a hand-placed file is checked) and recorded in `checksums.json` in the cache
directory; `verify` and later loads compare against it ("trust on first use").

Shipped weights (`masklet.weights.shipped`) have a manifest with their digest, checked at
every load. A command without `--model/--checkpoint` runs an official checkpoint already in
the cache, else `masklet_nano` (`masklet.weights.choice`).

Cache directory: see `default_cache_dir`. `$MASKLET_WEIGHTS_BASE_URL` replaces the official URL
prefix (mirrors, tests).
"""

from masklet.weights.cache import (
    CHECKSUMS_FILE,
    HOME_ENV,
    PART_SUFFIX,
    VerifyResult,
    WeightsStatus,
    cached_path,
    default_cache_dir,
    list_weights,
    resolve_cache_dir,
    verify,
)
from masklet.weights.choice import PREFERRED_OFFICIAL, default_model, model_name
from masklet.weights.download import download, resolve_checkpoint
from masklet.weights.registry import (
    BASE_URL_ENV,
    OFFICIAL_BASE_URL,
    WEIGHTS,
    WeightsEntry,
    get_weights,
)
from masklet.weights.shipped import (
    DEFAULT_SHIPPED_MODEL,
    SHIPPED_MODELS,
    Provenance,
    ShippedManifest,
    has_shipped_weights,
    read_manifest,
    shipped_checkpoint,
    write_shipped_weights,
)

__all__ = [
    "BASE_URL_ENV",
    "CHECKSUMS_FILE",
    "DEFAULT_SHIPPED_MODEL",
    "HOME_ENV",
    "OFFICIAL_BASE_URL",
    "PART_SUFFIX",
    "PREFERRED_OFFICIAL",
    "SHIPPED_MODELS",
    "WEIGHTS",
    "Provenance",
    "ShippedManifest",
    "VerifyResult",
    "WeightsEntry",
    "WeightsStatus",
    "cached_path",
    "default_cache_dir",
    "default_model",
    "download",
    "get_weights",
    "has_shipped_weights",
    "list_weights",
    "model_name",
    "read_manifest",
    "resolve_cache_dir",
    "resolve_checkpoint",
    "shipped_checkpoint",
    "verify",
    "write_shipped_weights",
]
