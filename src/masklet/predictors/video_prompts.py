"""Validation of video prompts (clicks, boxes, masks) against the video, in the reference's
conventions: coordinates are xy pixels of the video frame (or fractions in [0, 1] with
`normalize_coords=False`); boxes come first as corner points with labels 2 and 3."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from masklet.errors import InputError
from masklet.session.objects import PointPrompt


def _as_array(values: Any, name: str) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if not np.isfinite(array).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return array


def point_prompt(
    points: Any,
    labels: Any,
    box: Any,
    video_hw: tuple[int, int],
    image_size: int,
    normalize_coords: bool,
    device: torch.device,
) -> PointPrompt:
    """Validate clicks and/or a box and map them to model-input pixels `(1, N, 2)`."""
    if (points is None) != (labels is None):
        raise InputError("points and labels must be given together")
    if points is None and box is None:
        raise InputError("give points (with labels) or a box")
    coords = np.zeros((0, 2)) if points is None else _as_array(points, "points").reshape(-1, 2)
    label_array = np.zeros(0) if labels is None else _as_array(labels, "labels").reshape(-1)
    if points is not None and _as_array(points, "points").size % 2:
        raise InputError("points must be (x, y) pairs")
    if len(coords) != len(label_array):
        raise InputError(f"{len(coords)} points but {len(label_array)} labels were given")
    if not np.isin(label_array, (0, 1, 2, 3)).all():
        raise InputError(
            f"labels must be 1 (foreground) or 0 (background), got {np.unique(label_array)}"
        )
    if box is not None:
        corners = _as_array(box, "box").reshape(-1)
        if corners.size != 4:
            raise InputError(f"box must be x0, y0, x1, y1; got {corners.size} values")
        coords = np.concatenate([corners.reshape(2, 2), coords])
        label_array = np.concatenate([[2, 3], label_array])
    height, width = video_hw
    limits = (float(width), float(height)) if normalize_coords else (1.0, 1.0)
    outside = (coords < 0).any(1) | (coords[:, 0] > limits[0]) | (coords[:, 1] > limits[1])
    if outside.any():
        x, y = coords[outside][0]
        raise InputError(
            f"prompt point ({x:g}, {y:g}) lies outside the frame "
            f"(x in [0, {limits[0]:g}], y in [0, {limits[1]:g}])"
        )
    tensor = torch.tensor(coords, dtype=torch.float32)[None]
    if normalize_coords:
        tensor = tensor / torch.tensor([width, height])
    tensor = (tensor * image_size).to(device)
    label_tensor = torch.tensor(label_array, dtype=torch.int32, device=device)[None]
    return PointPrompt(tensor, label_tensor)


def mask_prompt(mask: Any, image_size: int, device: torch.device) -> Tensor:
    """A 2-D boolean mask (any size) -> `(1, 1, S, S)` float 0/1 at the model input size."""
    if isinstance(mask, Tensor):
        mask = mask.detach().cpu().numpy()
    array = np.asarray(mask)
    if array.ndim != 2:
        raise InputError(f"mask must be a 2-D (H, W) array, got shape {array.shape}")
    if not array.any():
        raise InputError(
            "the mask prompt is empty (no pixel set); to drop an object use remove_object"
        )
    tensor = torch.from_numpy(array.astype(np.float32))[None, None].to(device)
    if tensor.shape[-2:] != (image_size, image_size):
        tensor = F.interpolate(
            tensor,
            size=(image_size, image_size),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        tensor = (tensor >= 0.5).float()
    return tensor
