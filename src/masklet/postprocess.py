"""Mask post-processing on CPU or GPU: connected components (8-connectivity), the one hole
filling and small-region ("sprinkle", speck) removal, and non-overlapping objects.

The reference needs a CUDA extension for these and silently skips them without one; masklet
computes them with plain tensor ops everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def connected_components(mask: Tensor) -> tuple[Tensor, Tensor]:
    """Label 8-connected foreground components of `mask (N, 1, H, W)` (bool or 0/1).

    Returns `labels (N, 1, H, W)` int64 (0 = background; equal labels = same component) and
    `areas (N, 1, H, W)` int64 (each foreground pixel's component size, 0 on background).
    Works by max-label propagation with pointer jumping, so it needs few iterations.
    """
    foreground = mask.bool()
    count = foreground.numel()
    index = torch.arange(1, count + 1, dtype=torch.float64, device=mask.device).view(mask.shape)
    labels = torch.where(foreground, index, 0.0)
    while True:
        spread = F.max_pool2d(labels, kernel_size=3, stride=1, padding=1)
        spread = torch.where(foreground, spread, 0.0)
        flat = spread.flatten()
        # Pointer jumping: adopt the label of the pixel our label points at (never smaller).
        jumped = torch.where(
            foreground, flat[(spread.long().clamp(min=1) - 1).flatten()].view_as(spread), 0.0
        )
        if torch.equal(jumped, labels):
            break
        labels = jumped
    labels_long = labels.long()
    areas = torch.bincount(labels_long.flatten(), minlength=count + 1)[labels_long]
    return labels_long, torch.where(foreground, areas, 0)


def small_components(mask: Tensor, max_area: float) -> Tensor:
    """Pixels of `mask (N, M, H, W)` (bool) whose 8-connected component has area <= `max_area`."""
    if max_area <= 0:
        return torch.zeros_like(mask, dtype=torch.bool)
    labels, areas = connected_components(mask.flatten(0, 1).unsqueeze(1))
    return ((labels > 0) & (areas <= max_area)).reshape(mask.shape)


def fill_holes_and_remove_specks(
    mask_logits: Tensor,
    max_hole_area: float,
    max_speck_area: float,
    threshold: float = 0.0,
    hole_fill_value: float | None = None,
) -> Tensor:
    """Fill small holes and remove small specks ("sprinkles") of `mask_logits (N, M, H, W)`.

    Both are found on the logits as they come in (8-connected, areas in pixels of this
    resolution), so filling a hole never changes which specks count as small: background
    components (logits <= threshold) of area <= `max_hole_area` get `hole_fill_value`
    (default threshold + 10); foreground components (logits > threshold) of area <=
    `max_speck_area` get threshold - 10. An area <= 0 turns that step off. Returns a new
    tensor of the same shape and dtype (or `mask_logits` itself when nothing is to be done).
    """
    if mask_logits.numel() == 0 or (max_hole_area <= 0 and max_speck_area <= 0):
        return mask_logits
    holes = small_components(mask_logits <= threshold, max_hole_area)
    specks = small_components(mask_logits > threshold, max_speck_area)
    fill_value = threshold + 10.0 if hole_fill_value is None else hole_fill_value
    fill = torch.as_tensor(fill_value, dtype=mask_logits.dtype, device=mask_logits.device)
    background = torch.as_tensor(
        threshold - 10.0, dtype=mask_logits.dtype, device=mask_logits.device
    )
    return torch.where(specks, background, torch.where(holes, fill, mask_logits))


def fill_holes(
    mask_logits: Tensor, max_area: float, threshold: float = 0.0, fill_value: float | None = None
) -> Tensor:
    """Only the hole filling of `fill_holes_and_remove_specks`: background components of
    `mask_logits (N, M, H, W)` with area <= `max_area` get `fill_value` (default
    threshold + 10)."""
    return fill_holes_and_remove_specks(mask_logits, max_area, 0.0, threshold, fill_value)


def non_overlapping(mask_logits: Tensor) -> Tensor:
    """Keep, at each pixel, only the highest-scoring object of `mask_logits (N, 1, H, W)`;
    the others are clamped to at most -10 there."""
    if mask_logits.shape[0] <= 1:
        return mask_logits
    winner = mask_logits.argmax(dim=0, keepdim=True)
    objects = torch.arange(mask_logits.shape[0], device=mask_logits.device)[:, None, None, None]
    return torch.where(winner == objects, mask_logits, mask_logits.clamp(max=-10.0))
