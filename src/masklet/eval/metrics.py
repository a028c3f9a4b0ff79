"""Per-frame video-object-segmentation metrics: region similarity J and boundary measure F.

Masks are ``HxW`` numpy arrays, read as bool (non-zero = foreground), in image pixel
coordinates (row = y, column = x). An optional ``void`` mask of the same shape marks pixels
that are left out of both measures (DAVIS label 255).

Boundary convention (identical to DAVIS ``seg2bmap``): a pixel ``(y, x)`` is a boundary pixel
when its mask value differs from that of its right ``(y, x+1)``, bottom ``(y+1, x)`` or
bottom-right ``(y+1, x+1)`` neighbour. The boundary is therefore the top-left pixel of every
pair of differing pixels, so on the left and top sides of an object it lies just *outside*
the mask and on the right and bottom sides just *inside* it; every boundary is one pixel
thick. The image border is not a boundary: in the last row only the right neighbour counts,
in the last column only the bottom one, and the bottom-right pixel is never a boundary.

The tolerance of F is a disk of radius ``ceil(0.008 * sqrt(H^2 + W^2))`` pixels (8 px at
DAVIS 480p), i.e. all offsets ``(dy, dx)`` with ``dy^2 + dx^2 <= r^2``, the same disk as
``skimage.morphology.disk(r)`` that DAVIS dilates with.
"""

from __future__ import annotations

import math

import numpy as np

from masklet.errors import InputError

BOUNDARY_TOLERANCE_FRACTION = 0.008
"""Tolerance radius of F as a fraction of the image diagonal (DAVIS ``bound_th``)."""


def _as_bool_mask(mask: np.ndarray, name: str) -> np.ndarray:
    """Return ``mask`` as an HxW bool array; raise InputError for other ranks."""
    array = np.asarray(mask)
    if array.ndim != 2:
        raise InputError(f"{name} must be a 2-D HxW mask, got shape {array.shape}")
    return array.astype(bool, copy=False)


def _check_shapes(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None) -> None:
    if pred.shape != gt.shape:
        raise InputError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    if void is not None and void.shape != gt.shape:
        raise InputError(f"void mask shape {void.shape} differs from ground truth {gt.shape}")


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary of a mask (DAVIS ``seg2bmap`` convention, see module docstring).

    Args:
        mask: HxW array; non-zero is foreground.
    Returns:
        HxW bool array, True on boundary pixels.
    """
    seg = _as_bool_mask(mask, "mask")
    right = np.zeros_like(seg)
    below = np.zeros_like(seg)
    below_right = np.zeros_like(seg)
    right[:, :-1] = seg[:, 1:]
    below[:-1, :] = seg[1:, :]
    below_right[:-1, :-1] = seg[1:, 1:]
    boundary = (seg ^ right) | (seg ^ below) | (seg ^ below_right)
    boundary[-1, :] = seg[-1, :] ^ right[-1, :]
    boundary[:, -1] = seg[:, -1] ^ below[:, -1]
    boundary[-1, -1] = False
    return boundary


def boundary_tolerance(height: int, width: int) -> int:
    """Tolerance radius in pixels: ``ceil(0.008 * sqrt(H^2 + W^2))``."""
    return math.ceil(BOUNDARY_TOLERANCE_FRACTION * math.hypot(height, width))


def _dilate_rows(mask: np.ndarray, half_width: int) -> np.ndarray:
    """Dilate every row of an HxW bool mask by ``half_width`` pixels to each side.

    Uses a row-wise prefix sum: output[y, x] is True when any of
    ``mask[y, x - half_width : x + half_width + 1]`` is.
    """
    height, width = mask.shape
    prefix = np.zeros((height, width + 1), dtype=np.int64)
    np.cumsum(mask, axis=1, out=prefix[:, 1:])
    columns = np.arange(width)
    upper = np.minimum(columns + half_width + 1, width)
    lower = np.maximum(columns - half_width, 0)
    return (prefix[:, upper] - prefix[:, lower]) > 0


def dilate_disk(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by the disk ``{(dy, dx): dy^2 + dx^2 <= radius^2}``.

    The disk is split into horizontal runs: for each row offset ``dy`` it covers
    ``|dx| <= floor(sqrt(radius^2 - dy^2))``, so the result is the OR over ``dy`` of the
    row-dilated mask shifted vertically by ``dy``. Pixels outside the image are background.

    Args:
        mask: HxW bool array.
        radius: non-negative disk radius in pixels.
    Returns:
        HxW bool array.
    """
    seg = _as_bool_mask(mask, "mask")
    if radius < 0:
        raise InputError(f"dilation radius must be >= 0, got {radius}")
    height = seg.shape[0]
    row_dilated: dict[int, np.ndarray] = {}
    result = np.zeros_like(seg)
    for dy in range(-radius, radius + 1):
        if abs(dy) >= height:
            continue
        half_width = math.isqrt(radius * radius - dy * dy)
        if half_width not in row_dilated:
            row_dilated[half_width] = _dilate_rows(seg, half_width)
        source = row_dilated[half_width]
        # result[y] |= source[y + dy]: a pixel is reached from a source pixel dy rows away.
        if dy >= 0:
            result[: height - dy] |= source[dy:]
        else:
            result[-dy:] |= source[: height + dy]
    return result


