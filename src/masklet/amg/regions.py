"""Full-resolution small-region clean-up of generated masks, with 8-connected components
(`masklet.postprocess`).

`remove_small_regions` fills holes or drops islands strictly smaller than an area, the rule of
the reference's (unused by `generate`) `postprocess_small_regions`, which calls OpenCV's
`connectedComponentsWithStats` with 8-connectivity. What `min_mask_region_area` does during
`generate` (on the low-resolution logits) is `masklet.postprocess.fill_holes_and_remove_specks`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from masklet.amg.boxes import batched_nms, masks_to_boxes
from masklet.amg.records import MaskRecords
from masklet.io.rle import masks_to_uncompressed_rles, rle_to_mask
from masklet.postprocess import connected_components


def remove_small_regions(mask: np.ndarray, min_area: float, mode: str) -> tuple[np.ndarray, bool]:
    """Fill holes (`mode="holes"`) or drop islands (`mode="islands"`) with area < `min_area`
    in an `(H, W)` bool mask. When every island is small, the largest (the first in raster
    order on ties) is kept. Returns the mask and whether any region counted as small."""
    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', got {mode!r}")
    fill_holes = mode == "holes"
    working = torch.from_numpy(np.asarray(mask, dtype=bool) ^ fill_holes)[None, None]
    labels, areas = connected_components(working)
    labels, areas = labels[0, 0], areas[0, 0]
    small = (labels > 0) & (areas < min_area)
    if not bool(small.any()):
        return mask, False
    if fill_holes:
        return (~working[0, 0] | small).numpy(), True
    kept = (labels > 0) & ~small
    if not bool(kept.any()):
        first_largest = int(torch.argmax((areas == areas.max()).flatten().to(torch.uint8)))
        kept = labels == labels.flatten()[first_largest]
    return kept.numpy(), True


def postprocess_small_regions(
    records: MaskRecords, min_area: float, nms_thresh: float
) -> MaskRecords:
    """Fill holes and drop islands smaller than `min_area` pixels in every mask, then rerun box
    NMS preferring masks that needed no change (the reference's `postprocess_small_regions`;
    its `generate` does not call it). Returns new records; `records` is left as it was."""
    if len(records) == 0:
        return records
    masks = []
    unchanged = []
    for rle in records.rles:
        mask, holes_changed = remove_small_regions(rle_to_mask(rle), min_area, "holes")
        mask, islands_changed = remove_small_regions(mask, min_area, "islands")
        masks.append(mask)
        unchanged.append(not (holes_changed or islands_changed))
    stacked = torch.from_numpy(np.stack(masks))
    boxes = masks_to_boxes(stacked)
    keep = batched_nms(
        boxes.float(),
        torch.tensor(unchanged, dtype=torch.float32),
        torch.zeros(len(records), dtype=torch.int64),
        nms_thresh,
    )
    rles = list(records.rles)
    new_boxes = records.boxes.clone()
    for index in keep.tolist():
        if not unchanged[index]:
            rles[index] = masks_to_uncompressed_rles(stacked[index : index + 1])[0]
            new_boxes[index] = boxes[index]
    return replace(records, rles=rles, boxes=new_boxes).select(keep)
