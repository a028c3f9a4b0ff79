"""Official SAM 2 / SAM 2.1 checkpoints: registry, cache, resumable verified downloads.

The registry holds Meta's eight released files with their exact sizes. None of their SHA-256
digests is published, so the digest of a file is computed after its first complete download
(or the first time a hand-placed file is checked) and recorded in `checksums.json` in the cache
directory; `verify` and later loads compare against it ("trust on first use").

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
from masklet.weights.download import download, resolve_checkpoint
from masklet.weights.registry import (
    BASE_URL_ENV,
    OFFICIAL_BASE_URL,
    WEIGHTS,
    WeightsEntry,
    get_weights,
)

__all__ = [
    "BASE_URL_ENV",
    "CHECKSUMS_FILE",
    "HOME_ENV",
    "OFFICIAL_BASE_URL",
    "PART_SUFFIX",
    "WEIGHTS",
    "VerifyResult",
    "WeightsEntry",
    "WeightsStatus",
    "cached_path",
    "default_cache_dir",
    "download",
    "get_weights",
    "list_weights",
    "resolve_cache_dir",
    "resolve_checkpoint",
    "verify",
]
