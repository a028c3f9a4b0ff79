"""`masklet demo`: segment a photo from one click and write the mask, an overlay and scores.

Runs offline as installed: without `--model/--checkpoint` it uses an official checkpoint that is
already in the cache, else `masklet_nano` with the weights shipped in the package, at the
model's own input size (`masklet.cli.common`). The photo defaults to the bundled cat.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from masklet.cli.common import add_model_arguments, check_runtime_arguments, load_model
from masklet.errors import InputError
from masklet.io.files import make_output_folder, write_json
from masklet.io.image_folder import load_rgb_image
from masklet.io.masks import write_binary_png
from masklet.io.video_writer import save_overlay_png
from masklet.predictors.image import SAM2ImagePredictor
from masklet.runtime import autocast_for


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="segment a sample photo from one click")
    parser.add_argument("--image", type=Path, default=None, help="photo (default: bundled cat)")
    parser.add_argument("--point", default=None, help="click X,Y in pixels (default: centre)")
    parser.add_argument("--out", type=Path, default=Path("masklet-demo"), help="output folder")
    add_model_arguments(parser)
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
    check_runtime_arguments(args)
    image = _load_image(args.image)
    point = _parse_point(args.point, image)
    loaded = load_model(args)
    predictor = SAM2ImagePredictor(loaded.model)
    with torch.inference_mode(), autocast_for(loaded.device, loaded.dtype):
        predictor.set_image(image)
        masks, scores, _ = predictor.predict(point_coords=point, point_labels=np.array([1]))
    best = int(np.argmax(scores))
    make_output_folder(args.out)
    write_binary_png(args.out / "mask.png", masks[best])
    save_overlay_png(args.out / "overlay.png", image, {1: masks[best]})
    summary = {
        "model": loaded.preset,
        "checkpoint": str(loaded.checkpoint),
        "image_size": loaded.image_size,
        "dtype": str(loaded.dtype),
        "point": point[0].tolist(),
        "scores": [float(s) for s in scores],
        "best": best,
    }
    write_json(args.out / "scores.json", summary, indent=2)
    print(f"wrote {args.out}/mask.png, overlay.png, scores.json (IoU scores {np.round(scores, 3)})")
    return 0
