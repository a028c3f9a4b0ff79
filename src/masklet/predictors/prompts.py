"""The one place where user prompts are checked and mapped to the model input, for the image
predictor, the video predictors and the command line.

Coordinates: xy pixels of the image (or video frame) the user sees, x to the right, y down,
checked to lie in `[0, W] x [0, H]`; with `normalize_coords=False` (the reference's name)
they are fractions of the image size, checked to lie in `[0, 1]`. The model input is the
`S x S` resized image, so a point becomes `(x / W * S, y / H * S)` float32.

Point labels, one rule for every prompt path (the prompt encoder's, `POINT_LABELS`):
1 = foreground click, 0 = background click, 2 / 3 = top-left / bottom-right corner of a box,
-1 = padding point (ignored by the decoder; pads point sets of different lengths in a batch).
A box given as `x0, y0, x1, y1` becomes the corners 2 and 3, placed before the clicks. The
command line takes only clicks as labels (`CLICK_LABELS`); boxes have their own syntax there.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from masklet.errors import InputError
from masklet.session.objects import PointPrompt

#: What each point label means to the prompt encoder.
LABEL_MEANINGS = {
    1: "foreground",
    0: "background",
    2: "box top-left corner",
    3: "box bottom-right corner",
    -1: "padding point",
}
POINT_LABELS = tuple(LABEL_MEANINGS)
CLICK_LABELS = (1, 0)
BOX_CORNER_LABELS = (2, 3)


class PromptTensors(NamedTuple):
    """Prompts in model-input coordinates (xy pixels of the `S x S` input)."""

    coords: Tensor | None  # (B, N, 2) float32
    labels: Tensor | None  # (B, N) int32
    mask_input: Tensor | None  # (B, 1, h, w) float32 logits


# ---------------------------------------------------------------- shared checks


def _as_float_array(values: Any, name: str) -> np.ndarray:
    """Any array-like (numpy, list, torch tensor on any device) -> float64 array, checked to
    hold only finite values."""
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if not np.isfinite(array).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return array


def check_labels(labels: Any, name: str, allowed: tuple[int, ...] = POINT_LABELS) -> None:
    """Raise `InputError` naming the values of `labels` (any shape) that are not in `allowed`
    and what each allowed label means."""
    values = np.unique(np.asarray(labels, dtype=np.float64))
    unknown = values[~np.isin(values, allowed)]
    if unknown.size:
        choices = [f"{label} ({LABEL_MEANINGS[label]})" for label in allowed]
        listed = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
        got = ", ".join(f"{value:g}" for value in unknown)
        raise InputError(f"{name} must be {listed}; got {got}")


def check_inside(
    xy: np.ndarray,
    image_hw: tuple[int, int],
    in_pixels: bool = True,
    what: str = "point",
    frame_name: str = "image",
) -> None:
    """Raise `InputError` for the first of the points `xy (..., 2)` (x, y) outside the image:
    x in `[0, W]`, y in `[0, H]` for pixels of an `image_hw = (H, W)` image, `[0, 1]` for
    fractions (`in_pixels=False`). `what` and `frame_name` name the point and the image."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    height, width = image_hw
    limit_x, limit_y = (float(width), float(height)) if in_pixels else (1.0, 1.0)
    outside = (xy < 0).any(-1) | (xy[:, 0] > limit_x) | (xy[:, 1] > limit_y)
    if not outside.any():
        return
    x, y = xy[outside][0]
    if in_pixels:
        raise InputError(
            f"{what} ({x:g}, {y:g}) is outside the {width}x{height} {frame_name} "
            f"(x in [0, {width}], y in [0, {height}])"
        )
    raise InputError(
        f"{what} ({x:g}, {y:g}) is outside the {frame_name}: with normalize_coords=False "
        "x and y are fractions of its width and height, in [0, 1]"
    )


def to_model_input(
    xy: np.ndarray,
    image_hw: tuple[int, int],
    image_size: int,
    in_pixels: bool,
    device: torch.device | str,
) -> Tensor:
    """Points `xy (..., 2)` (pixels of an `(H, W)` image, or fractions) -> the same points in
    pixels of the `image_size` square model input, float32 on `device`."""
    coords = torch.as_tensor(xy, dtype=torch.float32, device=device)
    if in_pixels:
        coords = coords.clone()
        coords[..., 0] = coords[..., 0] / image_hw[1]
        coords[..., 1] = coords[..., 1] / image_hw[0]
    return coords * image_size


# ---------------------------------------------------------------- image predictor


def _as_batched(array: Any, item_ndim: int, name: str) -> np.ndarray:
    array = _as_float_array(array, name)
    if array.ndim == item_ndim:
        array = array[None]
    if array.ndim != item_ndim + 1:
        raise InputError(f"{name} has shape {array.shape}; expected {item_ndim}-D or batched")
    return array


