"""Automatic mask generator benchmark: masklet vs the reference (sam2==1.1.0), same weights.

Both generators run on the bundled photo with the same settings in fp32, timed alternately
(median of `--runs`). Random weights give near-zero mask logits, so the hypernetwork output
layers are scaled (as in tests/test_parity_automatic.py) and the thresholds lowered so that
masks survive every filter. Prints the median times, their ratio (masklet / reference; target
<= 0.75) and whether both returned the same masks.

The reference's NMS here is the test-only torchvision stand-in in tests/oracle.py (a Python
loop over kept boxes, like torchvision's C++ loop but slower per box).
Run: `python benchmarks/automatic.py [--image-size 512 --points-per-side 16 --runs 3]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import masklet
from image import interleaved_medians, load_photo
from oracle import build_oracle, install_torchvision_stand_in, oracle_image_predictor

SETTINGS: dict[str, Any] = dict(
    pred_iou_thresh=0.52,
    stability_score_thresh=0.1,
    stability_score_offset=0.5,
    mask_threshold=2.0,
    box_nms_thresh=0.95,
)


def build_pair(preset: str, image_size: int, directory: str, **options: Any) -> tuple[Any, Any]:
    oracle_model = build_oracle(preset, image_size)
    with torch.no_grad():
        for mlp in oracle_model.sam_mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(40.0)
            mlp.layers[-1].bias.mul_(40.0)
    path = Path(directory) / "automatic_bench.pt"
    torch.save({"model": oracle_model.state_dict()}, path)
    model = masklet.build_sam2(preset, checkpoint=path, image_size=image_size)
    install_torchvision_stand_in()
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator as Reference

    settings = {**SETTINGS, **options}
    reference = Reference(oracle_model, **settings)
    reference.predictor._bb_feat_sizes = oracle_image_predictor(oracle_model)._bb_feat_sizes
    return masklet.SAM2AutomaticMaskGenerator(model, **settings), reference


def same_masks(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> bool:
    return len(ours) == len(theirs) and all(
        np.array_equal(a["segmentation"], b["segmentation"])
        and abs(a["predicted_iou"] - b["predicted_iou"]) <= 1e-4
        for a, b in zip(ours, theirs)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="sam2.1_hiera_t")
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--points-per-side", type=int, default=16)
    parser.add_argument("--crop-n-layers", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    image = load_photo()
    with tempfile.TemporaryDirectory() as directory:
        ours, reference = build_pair(
            args.preset,
            args.image_size,
            directory,
            points_per_side=args.points_per_side,
            crop_n_layers=args.crop_n_layers,
        )
        with torch.inference_mode():
            outputs = {"masklet": ours.generate(image), "reference": reference.generate(image)}
            timed = interleaved_medians(
                {
                    "masklet": lambda: ours.generate(image),
                    "reference": lambda: reference.generate(image),
                },
                args.runs,
            )
    print(
        f"{args.preset} @ {args.image_size}px, {args.points_per_side}^2 points, crop layers "
        f"{args.crop_n_layers}, image {image.shape[1]}x{image.shape[0]}, "
        f"{torch.get_num_threads()} threads, fp32, median of {args.runs}"
    )
    for name, seconds in timed.items():
        print(f"  {name:9s} {seconds:8.3f} s  ({len(outputs[name])} masks)")
    print(f"  ratio masklet/reference: {timed['masklet'] / timed['reference']:.3f}")
    print(f"  same masks: {same_masks(outputs['masklet'], outputs['reference'])}")


if __name__ == "__main__":
    main()
