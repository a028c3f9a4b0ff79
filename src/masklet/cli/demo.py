"""`masklet demo`: segment a photo from one click and write the mask, an overlay and scores.

Needs an official checkpoint: `--checkpoint PATH`, or `--model NAME` (downloaded on first use
into the cache; offline this fails with one line saying how to get the file).
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from masklet.build import build_sam2
from masklet.errors import InputError
from masklet.io.files import make_output_folder, write_json
from masklet.io.image_folder import load_rgb_image
from masklet.io.masks import write_binary_png
from masklet.io.video_writer import save_overlay_png
from masklet.predictors.image import SAM2ImagePredictor
from masklet.runtime import autocast_for, resolve_device, resolve_dtype
from masklet.weights import resolve_checkpoint

DEFAULT_MODEL = "sam2.1_hiera_t"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="segment a sample photo from one click")
    parser.add_argument("--model", default=None, help=f"preset to use (default {DEFAULT_MODEL})")
    parser.add_argument("--checkpoint", type=Path, default=None, help="official .pt file")
    parser.add_argument("--image", type=Path, default=None, help="photo (default: bundled cat)")
    parser.add_argument("--point", default=None, help="click X,Y in pixels (default: centre)")
    parser.add_argument("--out", type=Path, default=Path("masklet-demo"), help="output folder")
    parser.add_argument("--dtype", default="auto", help="auto, float32 or bfloat16")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--image-size", type=int, default=1024, help="model input side")
    parser.set_defaults(handler=run)


def _load_image(path: Path | None) -> np.ndarray:
    if path is None:
        with resources.as_file(resources.files("masklet") / "assets" / "chelsea.jpg") as bundled:
            return load_rgb_image(bundled)
    return load_rgb_image(path)


def _parse_point(text: str | None, image: np.ndarray) -> np.ndarray:
    if text is None:
        return np.array([[image.shape[1] / 2, image.shape[0] / 2]])
    try:
        x, y = (float(part) for part in text.split(","))
    except ValueError:
        raise InputError(f"--point must be X,Y (two numbers), got {text!r}") from None
    return np.array([[x, y]])


def run(args: argparse.Namespace) -> int:
    model_name = args.model or DEFAULT_MODEL
    checkpoint = resolve_checkpoint(
        model=None if args.checkpoint else model_name, checkpoint=args.checkpoint
    )
    image = _load_image(args.image)
    point = _parse_point(args.point, image)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    model = build_sam2(model_name, checkpoint=checkpoint, image_size=args.image_size, device=device)
    predictor = SAM2ImagePredictor(model)
    with torch.inference_mode(), autocast_for(device, dtype):
        predictor.set_image(image)
        masks, scores, _ = predictor.predict(point_coords=point, point_labels=np.array([1]))
    best = int(np.argmax(scores))
    make_output_folder(args.out)
    write_binary_png(args.out / "mask.png", masks[best])
    save_overlay_png(args.out / "overlay.png", image, {1: masks[best]})
    summary = {
        "model": model_name,
        "checkpoint": str(checkpoint),
        "dtype": str(dtype),
        "point": point[0].tolist(),
        "scores": [float(s) for s in scores],
        "best": best,
    }
    write_json(args.out / "scores.json", summary, indent=2)
    print(f"wrote {args.out}/mask.png, overlay.png, scores.json (IoU scores {np.round(scores, 3)})")
    return 0
