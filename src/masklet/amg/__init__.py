"""Building blocks of automatic mask generation: point grids and crop boxes, box NMS, mask
boxes, run-length encoding, stability scores, small-region clean-up and `MaskRecords`."""

from masklet.amg.boxes import batched_nms, box_area, masks_to_boxes
from masklet.amg.grids import build_layer_point_grids, build_point_grid, generate_crop_boxes
from masklet.amg.records import MaskRecords, stability_score
from masklet.amg.regions import remove_small_regions
from masklet.amg.rle import masks_to_rles, rle_area, rle_to_mask, to_coco_rle

__all__ = [
    "MaskRecords",
    "batched_nms",
    "box_area",
    "build_layer_point_grids",
    "build_point_grid",
    "generate_crop_boxes",
    "masks_to_boxes",
    "masks_to_rles",
    "remove_small_regions",
    "rle_area",
    "rle_to_mask",
    "stability_score",
    "to_coco_rle",
]
