"""COCO run-length encoding (RLE) of binary masks, through `pycocotools`.

An RLE is a dict `{"size": [H, W], "counts": ...}`. Runs are taken in column-major (Fortran)
order over the (H, W) mask, alternating 0-runs and 1-runs and starting with a (possibly empty)
0-run. `counts` is either
- compressed: COCO's ASCII string (what SA-V and SA-1B JSON files store), or
- uncompressed: a list of run lengths (ints).
`mask_to_rle` always returns the compressed form with `counts` as `str` (JSON-ready);
`rle_to_mask` reads both forms, with `counts` as `str` or `bytes`.
Masks are (H, W) numpy arrays; anything nonzero counts as foreground. Decoded masks are bool.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from masklet.errors import InputError

RLE = dict[str, Any]


def _check_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"a mask must have shape (H, W), got shape {mask.shape}")
    return mask


def mask_to_rle(mask: np.ndarray) -> RLE:
    """Encode an (H, W) mask (bool, or any dtype: nonzero = foreground) as a compressed COCO
    RLE `{"size": [H, W], "counts": str}`."""
    mask = _check_mask(mask)
    fortran = np.asfortranarray(mask != 0, dtype=np.uint8)
    encoded = coco_mask.encode(fortran)
    counts = encoded["counts"]
    return {
        "size": [int(mask.shape[0]), int(mask.shape[1])],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else str(counts),
    }


def mask_to_uncompressed_rle(mask: np.ndarray) -> RLE:
    """Encode an (H, W) mask as an uncompressed COCO RLE `{"size": [H, W], "counts": [int]}`
    (run lengths in column-major order, starting with the 0-run)."""
    mask = _check_mask(mask)
    flat = (mask != 0).flatten(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    boundaries = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(boundaries).tolist()
    if flat.size and flat[0] == 1:
        runs = [0, *runs]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(r) for r in runs]}


def _check_rle(rle: Mapping[str, Any]) -> tuple[int, int]:
    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise InputError(f"an RLE must be a dict with 'size' and 'counts', got {rle!r:.80}")
    size = rle["size"]
    if len(size) != 2 or int(size[0]) < 0 or int(size[1]) < 0:
        raise InputError(f"RLE size must be [H, W], got {size!r}")
    return int(size[0]), int(size[1])


def _decode_uncompressed(counts: list[int], height: int, width: int) -> np.ndarray:
    runs = np.asarray(counts, dtype=np.int64)
    if (runs < 0).any() or runs.sum() != height * width:
        raise InputError(
            f"uncompressed RLE counts sum to {int(runs.sum())}, expected H*W = {height * width}"
        )
    values = np.arange(len(runs)) % 2 == 1  # runs alternate 0, 1, 0, ...
    flat = np.repeat(values, runs)
    return flat.reshape((height, width), order="F")


def rle_to_mask(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode a COCO RLE (compressed `str`/`bytes` counts or uncompressed list) into an (H, W)
    bool mask."""
    height, width = _check_rle(rle)
    counts = rle["counts"]
    if isinstance(counts, (list, tuple)):
        return _decode_uncompressed(list(counts), height, width)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    if not isinstance(counts, bytes):
        raise InputError(f"RLE counts must be str, bytes or a list, got {type(counts).__name__}")
    if height == 0 or width == 0:
        return np.zeros((height, width), dtype=bool)
    try:
        with warnings.catch_warnings():
            # pycocotools' decode trips numpy 2's __array__(copy=...) deprecation; harmless.
            warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
            decoded = coco_mask.decode({"size": [height, width], "counts": counts})
    except (ValueError, TypeError) as error:
        raise InputError(f"cannot decode RLE counts: {error}") from error
    return decoded.astype(bool)


def rle_area(rle: Mapping[str, Any]) -> int:
    """Number of foreground pixels of an RLE, without decoding it to a mask."""
    height, width = _check_rle(rle)
    counts = rle["counts"]
    if isinstance(counts, (list, tuple)):
        return int(sum(counts[1::2]))
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return int(coco_mask.area({"size": [height, width], "counts": counts}))


def empty_rle(height: int, width: int) -> RLE:
    """The compressed RLE of an all-background (H, W) mask."""
    return mask_to_rle(np.zeros((height, width), dtype=bool))
