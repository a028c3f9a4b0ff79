"""`masklet segment IMAGE --point X,Y[,LABEL] --box X0,Y0,X1,Y1 --mask-in PNG --out DIR`.

Writes `mask.png` (0/255), `overlay.png` and `scores.json` into DIR. With `--multimask` the
three candidate masks are kept as `mask_0.png`, `mask_1.png`, `mask_2.png` (the overlay shows
the best one). Without it, a single click is decoded as three candidates and the best is kept
(SAM's advice for ambiguous single clicks); several prompts give one mask directly.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from masklet.cli.common import add_model_arguments, check_runtime_arguments, load_model
from masklet.errors import InputError
from masklet.io.files import make_output_folder, write_json, write_png
from masklet.io.image_folder import load_rgb_image
from masklet.io.pil_images import read_mask_values
from masklet.io.video_writer import save_overlay_png
from masklet.predictors.image import SAM2ImagePredictor
from masklet.predictors.prompts import CLICK_LABELS, check_inside, check_labels
from masklet.runtime import autocast_for

MASK_PROMPT_LOGIT = 10.0  # |logit| given to a binary --mask-in (SAM 2 uses +-10 for masks)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `segment` command."""
    parser = subparsers.add_parser(
        "segment",
        help="segment an image from clicks, a box and/or a mask",
        description="Segment one image from prompts; writes masks, an overlay and scores.",
    )
    parser.add_argument("image", type=Path, help="JPEG/PNG image")
    parser.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y[,LABEL]",
        help="click in pixels; LABEL 1 = object (default), 0 = background (repeatable)",
    )
    parser.add_argument("--box", default=None, metavar="X0,Y0,X1,Y1", help="box in pixels")
    parser.add_argument("--mask-in", type=Path, default=None, help="rough mask PNG (non-zero)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--multimask", action="store_true", help="keep all three masks")
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def _numbers(text: str, what: str, counts: tuple[int, ...]) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in counts:
        raise InputError(f"{what} {text!r}: expected {' or '.join(map(str, counts))} numbers")
    if not np.isfinite(values).all():
        raise InputError(f"{what} {text!r}: coordinates must be finite numbers (not NaN or inf)")
    return values


def parse_points(texts: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """`["10,20", "30,40,0"]` -> coords `(N, 2)` and labels `(N,)` (None when no point)."""
    if not texts:
        return None, None
    coords, labels = [], []
    for text in texts:
        values = _numbers(text, "--point", (2, 3))
        label = 1 if len(values) == 2 else values[2]
        check_labels(label, f"--point {text!r}: LABEL", CLICK_LABELS)
        coords.append(values[:2])
        labels.append(int(label))
    return np.array(coords), np.array(labels)


def parse_box(text: str | None) -> np.ndarray | None:
    """`"x0,y0,x1,y1"` -> `(4,)` array, checked to have x0 < x1 and y0 < y1."""
    if text is None:
        return None
    x0, y0, x1, y1 = _numbers(text, "--box", (4,))
    if x0 >= x1 or y0 >= y1:
        raise InputError(f"--box {text!r}: needs x0 < x1 and y0 < y1")
    return np.array([x0, y0, x1, y1])


def mask_input_logits(path: Path, image_hw: tuple[int, int], image_size: int) -> np.ndarray:
    """A binary mask image (non-zero = object) of the image's displayed size -> `(1, S/4, S/4)`
    low-res logits (+-10). Like the image, the mask is read as displayed (EXIF orientation
    applied), so it is given in the same frame as the clicks."""
    if not path.is_file():
        raise InputError(f"--mask-in file not found: {path}")
    mask = read_mask_values(path, what="--mask-in mask") != 0
    if mask.shape != image_hw:
        raise InputError(
            f"--mask-in {path} is {mask.shape[1]}x{mask.shape[0]}, "
            f"the image is {image_hw[1]}x{image_hw[0]}"
        )
    low_res = F.interpolate(
        torch.from_numpy(mask.astype(np.float32))[None, None],
        size=(image_size // 4, image_size // 4),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )[0]
    return np.where(low_res.numpy() >= 0.5, MASK_PROMPT_LOGIT, -MASK_PROMPT_LOGIT)


def _write_outputs(
    out: Path, image: np.ndarray, masks: np.ndarray, scores: np.ndarray, summary: dict
) -> list[str]:
    best = int(np.argmax(scores))
    names = [f"mask_{i}.png" for i in range(len(masks))] if len(masks) > 1 else ["mask.png"]
    for name, mask in zip(names, masks, strict=True):
        write_png(out / name, mask.astype(np.uint8) * 255)
    save_overlay_png(out / "overlay.png", image, {1: masks[best]})
    summary.update(scores=[float(s) for s in scores], best=best, masks=names)
    write_json(out / "scores.json", summary, indent=2)
    return [*names, "overlay.png", "scores.json"]


def run(args: argparse.Namespace) -> int:
    """Handler of `masklet segment`."""
    choice = check_runtime_arguments(args)
    coords, labels = parse_points(args.point)
    box = parse_box(args.box)
    if coords is None and box is None and args.mask_in is None:
        raise InputError("no prompt given: add --point X,Y, --box X0,Y0,X1,Y1 or --mask-in PNG")
    image = load_rgb_image(args.image)
    image_hw = (int(image.shape[0]), int(image.shape[1]))
    if coords is not None:
        check_inside(coords, image_hw)
    if box is not None:
        check_inside(box, image_hw, what="box corner")
    mask_input = None
    if args.mask_in is not None:
        mask_input = mask_input_logits(args.mask_in, image.shape[:2], choice.image_size)
    make_output_folder(args.out)
    loaded = load_model(args)
    predictor = SAM2ImagePredictor(loaded.model)
    single_click = coords is not None and len(coords) == 1 and box is None and mask_input is None
    with torch.inference_mode(), autocast_for(loaded.device, loaded.dtype):
        predictor.set_image(image)
        masks, scores, _ = predictor.predict(
            point_coords=coords,
            point_labels=labels,
            box=box,
            mask_input=mask_input,
            multimask_output=args.multimask or single_click,
        )
    if not args.multimask:
        best = int(np.argmax(scores))
        masks, scores = masks[best : best + 1], scores[best : best + 1]
    summary = {
        "image": str(args.image),
        "model": loaded.preset,
        "checkpoint": str(loaded.checkpoint),
        "points": [] if coords is None else coords.tolist(),
        "labels": [] if labels is None else labels.tolist(),
        "box": None if box is None else box.tolist(),
        "mask_in": None if args.mask_in is None else str(args.mask_in),
    }
    written = _write_outputs(args.out, image, masks, scores, summary)
    print(
        f"wrote {', '.join(str(args.out / n) for n in written)} (IoU scores {np.round(scores, 3)})"
    )
    return 0
