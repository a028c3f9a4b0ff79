"""Clip augmentation: `SampledClip` (full resolution, numpy) -> `TrainClip` (`S x S`, torch).

In order, as in the reference recipe's video transforms (SAM 2.1 MOSE fine-tuning):
1. horizontal flip with probability `hflip_prob`, the same for the whole clip;
2. random affine about the image centre (rotation in +-`affine_degrees`, x-shear in
   +-`affine_shear` degrees), the same for the whole clip; images bilinear with
   `affine_fill` outside the frame, masks nearest. Every object visible on frame 0 must stay
   visible there: up to `affine_attempts` draws, else the clip keeps no affine;
3. resize to `S x S` (aspect ratio not kept, like the model's preprocessing): images
   antialiased bilinear, masks nearest;
4. colour jitter the same for the clip (`clip_*`), grayscale with probability
   `grayscale_prob` for the clip, then colour jitter drawn per frame (`frame_*`). A jitter of
   strength s scales by a factor drawn uniformly in [max(0, 1 - s), 1 + s]; brightness,
   contrast and saturation are applied in a random order, each clamped to [0, 255].

Geometry runs frame by frame in float32 torch (memory: one full-resolution frame at a time);
colour runs on the `S x S` clip. With `enabled=False` only step 3 happens. All randomness
comes from the generator passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from masklet.errors import ConfigError
from masklet.train.data.video import SampledClip
from masklet.train.types import TrainClip

#: ITU-R 601-2 luma weights (PIL's and torchvision's grayscale).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentOptions:
    """The augmentation knobs (module docstring); defaults are the reference recipe's, except
    `affine_attempts` (the reference draws the affine once, then drops it)."""

    enabled: bool = True
    hflip_prob: float = 0.5
    affine_degrees: float = 25.0
    affine_shear: float = 20.0
    affine_attempts: int = 3
    affine_fill: tuple[int, int, int] = (123, 116, 103)
    clip_brightness: float = 0.1
    clip_contrast: float = 0.03
    clip_saturation: float = 0.03
    grayscale_prob: float = 0.05
    frame_brightness: float = 0.1
    frame_contrast: float = 0.05
    frame_saturation: float = 0.05

    def __post_init__(self) -> None:
        fill = tuple(int(value) for value in self.affine_fill)
        object.__setattr__(self, "affine_fill", fill)
        strengths = {
            name: getattr(self, name)
            for name in (
                "clip_brightness",
                "clip_contrast",
                "clip_saturation",
                "frame_brightness",
                "frame_contrast",
                "frame_saturation",
            )
        }
        checks = [
            (0 <= self.hflip_prob <= 1, "hflip_prob must be in [0, 1]"),
            (0 <= self.grayscale_prob <= 1, "grayscale_prob must be in [0, 1]"),
            (0 <= self.affine_degrees <= 180, "affine_degrees must be in [0, 180]"),
            (0 <= self.affine_shear < 90, "affine_shear must be in [0, 90)"),
            (self.affine_attempts >= 1, "affine_attempts must be >= 1"),
            (len(fill) == 3 and all(0 <= v <= 255 for v in fill), "affine_fill must be 3 x 0..255"),
            *[(0 <= value <= 1, f"{name} must be in [0, 1]") for name, value in strengths.items()],
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"AugmentOptions: {message}")


def affine_theta(angle_deg: float, shear_deg: float, height: int, width: int) -> Tensor:
    """The `(1, 2, 3)` float32 `affine_grid` matrix of a rotation by `angle_deg` composed with
    an x-shear by `shear_deg`, about the image centre: maps output to input coordinates in
    the normalised [-1, 1] frame of an `height x width` image (align_corners=False)."""
    angle, shear = math.radians(angle_deg), math.radians(shear_deg)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    shearing = np.array([[1.0, math.tan(shear)], [0.0, 1.0]])
    inverse = np.linalg.inv(rotation @ shearing)  # pixel offsets from the centre, output->input
    half_size = np.diag([width / 2.0, height / 2.0])
    linear = np.linalg.inv(half_size) @ inverse @ half_size
    theta = np.concatenate([linear, np.zeros((2, 1))], axis=1)
    return torch.from_numpy(theta).to(torch.float32)[None]


def _warp_masks(masks: Tensor, theta: Tensor) -> Tensor:
    """`(K, H, W)` bool masks warped by `theta` (nearest; outside the frame is background)."""
    grid = F.affine_grid(theta, [1, *masks.shape], align_corners=False)
    warped = F.grid_sample(masks[None].float(), grid, mode="nearest", align_corners=False)
    return warped[0] > 0.5


def draw_affine(
    first_masks: np.ndarray, options: AugmentOptions, rng: np.random.Generator
) -> Tensor | None:
    """Draw the clip's affine (`affine_theta`) given frame 0's `(K, H, W)` bool masks: the
    first draw that keeps every object visible on frame 0 visible, or None."""
    if options.affine_degrees == 0 and options.affine_shear == 0:
        return None
    masks = torch.from_numpy(np.ascontiguousarray(first_masks))
    visible = masks.flatten(1).any(1)
    height, width = first_masks.shape[-2:]
    for _ in range(options.affine_attempts):
        angle = float(rng.uniform(-options.affine_degrees, options.affine_degrees))
        shear = float(rng.uniform(-options.affine_shear, options.affine_shear))
        theta = affine_theta(angle, shear, height, width)
        kept = _warp_masks(masks, theta).flatten(1).any(1)
        if bool(kept[visible].all()):
            return theta
    return None


def warp_and_resize(
    frame: np.ndarray,
    masks: np.ndarray,
    size: int,
    theta: Tensor | None = None,
    fill: tuple[int, int, int] = (0, 0, 0),
) -> tuple[Tensor, Tensor]:
    """One frame `(H, W, 3)` uint8 and its `(K, H, W)` bool masks, warped by `theta` (None:
    not warped; image bilinear with `fill` outside, masks nearest), then resized to
    `size x size` (image antialiased bilinear, masks nearest). Returns `((3, S, S)` float32
    in [0, 255], `(K, S, S)` bool)."""
    image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float()
    mask_tensor = torch.from_numpy(np.ascontiguousarray(masks))
    if theta is not None:
        height, width = frame.shape[:2]
        grid = F.affine_grid(theta, [1, 4, height, width], align_corners=False)
        with_coverage = torch.cat([image, torch.ones(1, 1, height, width)], dim=1)
        warped = F.grid_sample(with_coverage, grid, mode="bilinear", align_corners=False)
        fill_color = torch.tensor(fill, dtype=torch.float32).view(1, 3, 1, 1)
        image = warped[:, :3] + fill_color * (1.0 - warped[:, 3:])
        mask_tensor = _warp_masks(mask_tensor, theta)
    resized = F.interpolate(
        image, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )
    resized_masks = F.interpolate(
        mask_tensor[None].float(), size=(size, size), mode="nearest-exact"
    )
    return resized[0].clamp(0, 255), resized_masks[0] > 0.5


def _gray(images: Tensor) -> Tensor:
    """`(N, 1, H, W)` luma of `(N, 3, H, W)` RGB images."""
    red, green, blue = LUMA_WEIGHTS
    gray = images[:, 0:1] * red
    gray.add_(images[:, 1:2], alpha=green)
    return gray.add_(images[:, 2:3], alpha=blue)


def _jitter_(
    images: Tensor,
    strengths: tuple[float, float, float],
    rng: np.random.Generator,
) -> None:
    """Brightness, contrast and saturation of `(N, 3, H, W)` float images in [0, 255], in
    place, in a random order, with factors drawn in [max(0, 1 - s), 1 + s] for the
    strengths s (a factor of exactly 1 is skipped: it changes nothing)."""
    order = rng.permutation(3)
    factors = [float(rng.uniform(max(0.0, 1.0 - s), 1.0 + s)) for s in strengths]
    for operation in order:
        factor = factors[int(operation)]
        if factor == 1.0:
            continue
        if operation == 0:
            images.mul_(factor)
        elif operation == 1:
            mean = _gray(images).mean(dim=(1, 2, 3), keepdim=True)
            images.mul_(factor).add_(mean * (1.0 - factor))
        else:
            images.mul_(factor).add_(_gray(images).mul_(1.0 - factor))
        images.clamp_(0, 255)


def adjust_colors(images: Tensor, options: AugmentOptions, rng: np.random.Generator) -> Tensor:
    """Step 4 of the module docstring on `(T, 3, S, S)` float images in [0, 255] (changed in
    place, and returned)."""
    clip_strengths = (options.clip_brightness, options.clip_contrast, options.clip_saturation)
    _jitter_(images, clip_strengths, rng)
    if rng.random() < options.grayscale_prob:
        images.copy_(_gray(images).expand(-1, 3, -1, -1))
    frame_strengths = (options.frame_brightness, options.frame_contrast, options.frame_saturation)
    for t in range(len(images)):
        _jitter_(images[t : t + 1], frame_strengths, rng)
    return images


def augment_clip(
    clip: SampledClip, image_size: int, options: AugmentOptions, rng: np.random.Generator
) -> TrainClip:
    """Augment a sampled clip and resize it to `image_size` (module docstring).

    Args:
        clip: frames `(T, H, W, 3)` uint8 and masks `(T, K, H, W)` bool.
        image_size: the side S of the model's square input.
        options: the knobs; `enabled=False` only resizes.
        rng: the generator every random choice is drawn from.
    Returns:
        `TrainClip` with images `(T, 3, S, S)` uint8 and masks `(T, K, S, S)` bool.
    """
    if image_size < 1:
        raise ConfigError(f"image_size must be >= 1, got {image_size}")
    frames, masks, theta = clip.frames, clip.masks, None
    if options.enabled:
        if rng.random() < options.hflip_prob:
            frames, masks = frames[:, :, ::-1], masks[..., ::-1]
        theta = draw_affine(masks[0], options, rng)
    num_frames, num_objects = masks.shape[:2]
    images = torch.empty((num_frames, 3, image_size, image_size), dtype=torch.float32)
    out_masks = torch.empty((num_frames, num_objects, image_size, image_size), dtype=torch.bool)
    for t in range(num_frames):
        images[t], out_masks[t] = warp_and_resize(
            frames[t], masks[t], image_size, theta, options.affine_fill
        )
    if options.enabled:
        images = adjust_colors(images, options, rng)
    images_uint8 = images.round_().clamp_(0, 255).to(torch.uint8)
    return TrainClip(clip.name, images_uint8, out_masks, clip.obj_ids)
