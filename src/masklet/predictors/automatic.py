"""`SAM2AutomaticMaskGenerator`: segment everything in an image from a grid of point prompts.

Same arguments, defaults, steps and output records as the reference generator (sam2 1.1.0):
for each crop (the whole image, then `crop_n_layers` layers of overlapping tiles) the image is
encoded once, every grid point is decoded as a one-click prompt, masks are filtered by
predicted IoU, stability score and closeness to a crop edge, duplicates are removed by box
NMS within the crop, then across crops (preferring smaller crops).

Work is ordered so that nothing is computed for masks that a filter drops anyway, without
changing any result: the IoU filter runs on low-resolution logits before they are upsampled
(upsampling and the small-region clean-up act on each mask alone), and masks are
run-length encoded only in the crop, then placed in the image after NMS.

Tensor names: `low_res (M, h, w)` decoder logits at a quarter of the model input size,
`logits (M, H, W)` at the crop's size, points `(M, 2)` xy pixels of the crop (or of the image
after uncropping), `clicks` the same points as one-click prompts in model-input pixels
(`PromptTensors`, coords `(B, 1, 2)`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from masklet.amg.boxes import batched_nms, box_area, is_box_near_crop_edge, masks_to_boxes
from masklet.amg.grids import CropBox, build_layer_point_grids, generate_crop_boxes
from masklet.amg.records import OUTPUT_MODES, MaskRecords, stability_score
from masklet.amg.regions import postprocess_small_regions
from masklet.errors import ConfigError
from masklet.io.rle import masks_to_uncompressed_rles, pad_rle
from masklet.model.sam2 import SAM2Model
from masklet.postprocess import fill_holes_and_remove_specks
from masklet.predictors.image import LOW_RES_LOGIT_LIMIT, SAM2ImagePredictor
from masklet.predictors.preprocess import image_to_array
from masklet.predictors.pretrained import load_pretrained
from masklet.predictors.prompts import PromptTensors

#: Masks whose box comes this close (pixels) to a crop edge inside the image are dropped.
CROP_EDGE_TOLERANCE = 20.0


class SAM2AutomaticMaskGenerator:
    """Generate masks for everything in an image (the reference's arguments and defaults).

    Args:
        model: the SAM 2 model (eval mode).
        points_per_side: grid points along each side (`points_per_side**2` prompts); None
            when `point_grids` is given.
        points_per_batch: prompts decoded together (memory vs speed).
        pred_iou_thresh: keep masks whose predicted IoU is above this (0 disables).
        stability_score_thresh: keep masks whose stability score is at least this (0
            disables).
        stability_score_offset: logit offset for the stability score.
        mask_threshold: logit threshold for binary masks.
        box_nms_thresh: box IoU above which NMS drops the lower-scored mask within a crop.
        crop_n_layers: layers of crops (layer i has `(2**i)**2` tiles); 0 = whole image only.
        crop_nms_thresh: box IoU for NMS between crops.
        crop_overlap_ratio: overlap of first-layer crops as a fraction of the short side.
        crop_n_points_downscale_factor: layer i uses `points_per_side / factor**i` points.
        point_grids: explicit `(N, 2)` grids of xy fractions in [0, 1], one per layer.
        min_mask_region_area: fill holes and remove specks up to this area (in pixels of
            the low-resolution masks, `image_size / 4`), as the reference does; 0 disables.
        output_mode: "binary_mask", "uncompressed_rle" or "coco_rle".
        use_m2m: refine each mask once with its own low-resolution logits as mask prompt.
        multimask_output: three masks per point (else one).
    """

    def __init__(
        self,
        model: SAM2Model,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.8,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        mask_threshold: float = 0.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        use_m2m: bool = False,
        multimask_output: bool = True,
    ) -> None:
        self.point_grids = _point_grids(
            points_per_side, point_grids, crop_n_layers, crop_n_points_downscale_factor
        )
        if output_mode not in OUTPUT_MODES:
            raise ConfigError(f"output_mode must be one of {OUTPUT_MODES}, got {output_mode!r}")
        if points_per_batch < 1:
            raise ConfigError(f"points_per_batch must be >= 1, got {points_per_batch}")
        # Encodes each crop and decodes the point batches; the small-region clean-up is done
        # here (`_upsample`), on logits the predictor returns before any clean-up.
        self.predictor = SAM2ImagePredictor(model)
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.mask_threshold = mask_threshold
        self.box_nms_thresh = box_nms_thresh
        self.crop_n_layers = crop_n_layers
        self.crop_nms_thresh = crop_nms_thresh
        self.crop_overlap_ratio = crop_overlap_ratio
        self.crop_n_points_downscale_factor = crop_n_points_downscale_factor
        self.min_mask_region_area = min_mask_region_area
        self.output_mode = output_mode
        self.use_m2m = use_m2m
        self.multimask_output = multimask_output

    postprocess_small_regions = staticmethod(postprocess_small_regions)

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs: Any) -> SAM2AutomaticMaskGenerator:
        """The generator on the official checkpoint `model_id` names (e.g.
        `"facebook/sam2.1-hiera-tiny"`), from masklet's weights cache (downloaded on first
        use). `masklet.build_sam2`'s keywords (`device`, `apply_postprocessing`, ...) build
        the model; the others (`points_per_side`, ...) go to this class."""
        return load_pretrained(cls, model_id, kwargs)

    @torch.no_grad()
    def generate(self, image: Any) -> list[dict[str, Any]]:
        """Masks for everything in `image` (`H x W x 3` uint8 RGB array or PIL image).

        Returns one dict per mask: `segmentation` (bool `(H, W)` array, or an RLE dict per
        `output_mode`), `area` (pixels), `bbox` (xywh), `predicted_iou`, `point_coords`
        (`[[x, y]]` image pixels), `stability_score`, `crop_box` (xywh).
        """
        return self.generate_records(image).to_annotations(self.output_mode)

    @torch.no_grad()
    def generate_records(self, image: Any) -> MaskRecords:
        """`generate` before formatting: the masks as `MaskRecords` (RLEs and tensors)."""
        array = image_to_array(image)
        image_hw = (int(array.shape[0]), int(array.shape[1]))
        crop_boxes, layers = generate_crop_boxes(
            image_hw, self.crop_n_layers, self.crop_overlap_ratio
        )
        records = MaskRecords.concat(
            [self._process_crop(array, box, layer) for box, layer in zip(crop_boxes, layers)]
        )
        if len(crop_boxes) > 1 and len(records) > 0:
            prefer_small_crops = 1 / box_area(records.crop_boxes)
            keep = batched_nms(
                records.boxes.float(),
                prefer_small_crops,
                torch.zeros(len(records), dtype=torch.int64),
                self.crop_nms_thresh,
            )
            records = records.select(keep)
        return records

    def _process_crop(self, image: np.ndarray, crop_box: CropBox, layer: int) -> MaskRecords:
        x0, y0, x1, y1 = crop_box
        crop = image[y0:y1, x0:x1]
        crop_hw = (int(crop.shape[0]), int(crop.shape[1]))
        image_hw = (int(image.shape[0]), int(image.shape[1]))
        self.predictor.set_image(crop)
        points = self.point_grids[layer] * np.array(crop_hw)[None, ::-1]  # (N, 2) crop xy
        batches = [
            self._process_batch(
                points[start : start + self.points_per_batch], crop_hw, crop_box, image_hw
            )
            for start in range(0, len(points), self.points_per_batch)
        ]
        self.predictor.reset_predictor()
        records = MaskRecords.concat(batches)
        keep = batched_nms(
            records.boxes.float(),
            records.iou_predictions,
            torch.zeros(len(records), dtype=torch.int64),
            self.box_nms_thresh,
        )
        records = records.select(keep)
        offset = torch.tensor([x0, y0])
        records.boxes = records.boxes + offset.repeat(2)
        records.points = records.points + offset
        records.rles = [pad_rle(rle, crop_box, image_hw) for rle in records.rles]
        return records

    def _process_batch(
        self,
        points: np.ndarray,
        crop_hw: tuple[int, int],
        crop_box: CropBox,
        image_hw: tuple[int, int],
    ) -> MaskRecords:
        """Decode `points (B, 2)` (crop xy pixels) and keep the masks that pass the filters;
        boxes and points stay in crop coordinates, RLEs at the crop's size."""
        crop_points = torch.as_tensor(points, dtype=torch.float32, device=self.predictor.device)
        clicks = self.predictor.model_input_prompts(points[:, None], np.ones((len(points), 1)))
        low_res, iou = self._decode(clicks, self.multimask_output)
        per_point = low_res.shape[1]
        low_res, iou = low_res.flatten(0, 1), iou.flatten(0, 1)
        crop_points = crop_points.repeat_interleave(per_point, dim=0)
        if self.use_m2m:
            clamped = low_res.clamp(-LOW_RES_LOGIT_LIMIT, LOW_RES_LOGIT_LIMIT)
            low_res, iou = self._refine(clicks, per_point, clamped)
        if self.pred_iou_thresh > 0.0:
            keep = iou > self.pred_iou_thresh
            low_res, iou, crop_points = low_res[keep], iou[keep], crop_points[keep]
        logits = self._upsample(low_res, crop_hw)
        stability = stability_score(logits, self.mask_threshold, self.stability_score_offset)
        if self.stability_score_thresh > 0.0:
            keep = stability >= self.stability_score_thresh
            logits, iou, crop_points, stability = (
                logits[keep],
                iou[keep],
                crop_points[keep],
                stability[keep],
            )
        masks = logits > self.mask_threshold
        boxes = masks_to_boxes(masks)
        keep = ~is_box_near_crop_edge(
            boxes, crop_box, (0, 0, image_hw[1], image_hw[0]), CROP_EDGE_TOLERANCE
        )
        return MaskRecords(
            rles=masks_to_uncompressed_rles(masks[keep]),
            boxes=boxes[keep].cpu(),
            iou_predictions=iou[keep].cpu(),
            points=crop_points[keep].cpu(),
            stability_scores=stability[keep].cpu(),
            crop_boxes=torch.tensor([crop_box], dtype=torch.int64).repeat(int(keep.sum()), 1),
        )

    def _decode(self, prompts: PromptTensors, multimask_output: bool) -> tuple[Tensor, Tensor]:
        """Prompts in model-input pixels (`B` one-click prompts, optionally with mask logits
        `(B, 1, h, w)`) -> unclamped low-res logits `(B, C, h, w)` float32 and IoU predictions
        `(B, C)` float32."""
        low_res, iou = self.predictor.decode_low_res(prompts, multimask_output)
        return low_res.float(), iou.float()

    def _refine(
        self, clicks: PromptTensors, per_point: int, low_res: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Mask-to-mask refinement: each of the `B` clicks again, once per its `per_point`
        masks, with that mask's clamped low-res logits (`low_res (B * per_point, h, w)`) as
        mask prompt, single-mask output."""
        assert clicks.coords is not None and clicks.labels is not None
        coords = clicks.coords.repeat_interleave(per_point, dim=0)
        labels = clicks.labels.repeat_interleave(per_point, dim=0)
        refined: list[tuple[Tensor, Tensor]] = []
        for start in range(0, len(coords), self.points_per_batch):
            stop = start + self.points_per_batch
            prompts = PromptTensors(
                coords[start:stop], labels[start:stop], low_res[start:stop, None]
            )
            masks, iou = self._decode(prompts, multimask_output=False)
            refined.append((masks[:, 0], iou[:, 0]))
        if not refined:
            return low_res, low_res.new_zeros(0)
        return torch.cat([m for m, _ in refined]), torch.cat([i for _, i in refined])

    def _upsample(self, low_res: Tensor, crop_hw: tuple[int, int]) -> Tensor:
        """Low-res logits `(M, h, w)` -> small-region clean-up -> bilinear `(M, H, W)`.

        As in the reference, holes and specks up to `min_mask_region_area` are found at the
        image predictor's threshold (0), whatever `mask_threshold` is."""
        area = self.min_mask_region_area
        cleaned = fill_holes_and_remove_specks(
            low_res[:, None], area, area, self.predictor.mask_threshold
        )
        if cleaned.shape[0] == 0:
            return cleaned.new_zeros(0, *crop_hw)
        return F.interpolate(cleaned, crop_hw, mode="bilinear", align_corners=False)[:, 0]


def _point_grids(
    points_per_side: int | None,
    point_grids: list[np.ndarray] | None,
    crop_n_layers: int,
    downscale_factor: int,
) -> list[np.ndarray]:
    if (points_per_side is None) == (point_grids is None):
        raise ConfigError("give exactly one of points_per_side and point_grids")
    if points_per_side is not None:
        return build_layer_point_grids(points_per_side, crop_n_layers, downscale_factor)
    assert point_grids is not None
    if len(point_grids) < crop_n_layers + 1:
        raise ConfigError(
            f"point_grids has {len(point_grids)} grids; crop_n_layers={crop_n_layers} needs "
            f"{crop_n_layers + 1}"
        )
    return [np.asarray(grid, dtype=np.float64).reshape(-1, 2) for grid in point_grids]
