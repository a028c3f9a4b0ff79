"""Building blocks of automatic mask generation: point grids and crop boxes, box NMS, mask
boxes, stability scores, small-region clean-up and `MaskRecords` (masks kept as RLEs of
`masklet.io.rle`)."""

from masklet.amg.boxes import batched_nms, box_area, masks_to_boxes
from masklet.amg.grids import build_layer_point_grids, build_point_grid, generate_crop_boxes
from masklet.amg.records import MaskRecords, stability_score
from masklet.amg.regions import remove_small_regions

__all__ = [
    "MaskRecords",
    "batched_nms",
    "box_area",
    "build_layer_point_grids",
    "build_point_grid",
    "generate_crop_boxes",
    "masks_to_boxes",
    "remove_small_regions",
    "stability_score",
]
