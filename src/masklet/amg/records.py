"""`MaskRecords`: the masks found so far and their data, one row per mask.

Masks are kept as uncompressed RLEs (see `masklet.io.rle`) so that many full-resolution
masks fit in memory; every other field is a tensor whose first dimension is the mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from masklet.amg.boxes import xyxy_to_xywh
from masklet.io.rle import RLE, compress_rle, rle_area, rle_to_mask

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")


def stability_score(mask_logits: Tensor, threshold: float, offset: float) -> Tensor:
    """IoU of the masks thresholded at `threshold + offset` and `threshold - offset`.

    `mask_logits (N, H, W)` -> `(N,)` float32; the first mask lies inside the second, so the
    IoU is a ratio of pixel counts (NaN when both are empty).
    """
    inner = _count(mask_logits > threshold + offset)
    outer = _count(mask_logits > threshold - offset)
    return inner.float() / outer.float()


def _count(masks: Tensor) -> Tensor:
    """Foreground pixels of `masks (N, H, W)` bool, summed as bytes (faster than bool sums)."""
    return masks.view(torch.uint8).sum(dim=(-2, -1), dtype=torch.int32)


@dataclass
class MaskRecords:
    """Masks with their boxes and scores, in original-image coordinates.

    Fields: `rles` (N RLEs), `boxes (N, 4)` int64 inclusive xyxy, `iou_predictions (N,)`,
    `points (N, 2)` float32 xy of the prompt point, `stability_scores (N,)`,
    `crop_boxes (N, 4)` int64 end-exclusive xyxy of the crop each mask was found in.
    """

    rles: list[RLE]
    boxes: Tensor
    iou_predictions: Tensor
    points: Tensor
    stability_scores: Tensor
    crop_boxes: Tensor

    def __len__(self) -> int:
        return len(self.rles)

    @classmethod
    def empty(cls) -> MaskRecords:
        return cls(
            rles=[],
            boxes=torch.zeros(0, 4, dtype=torch.int64),
            iou_predictions=torch.zeros(0),
            points=torch.zeros(0, 2),
            stability_scores=torch.zeros(0),
            crop_boxes=torch.zeros(0, 4, dtype=torch.int64),
        )

    def select(self, index: Tensor) -> MaskRecords:
        """Rows picked by `index`: `(N,)` bool or `(K,)` int64 (in that order)."""
        if index.dtype == torch.bool:
            index = index.nonzero().flatten()
        positions = index.tolist()
        return MaskRecords(
            rles=[self.rles[i] for i in positions],
            boxes=self.boxes[index],
            iou_predictions=self.iou_predictions[index],
            points=self.points[index],
            stability_scores=self.stability_scores[index],
            crop_boxes=self.crop_boxes[index],
        )

    @classmethod
    def concat(cls, parts: list[MaskRecords]) -> MaskRecords:
        if not parts:
            return cls.empty()
        return cls(
            rles=[rle for part in parts for rle in part.rles],
            boxes=torch.cat([part.boxes for part in parts]),
            iou_predictions=torch.cat([part.iou_predictions for part in parts]),
            points=torch.cat([part.points for part in parts]),
            stability_scores=torch.cat([part.stability_scores for part in parts]),
            crop_boxes=torch.cat([part.crop_boxes for part in parts]),
        )

    def to_annotations(self, output_mode: str) -> list[dict[str, Any]]:
        """One dict per mask (the reference's record format): `segmentation` (bool `(H, W)`
        array, uncompressed RLE or COCO RLE per `output_mode`), `area`, `bbox` (xywh),
        `predicted_iou`, `point_coords` ([[x, y]]), `stability_score`, `crop_box` (xywh)."""
        boxes = xyxy_to_xywh(self.boxes.float()).tolist()
        crop_boxes = xyxy_to_xywh(self.crop_boxes.float()).tolist()
        points = self.points.float().tolist()
        ious = self.iou_predictions.float().tolist()
        stabilities = self.stability_scores.float().tolist()
        annotations = []
        for index, rle in enumerate(self.rles):
            annotations.append(
                {
                    "segmentation": _segmentation(rle, output_mode),
                    "area": rle_area(rle),
                    "bbox": boxes[index],
                    "predicted_iou": ious[index],
                    "point_coords": [points[index]],
                    "stability_score": stabilities[index],
                    "crop_box": crop_boxes[index],
                }
            )
        return annotations


def _segmentation(rle: RLE, output_mode: str) -> Any:
    if output_mode == "binary_mask":
        return rle_to_mask(rle)
    if output_mode == "coco_rle":
        return compress_rle(rle)
    return rle