def region_similarity(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float:
    """Region similarity J (Jaccard index) of one frame of one object.

    ``J = |M ∩ G| / |M ∪ G|`` counted over non-void pixels; 1.0 when the union is empty.

    Args:
        pred: HxW predicted mask M (non-zero = object).
        gt: HxW ground-truth mask G.
        void: optional HxW mask of pixels to ignore.
    Returns:
        J in [0, 1].
    """
    pred_b = _as_bool_mask(pred, "prediction")
    gt_b = _as_bool_mask(gt, "ground truth")
    void_b = None if void is None else _as_bool_mask(void, "void")
    _check_shapes(pred_b, gt_b, void_b)
    keep = np.ones_like(gt_b) if void_b is None else ~void_b
    union = int(np.count_nonzero((pred_b | gt_b) & keep))
    if union == 0:
        return 1.0
    intersection = int(np.count_nonzero(pred_b & gt_b & keep))
    return intersection / union


def boundary_precision_recall(
    pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None
) -> tuple[float, float]:
    """Boundary precision and recall of one frame of one object (see ``boundary_f_measure``).

    Returns:
        ``(precision, recall)``, each in [0, 1].
    """
    pred_b = _as_bool_mask(pred, "prediction")
    gt_b = _as_bool_mask(gt, "ground truth")
    void_b = None if void is None else _as_bool_mask(void, "void")
    _check_shapes(pred_b, gt_b, void_b)
    if void_b is not None:
        pred_b = pred_b & ~void_b
        gt_b = gt_b & ~void_b
    pred_boundary = boundary_map(pred_b)
    gt_boundary = boundary_map(gt_b)
    num_pred = int(np.count_nonzero(pred_boundary))
    num_gt = int(np.count_nonzero(gt_boundary))
    if num_pred == 0 and num_gt == 0:
        return 1.0, 1.0
    if num_pred == 0:
        return 1.0, 0.0
    if num_gt == 0:
        return 0.0, 1.0
    radius = boundary_tolerance(*gt_b.shape)
    window = _boundary_window(pred_boundary | gt_boundary)
    pred_boundary, gt_boundary = pred_boundary[window], gt_boundary[window]
    pred_matched = np.count_nonzero(pred_boundary & dilate_disk(gt_boundary, radius))
    gt_matched = np.count_nonzero(gt_boundary & dilate_disk(pred_boundary, radius))
    return int(pred_matched) / num_pred, int(gt_matched) / num_gt


def _boundary_window(boundary: np.ndarray) -> tuple[slice, slice]:
    """Bounding box of the True pixels of ``boundary`` as a pair of slices.

    Every boundary pixel, and so every pixel that can match one, lies inside this box, so
    dilating within it gives the same counts as dilating the whole frame, only faster.
    """
    rows = np.flatnonzero(boundary.any(axis=1))
    cols = np.flatnonzero(boundary.any(axis=0))
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def boundary_f_measure(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float:
    """Boundary accuracy F of one frame of one object (DAVIS contour measure).

    Void pixels are set to background in both masks before their boundaries are taken.
    Precision P is the share of predicted boundary pixels within the tolerance disk of the
    true boundary, recall R the share of true boundary pixels within the tolerance of the
    predicted one. Empty boundaries: none predicted but some true gives P=1, R=0; predicted
    but none true gives P=0, R=1; both empty gives P=R=1. ``F = 2PR / (P + R)``, 0 if P+R=0.

    Args:
        pred: HxW predicted mask (non-zero = object).
        gt: HxW ground-truth mask.
        void: optional HxW mask of pixels to ignore.
    Returns:
        F in [0, 1].
    """
    precision, recall = boundary_precision_recall(pred, gt, void)
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)
