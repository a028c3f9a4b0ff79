"""Model construction from a preset name and an optional official checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch

from masklet.checkpoint import load_checkpoint
from masklet.config import get_config
from masklet.model.sam2 import SAM2Model
from masklet.predictors.video import SAM2VideoPredictor


def build_sam2(
    preset: str = "sam2.1_hiera_t",
    checkpoint: str | Path | None = None,
    image_size: int = 1024,
    device: str | torch.device = "cpu",
) -> SAM2Model:
    """Build a SAM 2 model in eval mode.

    Args:
        preset: one of the 8 official presets (`sam2_hiera_{t,s,b+,l}`,
            `sam2.1_hiera_{t,s,b+,l}`) or an alias such as `sam2.1_hiera_tiny`.
        checkpoint: path of an official `.pt` file, loaded strictly; None keeps the random
            initialisation (for tests).
        image_size: side of the square model input (multiple of 32; official: 1024).
        device: where to put the model.
    """
    config = get_config(preset, image_size=image_size)
    model = SAM2Model(config)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, config.name)
    return model.to(device).eval()


def build_sam2_video_predictor(
    preset: str = "sam2.1_hiera_t",
    checkpoint: str | Path | None = None,
    image_size: int = 1024,
    device: str | torch.device = "cpu",
    fill_hole_area: int = 8,
    non_overlap_masks: bool = False,
) -> SAM2VideoPredictor:
    """Build a `SAM2VideoPredictor` (reference-compatible video API) around `build_sam2`.

    `fill_hole_area=8` and binarised click masks in memory are the official video settings.
    """
    model = build_sam2(preset, checkpoint=checkpoint, image_size=image_size, device=device)
    return SAM2VideoPredictor(
        model, fill_hole_area=fill_hole_area, non_overlap_masks=non_overlap_masks
    )
