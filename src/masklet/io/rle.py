"""COCO run-length encoding (RLE) of binary masks: the one RLE module of masklet.

An RLE is a dict `{"size": [H, W], "counts": ...}`. Runs are taken in column-major (Fortran)
order over the (H, W) mask, alternating 0-runs and 1-runs and starting with a (possibly empty)
0-run. `counts` is either
- compressed: COCO's ASCII string (what SA-V and SA-1B JSON files store), or
- uncompressed: a list of run lengths (ints); the automatic mask generator keeps its masks
  this way (cheap to make from a batch, cheap to crop-pad and to measure).

Encoding:
- `mask_to_rle(mask)`: an (H, W) numpy mask -> compressed RLE with `counts: str` (JSON-ready);
- `mask_to_uncompressed_rle(mask)`: an (H, W) numpy mask -> uncompressed RLE;
- `masks_to_uncompressed_rles(masks)`: an `(N, H, W)` bool tensor -> N uncompressed RLEs,
  vectorised over the batch;
- `compress_rle(rle)`: either form -> compressed RLE with `counts: str`;
- `empty_rle(H, W)`: the compressed RLE of an all-background mask.
Decoding and measuring (either form, `counts` as `str`, `bytes` or a list):
- `rle_to_mask(rle)`: -> (H, W) bool numpy array;
- `rle_area(rle)`: foreground pixel count, without decoding;
- `pad_rle(rle, crop_box, image_hw)`: a crop's RLE placed in a larger image (uncompressed).
Masks given to the encoders may be any dtype: nonzero counts as foreground.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask
from torch import Tensor

from masklet.errors import InputError

RLE = dict[str, Any]


def _check_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"a mask must have shape (H, W), got shape {mask.shape}")
    return mask


def _run_lengths(column_major: np.ndarray, change_positions: np.ndarray) -> list[int]:
    """Run lengths of one flattened (column-major) mask, starting with the 0-run, given the
    positions `i` where pixel `i + 1` differs from pixel `i`. An empty mask gives `[0]`."""
    bounds = np.concatenate([[0], change_positions + 1, [column_major.size]])
    runs = [int(run) for run in np.diff(bounds).tolist()]
    return [0, *runs] if column_major.size and column_major[0] else runs


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
    flat = (mask != 0).flatten(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1])
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": _run_lengths(flat, changes)}


def masks_to_uncompressed_rles(masks: Tensor) -> list[RLE]:
    """Encode `masks (N, H, W)` bool (any device; H, W > 0) as N uncompressed RLEs, finding
    the run boundaries of the whole batch at once."""
    count, height, width = masks.shape
    if count == 0:
        return []
    flat = masks.transpose(1, 2).reshape(count, height * width).cpu().numpy()
    mask_index, positions = np.nonzero(flat[:, 1:] != flat[:, :-1])
    splits = np.cumsum(np.bincount(mask_index, minlength=count))[:-1]
    return [
        {"size": [height, width], "counts": _run_lengths(flat[index], change_positions)}
        for index, change_positions in enumerate(np.split(positions, splits))
    ]


def _check_rle(rle: Mapping[str, Any]) -> tuple[int, int]:
    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise InputError(f"an RLE must be a dict with 'size' and 'counts', got {rle!r:.80}")
    size = rle["size"]
    if len(size) != 2 or int(size[0]) < 0 or int(size[1]) < 0:
        raise InputError(f"RLE size must be [H, W], got {size!r}")
    return int(size[0]), int(size[1])


def _check_runs(counts: list[int] | tuple[int, ...], height: int, width: int) -> np.ndarray:
    """Uncompressed `counts` as an int64 array; `InputError` unless they tile the H*W pixels."""
    runs = np.asarray(counts, dtype=np.int64)
    if (runs < 0).any() or runs.sum() != height * width:
        raise InputError(
            f"uncompressed RLE counts sum to {int(runs.sum())}, expected H*W = {height * width}"
        )
    return runs


def _compressed_counts(counts: Any) -> bytes:
    """Compressed `counts` (`str` or `bytes`) as the bytes pycocotools takes."""
    if isinstance(counts, str):
        return counts.encode("ascii")
    if not isinstance(counts, bytes):
        raise InputError(f"RLE counts must be str, bytes or a list, got {type(counts).__name__}")
    return counts


def rle_to_mask(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode a COCO RLE (compressed `str`/`bytes` counts or uncompressed list) into an (H, W)
    bool mask (column-major in memory, as the runs are)."""
    height, width = _check_rle(rle)
    counts = rle["counts"]
    if isinstance(counts, (list, tuple)):
        runs = _check_runs(counts, height, width)
        values = np.arange(len(runs)) % 2 == 1  # runs alternate 0, 1, 0, ...
        return np.repeat(values, runs).reshape((height, width), order="F")
    compressed = _compressed_counts(counts)
    if height == 0 or width == 0:
        return np.zeros((height, width), dtype=bool)
    try:
        with warnings.catch_warnings():
            # pycocotools' decode trips numpy 2's __array__(copy=...) deprecation; harmless.
            warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
            decoded = coco_mask.decode({"size": [height, width], "counts": compressed})
    except (ValueError, TypeError) as error:
        raise InputError(f"cannot decode RLE counts: {error}") from error
    return decoded.astype(bool)


def compress_rle(rle: Mapping[str, Any]) -> RLE:
    """Either form of RLE -> compressed `{"size": [H, W], "counts": str}`. Uncompressed
    counts must tile the H*W pixels; they are compressed run by run (pycocotools'
    `frPyObjects`), without decoding the mask."""
    height, width = _check_rle(rle)
    counts = rle["counts"]
    if isinstance(counts, (list, tuple)):
        _check_runs(counts, height, width)
        uncompressed = {"size": [height, width], "counts": [int(run) for run in counts]}
        counts = coco_mask.frPyObjects(uncompressed, height, width)["counts"]
    return {"size": [height, width], "counts": _compressed_counts(counts).decode("ascii")}


def rle_area(rle: Mapping[str, Any]) -> int:
    """Number of foreground pixels of an RLE, without decoding it to a mask."""
    height, width = _check_rle(rle)
    counts = rle["counts"]
    if isinstance(counts, (list, tuple)):
        return int(sum(counts[1::2]))
    compressed = _compressed_counts(counts)
    return int(coco_mask.area({"size": [height, width], "counts": compressed}))


def empty_rle(height: int, width: int) -> RLE:
    """The compressed RLE of an all-background (H, W) mask."""
    return mask_to_rle(np.zeros((height, width), dtype=bool))


def pad_rle(rle: RLE, crop_box: tuple[int, int, int, int], image_hw: tuple[int, int]) -> RLE:
    """Place the RLE of a crop's mask at `crop_box` (x0, y0, x1, y1 in image pixels, end
    exclusive) in an `image_hw` (H, W) image of background; returns an uncompressed RLE (the
    RLE itself when the crop is the whole image)."""
    x0, y0, x1, y1 = crop_box
    height, width = image_hw
    if (x0, y0, x1, y1) == (0, 0, width, height):
        return rle
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = rle_to_mask(rle)
    return mask_to_uncompressed_rle(mask)
