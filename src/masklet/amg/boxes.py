"""Box utilities: areas, mask bounding boxes, crop-edge tests and batched non-maximum
suppression (NMS), all vectorised in torch.

Boxes are `(N, 4)` xyxy tensors. Boxes computed from masks are inclusive pixel indices
(`x1` is the last foreground column), as the reference does; crop boxes are end-exclusive.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

#: Rows of the pairwise IoU matrix computed at once (bounds NMS memory to ~N * 4096 floats).
NMS_ROW_CHUNK = 4096


def box_area(boxes: Tensor) -> Tensor:
    """`(N, 4)` xyxy -> `(N,)` areas `(x1 - x0) * (y1 - y0)`."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """`(..., 4)` xyxy -> xywh."""
    return torch.cat([boxes[..., :2], boxes[..., 2:] - boxes[..., :2]], dim=-1)


def masks_to_boxes(masks: Tensor) -> Tensor:
    """Bounding boxes `(N, 4)` int64 (inclusive xyxy) of `masks (N, H, W)` bool; an empty mask
    gets `[0, 0, 0, 0]`."""
    count, height, width = masks.shape
    if count == 0 or height == 0 or width == 0:
        return torch.zeros(count, 4, dtype=torch.int64, device=masks.device)
    rows = masks.any(dim=2).to(torch.uint8)  # (N, H)
    cols = masks.any(dim=1).to(torch.uint8)  # (N, W)
    top = rows.argmax(dim=1)
    bottom = height - 1 - rows.flip(1).argmax(dim=1)
    left = cols.argmax(dim=1)
    right = width - 1 - cols.flip(1).argmax(dim=1)
    boxes = torch.stack([left, top, right, bottom], dim=1)
    nonempty = rows.any(dim=1, keepdim=True)
    return boxes * nonempty


def is_box_near_crop_edge(
    boxes: Tensor, crop_box: Sequence[int], image_box: Sequence[int], atol: float = 20.0
) -> Tensor:
    """`(N,)` bool: a box (in crop coordinates) lies within `atol` pixels of an edge of its
    crop that is not also an edge of the image (such masks are likely cut by the crop)."""
    offset = torch.tensor([crop_box[0], crop_box[1]] * 2, device=boxes.device)
    image_boxes = (boxes + offset).float()
    crop = torch.tensor(crop_box, dtype=torch.float32, device=boxes.device)
    image = torch.tensor(image_box, dtype=torch.float32, device=boxes.device)
    near_crop = (image_boxes - crop).abs() <= atol
    near_image = (image_boxes - image).abs() <= atol
    return (near_crop & ~near_image).any(dim=1)


def _overlap_matrix(boxes: Tensor, categories: Tensor, iou_threshold: float) -> np.ndarray:
    """`(N, N)` bool: box `j > i` of the same category overlaps box `i` by IoU above the
    threshold. IoU is `inter / (area_i + area_j - inter)` in the boxes' dtype, compared in
    float64 (so a threshold that rounds in float32 is still applied exactly); 0/0 never
    suppresses."""
    count = boxes.shape[0]
    areas = box_area(boxes)
    result = np.zeros((count, count), dtype=bool)
    for start in range(0, count, NMS_ROW_CHUNK):
        rows = boxes[start : start + NMS_ROW_CHUNK]
        top_left = torch.maximum(rows[:, None, :2], boxes[None, :, :2])
        bottom_right = torch.minimum(rows[:, None, 2:], boxes[None, :, 2:])
        extent = (bottom_right - top_left).clamp(min=0)
        inter = extent[..., 0] * extent[..., 1]
        iou = inter / (areas[start : start + NMS_ROW_CHUNK, None] + areas[None, :] - inter)
        over = iou.double() > iou_threshold
        over &= categories[start : start + NMS_ROW_CHUNK, None] == categories[None, :]
        index = torch.arange(start, start + rows.shape[0], device=boxes.device)
        over &= index[:, None] < torch.arange(count, device=boxes.device)[None, :]
        result[start : start + rows.shape[0]] = over.cpu().numpy()
    return result


def _vanilla_path_threshold(device: torch.device) -> int:
    """Box count above which torchvision's `batched_nms` loops over categories and re-sorts
    the kept boxes by score (it does so above 4000 coordinates on CPU, 20000 elsewhere)."""
    return 1000 if device.type == "cpu" else 5000


def batched_nms(boxes: Tensor, scores: Tensor, categories: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression within each category, with torchvision's results.

    Args:
        boxes: `(N, 4)` xyxy, float.
        scores: `(N,)`; higher is better. Equal scores are ordered as `torch.sort(scores,
            descending=True)` orders them, as torchvision does (so which of two tied,
            overlapping boxes survives is the same as in the reference).
        categories: `(N,)` integer category of each box; boxes of different categories never
            suppress each other (exactly, with no coordinate offsets).
        iou_threshold: a box is dropped when its IoU with a kept, better box exceeds this.

    Returns:
        `(K,)` int64 indices of the kept boxes by decreasing score. Above torchvision's
        vanilla-path size the kept indices are re-sorted by score as torchvision does there.
    """
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True).indices
    overlaps = _overlap_matrix(boxes[order], categories[order], iou_threshold)
    suppressed = np.zeros(len(order), dtype=bool)
    kept: list[int] = []
    for rank in range(len(order)):
        if suppressed[rank]:
            continue
        kept.append(rank)
        suppressed |= overlaps[rank]
    keep = order[torch.as_tensor(kept, dtype=torch.int64, device=boxes.device)]
    if boxes.shape[0] > _vanilla_path_threshold(boxes.device):
        keep = keep.sort().values
        keep = keep[torch.sort(scores[keep], descending=True).indices]
    return keep
