"""`masklet auto IMAGE --out DIR`: segment everything in a photo (automatic mask generator).

Writes `masks/mask_NNN.png` (one binary PNG per mask, by decreasing predicted IoU) or, with
`--label-png`, a single `labels.png` (uint16, 0 = background, mask i = i + 1; where masks
overlap the higher-ranked one wins), plus `overlay.png` and `masks.json` (per mask: area,
bbox xywh, predicted IoU, stability score, prompt point, crop box, file).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from masklet.cli.common import add_model_arguments, check_runtime_arguments, load_model
from masklet.io.files import make_output_folder, write_json
from masklet.io.image_folder import load_rgb_image
from masklet.io.masks import write_ranked_masks
from masklet.io.video_writer import save_overlay_png
from masklet.predictors.automatic import SAM2AutomaticMaskGenerator
from masklet.runtime import autocast_for

#: Masks drawn on the overlay at most (largest first); all are written to files and JSON.
MAX_OVERLAY_MASKS = 255


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("auto", help="segment everything in an image")
    parser.add_argument("image", type=Path, help="photo to segment")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--points-per-batch", type=int, default=64)
    parser.add_argument("--pred-iou-thresh", type=float, default=0.8)
    parser.add_argument("--stability-score-thresh", type=float, default=0.95)
    parser.add_argument("--stability-score-offset", type=float, default=1.0)
    parser.add_argument("--mask-threshold", type=float, default=0.0)
    parser.add_argument("--box-nms-thresh", type=float, default=0.7)
    parser.add_argument("--crop-n-layers", type=int, default=0)
    parser.add_argument("--crop-nms-thresh", type=float, default=0.7)
    parser.add_argument("--crop-overlap-ratio", type=float, default=512 / 1500)
    parser.add_argument("--crop-n-points-downscale-factor", type=int, default=1)
    parser.add_argument("--min-mask-region-area", type=int, default=0)
    parser.add_argument("--use-m2m", action="store_true", help="one mask-to-mask refinement")
    parser.add_argument("--single-mask", action="store_true", help="one mask per point")
    parser.add_argument("--label-png", action="store_true", help="one label PNG, not per mask")
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def _generator_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "points_per_side": args.points_per_side,
        "points_per_batch": args.points_per_batch,
        "pred_iou_thresh": args.pred_iou_thresh,
        "stability_score_thresh": args.stability_score_thresh,
        "stability_score_offset": args.stability_score_offset,
        "mask_threshold": args.mask_threshold,
        "box_nms_thresh": args.box_nms_thresh,
        "crop_n_layers": args.crop_n_layers,
        "crop_nms_thresh": args.crop_nms_thresh,
        "crop_overlap_ratio": args.crop_overlap_ratio,
        "crop_n_points_downscale_factor": args.crop_n_points_downscale_factor,
        "min_mask_region_area": args.min_mask_region_area,
        "use_m2m": args.use_m2m,
        "multimask_output": not args.single_mask,
    }


def run(args: argparse.Namespace) -> int:
    check_runtime_arguments(args)
    image = load_rgb_image(args.image)
    make_output_folder(args.out)
    loaded = load_model(args)
    generator = SAM2AutomaticMaskGenerator(loaded.model, **_generator_options(args))
    with torch.inference_mode(), autocast_for(loaded.device, loaded.dtype):
        records = generator.generate(image)
    segmentations = [record["segmentation"] for record in records]
    files = write_ranked_masks(args.out, segmentations, label_png=args.label_png)
    largest_first = sorted(range(len(records)), key=lambda i: -records[i]["area"])
    overlay = {
        rank + 1: records[i]["segmentation"]
        for rank, i in enumerate(largest_first[:MAX_OVERLAY_MASKS])
    }
    save_overlay_png(args.out / "overlay.png", image, overlay, draw_ids=False)
    summary = {
        "model": loaded.preset,
        "checkpoint": str(loaded.checkpoint),
        "model_image_size": loaded.image_size,
        "dtype": str(loaded.dtype),
        "image_size": [int(image.shape[0]), int(image.shape[1])],
        "settings": _generator_options(args),
        "masks": [
            {key: value for key, value in record.items() if key != "segmentation"} | {"file": name}
            for record, name in zip(records, files)
        ],
    }
    write_json(args.out / "masks.json", summary, indent=2)
    print(f"wrote {len(records)} masks to {args.out} (masks.json, overlay.png)")
    return 0
