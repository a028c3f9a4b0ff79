"""Frames to model input: RGB uint8 -> normalised square tensor (used by every predictor)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: ImageNet statistics used by the released models.
PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)


def preprocess_image(image: np.ndarray, size: int, device: torch.device | str = "cpu") -> Tensor:
    """`H x W x 3` uint8 RGB -> `(3, size, size)` float32: scaled to [0, 1], resized with
    antialiased bilinear interpolation (aspect ratio not kept), normalised."""
    if not image.flags.writeable:  # e.g. PIL-backed arrays; torch wants writable memory
        image = image.copy()
    tensor = torch.from_numpy(np.ascontiguousarray(image)).to(device)
    tensor = tensor.permute(2, 0, 1).float().div(255.0)
    resized = F.interpolate(
        tensor[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )[0]
    return normalize_pixels(resized)


def normalize_pixels(images: Tensor) -> Tensor:
    """`(..., 3, H, W)` RGB in [0, 1] (float) or uint8 -> float32 normalised with the ImageNet
    statistics the released models expect."""
    if images.dtype == torch.uint8:
        images = images.float().div(255.0)
    mean = torch.tensor(PIXEL_MEAN, device=images.device).view(3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=images.device).view(3, 1, 1)
    return (images - mean) / std
