"""Validation and conversion of user prompts (numpy, original-image pixels) into model-input
tensors. Boxes become two corner points (labels 2 and 3) placed before the clicks."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from masklet.errors import InputError

VALID_LABELS = (-1, 0, 1, 2, 3)


class PromptTensors(NamedTuple):
    """Prompts in model-input coordinates (xy pixels of the `S x S` input)."""

    coords: Tensor | None  # (B, N, 2) float32
    labels: Tensor | None  # (B, N) int32
    mask_input: Tensor | None  # (B, 1, h, w) float32 logits


def _as_batched(array: np.ndarray, item_ndim: int, name: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == item_ndim:
        array = array[None]
    if array.ndim != item_ndim + 1:
        raise InputError(f"{name} has shape {array.shape}; expected {item_ndim}-D or batched")
    if not np.isfinite(array).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return array


def _check_inside(xy: np.ndarray, limits: tuple[float, float], name: str) -> None:
    """`xy (..., 2)`; raise if any coordinate lies outside [0, limit]."""
    outside = (xy < 0).any(-1) | (xy[..., 0] > limits[0]) | (xy[..., 1] > limits[1])
    if outside.any():
        first = xy[outside][0]
        raise InputError(
            f"{name} ({first[0]:g}, {first[1]:g}) lies outside the image "
            f"(x in [0, {limits[0]:g}], y in [0, {limits[1]:g}])"
        )


def _to_input_frame(
    xy: np.ndarray, orig_hw: tuple[int, int], size: int, normalized: bool, device: torch.device
) -> Tensor:
    coords = torch.as_tensor(xy, dtype=torch.float32, device=device)
    if not normalized:
        coords = coords.clone()
        coords[..., 0] = coords[..., 0] / orig_hw[1]
        coords[..., 1] = coords[..., 1] / orig_hw[0]
    return coords * size


def _points(
    point_coords: np.ndarray, point_labels: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if point_labels is None:
        raise InputError("point_labels must be given with point_coords")
    coords = _as_batched(point_coords, 2, "point_coords")
    labels = _as_batched(point_labels, 1, "point_labels")
    if coords.shape[-1] != 2:
        raise InputError(f"point_coords must have 2 values (x, y) per point, got {coords.shape}")
    if coords.shape[:2] != labels.shape:
        raise InputError(
            f"point_coords {coords.shape[:2]} and point_labels {labels.shape} differ in length"
        )
    if not np.isin(labels, VALID_LABELS).all():
        raise InputError(
            f"point_labels must be 1 (foreground) or 0 (background), got {np.unique(labels)}"
        )
    return coords, labels


def prepare_prompts(
    point_coords: np.ndarray | None,
    point_labels: np.ndarray | None,
    box: np.ndarray | None,
    mask_input: np.ndarray | None,
    orig_hw: tuple[int, int],
    size: int,
    normalize_coords: bool,
    device: torch.device,
) -> PromptTensors:
    """Validate user prompts and map them to the model input.

    `normalize_coords=True`: coordinates are pixels of the `orig_hw` image; False: fractions.
    Raises `InputError` for mismatched lengths, unknown labels, NaNs or prompts outside the image.
    """
    limits = (float(orig_hw[1]), float(orig_hw[0])) if normalize_coords else (1.0, 1.0)
    coords: Tensor | None = None
    labels: Tensor | None = None
    if point_coords is not None:
        xy, label_array = _points(point_coords, point_labels)
        _check_inside(xy, limits, "point")
        coords = _to_input_frame(xy, orig_hw, size, not normalize_coords, device)
        labels = torch.as_tensor(label_array, dtype=torch.int32, device=device)
    if box is not None:
        boxes = _as_batched(box, 1, "box")
        if boxes.shape[-1] != 4:
            raise InputError(f"box must be x0, y0, x1, y1; got shape {boxes.shape}")
        corners = boxes.reshape(-1, 2, 2)
        _check_inside(corners, limits, "box corner")
        box_coords = _to_input_frame(corners, orig_hw, size, not normalize_coords, device)
        box_labels = torch.tensor([[2, 3]], dtype=torch.int32, device=device).repeat(
            len(corners), 1
        )
        if coords is not None and labels is not None:
            if coords.shape[0] != box_coords.shape[0]:
                raise InputError(
                    f"{box_coords.shape[0]} boxes but {coords.shape[0]} point sets were given"
                )
            coords = torch.cat([box_coords, coords], dim=1)
            labels = torch.cat([box_labels, labels], dim=1)
        else:
            coords, labels = box_coords, box_labels
    masks = None
    if mask_input is not None:
        masks = torch.as_tensor(np.asarray(mask_input), dtype=torch.float32, device=device)
        if masks.ndim == 3:
            masks = masks[None]
        if masks.ndim != 4 or masks.shape[1] != 1:
            raise InputError(f"mask_input must be 1xHxW or Bx1xHxW, got {tuple(masks.shape)}")
    return PromptTensors(coords, labels, masks)
