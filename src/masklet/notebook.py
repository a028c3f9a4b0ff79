"""Helpers for notebooks: write masks in the `masklet track` formats, show masks over a frame.

    for frame_idx, obj_ids, logits in predictor.propagate_in_video(state):
        masks = {obj_id: logits[i, 0] > 0 for i, obj_id in enumerate(obj_ids)}
        masklet.notebook.write_masks("out", frame_idx, masks, format="davis")
    masklet.notebook.show_masks(frame, masks)

`masklet.read_frames` reads frames of any source.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from masklet.errors import InputError, MaskletError
from masklet.io.mask_writers import (
    FORMATS,
    DavisWriter,
    ObjectPngWriter,
    VideoMeta,
    add_frame_to_coco_json,
    add_frame_to_sav_json,
)
from masklet.io.video_writer import overlay_masks, save_overlay_png

NOTEBOOK_FORMATS = FORMATS  # overlay: one PNG per frame here, a video in `masklet track`


def _as_bool_masks(masks: Mapping[int, Any]) -> dict[int, np.ndarray]:
    """`{obj_id: mask}` of bool arrays; tensors/arrays of floats count > 0 as foreground."""
    result = {}
    for obj_id, mask in masks.items():
        array = mask.detach().cpu().numpy() if isinstance(mask, Tensor) else np.asarray(mask)
        while array.ndim > 2 and array.shape[0] == 1:
            array = array[0]
        if array.ndim != 2:
            raise InputError(f"mask of object {obj_id} must be (H, W), got shape {array.shape}")
        result[int(obj_id)] = array > 0 if array.dtype != bool else array
    return result


def write_masks(
    out_dir: str | Path,
    frame_idx: int,
    masks: Mapping[int, Any],
    format: str = "davis",
    *,
    image: Any = None,
    palette: np.ndarray | None = None,
    video_id: str = "video",
) -> list[Path]:
    """Write one frame's `{obj_id: (H, W) mask}` like `masklet track --format FORMAT` does.

    davis: `out_dir/%05d.png` (label = object id, `palette` default VOC); pngs:
    `out_dir/<obj:03d>/%05d.png`; sav / coco: the frame is added to (or replaces it in)
    `out_dir/<video_id>_auto.json` / `<video_id>_coco.json` (SA-V rows are video frames,
    stride 1); overlay: `out_dir/overlay_%05d.png` drawn over `image` (required; the CLI
    writes a video instead). Masks may be bool arrays, or logits/tensors (> 0 is foreground).
    Returns the written paths.
    """
    if format not in NOTEBOOK_FORMATS:
        known = ", ".join(NOTEBOOK_FORMATS)
        raise InputError(f"unsupported format {format!r}; choose from {known}")
    out = Path(out_dir)
    binary = _as_bool_masks(masks)
    if not binary and image is None:
        raise InputError("no masks given: pass at least one object (or an image for overlay)")
    height, width = next(iter(binary.values())).shape if binary else np.asarray(image).shape[:2]
    meta = VideoMeta(video_id, height, width, None, None, tuple(sorted(binary)), palette)
    if format == "davis":
        DavisWriter(out, meta).write(frame_idx, binary, None)
        return [out / f"{frame_idx:05d}.png"]
    if format == "pngs":
        ObjectPngWriter(out).write(frame_idx, binary, None)
        return [out / f"{obj_id:03d}" / f"{frame_idx:05d}.png" for obj_id in sorted(binary)]
    if format == "sav":
        path = out / f"{video_id}_auto.json"
        add_frame_to_sav_json(path, frame_idx, binary, meta)
        return [path]
    if format == "coco":
        path = out / f"{video_id}_coco.json"
        add_frame_to_coco_json(path, frame_idx, binary, meta)
        return [path]
    if image is None:
        raise InputError("format='overlay' needs the frame: pass image=...")
    return [save_overlay_png(out / f"overlay_{frame_idx:05d}.png", image, binary)]


def show_masks(image: Any, masks: Mapping[int, Any] | np.ndarray, ax: Any = None) -> Any:
    """Draw `masks` (`{obj_id: mask}` or an (H, W) label map) over `image` with matplotlib.

    Uses `ax` when given (any object with `imshow` and `axis`, e.g. a matplotlib Axes), else
    a new figure. Returns the axes. matplotlib is optional: without it and without `ax`,
    raises `MaskletError` saying how to install it.
    """
    if isinstance(masks, Mapping):
        rendered = overlay_masks(image, _as_bool_masks(masks))
    else:
        rendered = overlay_masks(image, np.asarray(masks))
    if ax is None:
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise MaskletError(
                "show_masks needs matplotlib (pip install matplotlib), or pass ax=..."
            ) from None
        _, ax = plt.subplots()
    ax.imshow(rendered)
    ax.axis("off")
    return ax
