"""Uncompressed COCO run-length encoding of mask batches, vectorised.

An RLE is `{"size": [H, W], "counts": [int, ...]}`: run lengths over the mask in column-major
order, alternating background and foreground runs and starting with a (possibly empty)
background run. `to_coco_rle` compresses one with pycocotools (JSON-ready `counts: str`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as coco_mask
from torch import Tensor

RLE = dict[str, Any]


def _runs(column_major: np.ndarray, change_positions: np.ndarray) -> list[int]:
    """Run lengths of one flattened mask given the positions `i` where pixel `i + 1` differs
    from pixel `i`."""
    bounds = np.concatenate([[0], change_positions + 1, [column_major.size]])
    runs = np.diff(bounds).tolist()
    return [0, *runs] if column_major[0] else runs


def masks_to_rles(masks: Tensor) -> list[RLE]:
    """Encode `masks (N, H, W)` bool (H, W > 0) as N uncompressed RLEs."""
    count, height, width = masks.shape
    if count == 0:
        return []
    flat = masks.transpose(1, 2).reshape(count, height * width).cpu().numpy()
    mask_index, positions = np.nonzero(flat[:, 1:] != flat[:, :-1])
    splits = np.cumsum(np.bincount(mask_index, minlength=count))[:-1]
    return [
        {"size": [height, width], "counts": _runs(flat[index], change_positions)}
        for index, change_positions in enumerate(np.split(positions, splits))
    ]


def rle_to_mask(rle: RLE) -> np.ndarray:
    """Decode an uncompressed RLE into an `(H, W)` bool array."""
    height, width = rle["size"]
    runs = np.asarray(rle["counts"], dtype=np.int64)
    values = (np.arange(len(runs)) % 2).astype(bool)
    return np.repeat(values, runs).reshape(width, height).T


def rle_area(rle: RLE) -> int:
    """Foreground pixel count of an uncompressed RLE."""
    return int(sum(rle["counts"][1::2]))


def to_coco_rle(rle: RLE) -> RLE:
    """Compress an uncompressed RLE into COCO's string form `{"size", "counts": str}`."""
    height, width = rle["size"]
    encoded = coco_mask.frPyObjects(rle, height, width)
    counts = encoded["counts"]
    return {"size": [int(height), int(width)], "counts": counts.decode("utf-8")}


def pad_rle(rle: RLE, crop_box: tuple[int, int, int, int], image_hw: tuple[int, int]) -> RLE:
    """Place the RLE of a crop's mask at `crop_box` (x0, y0, x1, y1) in an `image_hw` image
    of background."""
    x0, y0, x1, y1 = crop_box
    height, width = image_hw
    if (x0, y0, x1, y1) == (0, 0, width, height):
        return rle
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = rle_to_mask(rle)
    flat = mask.T.reshape(-1)
    return {"size": [height, width], "counts": _runs(flat, np.flatnonzero(flat[1:] != flat[:-1]))}