def _points(point_coords: Any, point_labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """`(N, 2)` / `(B, N, 2)` coords and `(N,)` / `(B, N)` labels -> batched, checked arrays."""
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
    check_labels(labels, "point_labels")
    return coords, labels


def _box_corners(box: Any) -> np.ndarray:
    """Boxes `(4,)` or `(B, 4)` x0, y0, x1, y1 -> corners `(B, 2, 2)` float64 (labels 2, 3)."""
    boxes = _as_batched(box, 1, "box")
    if boxes.shape[-1] != 4:
        raise InputError(f"box must be x0, y0, x1, y1; got shape {boxes.shape}")
    return boxes.reshape(-1, 2, 2)


def _mask_logits(mask_input: Any, device: torch.device) -> Tensor:
    masks = torch.as_tensor(np.asarray(mask_input), dtype=torch.float32, device=device)
    if masks.ndim == 3:
        masks = masks[None]
    if masks.ndim != 4 or masks.shape[1] != 1:
        raise InputError(f"mask_input must be 1xHxW or Bx1xHxW, got {tuple(masks.shape)}")
    return masks


def prepare_prompts(
    point_coords: Any,
    point_labels: Any,
    box: Any,
    mask_input: Any,
    orig_hw: tuple[int, int],
    size: int,
    normalize_coords: bool,
    device: torch.device,
) -> PromptTensors:
    """Check image-predictor prompts (`predict`'s arguments) and map them to the model input.

    `normalize_coords=True`: coordinates are pixels of the `orig_hw` image; False: fractions.
    Raises `InputError` for mismatched lengths, unknown labels, NaNs or prompts outside the image.
    """
    coords: Tensor | None = None
    labels: Tensor | None = None
    if point_coords is not None:
        xy, label_array = _points(point_coords, point_labels)
        check_inside(xy, orig_hw, normalize_coords)
        coords = to_model_input(xy, orig_hw, size, normalize_coords, device)
        labels = torch.as_tensor(label_array, dtype=torch.int32, device=device)
    if box is not None:
        corners = _box_corners(box)
        check_inside(corners, orig_hw, normalize_coords, "box corner")
        box_coords = to_model_input(corners, orig_hw, size, normalize_coords, device)
        box_labels = torch.tensor([BOX_CORNER_LABELS], dtype=torch.int32, device=device)
        box_labels = box_labels.repeat(len(corners), 1)
        if coords is not None and labels is not None:
            if coords.shape[0] != box_coords.shape[0]:
                raise InputError(
                    f"{box_coords.shape[0]} boxes but {coords.shape[0]} point sets were given"
                )
            coords = torch.cat([box_coords, coords], dim=1)
            labels = torch.cat([box_labels, labels], dim=1)
        else:
            coords, labels = box_coords, box_labels
    masks = None if mask_input is None else _mask_logits(mask_input, device)
    return PromptTensors(coords, labels, masks)


# ---------------------------------------------------------------- video predictors


def check_box_first(box: Any, clear_old_points: bool) -> None:
    """A box starts a frame's prompt (its corners come first): `InputError` for a box added
    to clicks kept from before (`clear_old_points=False`)."""
    if box is not None and not clear_old_points:
        raise InputError("a box must come before any click: use clear_old_points=True with a box")


def point_prompt(
    points: Any,
    labels: Any,
    box: Any,
    video_hw: tuple[int, int],
    image_size: int,
    normalize_coords: bool,
    device: torch.device,
) -> PointPrompt:
    """Check clicks `points (N, 2)` with `labels (N,)` and/or one `box (4,)` on a video frame
    of size `video_hw = (H, W)` (pixels, or fractions with `normalize_coords=False`) and map
    them to model-input pixels: coords `(1, N', 2)` float32, labels `(1, N')` int32, the box
    corners (labels 2, 3) first."""
    if (points is None) != (labels is None):
        raise InputError("points and labels must be given together")
    if points is None and box is None:
        raise InputError("give points (with labels) or a box")
    coords = np.zeros((0, 2))
    label_array = np.zeros(0)
    if points is not None:
        point_array = _as_float_array(points, "points")
        if point_array.size % 2:
            raise InputError("points must be (x, y) pairs")
        coords = point_array.reshape(-1, 2)
        label_array = _as_float_array(labels, "labels").reshape(-1)
    if len(coords) != len(label_array):
        raise InputError(f"{len(coords)} points but {len(label_array)} labels were given")
    check_labels(label_array, "labels")
    check_inside(coords, video_hw, normalize_coords, frame_name="video frame")
    if box is not None:
        corners = _as_float_array(box, "box").reshape(-1)
        if corners.size != 4:
            raise InputError(f"box must be x0, y0, x1, y1; got {corners.size} values")
        check_inside(corners, video_hw, normalize_coords, "box corner", "video frame")
        coords = np.concatenate([corners.reshape(2, 2), coords])
        label_array = np.concatenate([BOX_CORNER_LABELS, label_array])
    model_coords = to_model_input(coords[None], video_hw, image_size, normalize_coords, device)
    label_tensor = torch.tensor(label_array, dtype=torch.int32, device=device)[None]
    return PointPrompt(model_coords, label_tensor)


def mask_prompt(mask: Any, image_size: int, device: torch.device) -> Tensor:
    """A 2-D boolean mask `(H, W)` (any size) -> `(1, 1, S, S)` float 0/1 at the model input
    size `S = image_size` (antialiased bilinear resize, then thresholded at 0.5)."""
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
