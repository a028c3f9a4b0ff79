"""Rendering of one synthetic frame: camera view of a photo plus warped sprites.

Images are ``HxWx3`` uint8 RGB, label maps ``HxW`` uint8 (0 background, k = object k),
in output pixel coordinates with pixel centres at ``(i + 0.5, j + 0.5)``. Sprites are
composited with their exact binary masks (no blending), so the label map marks exactly the
pixels whose colours came from each object.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from masklet.bench.motion import Pose
from masklet.bench.shapes import Sprite


@dataclass(frozen=True)
class PlacedSprite:
    """A sprite warped into the frame, stored as its bounding box only.

    Attributes:
        top: first row of the box in the frame.
        left: first column of the box in the frame.
        rgb: hxwx3 uint8 colours inside the box.
        mask: hxw bool exact object pixels inside the box.
    """

    top: int
    left: int
    rgb: np.ndarray
    mask: np.ndarray

    @property
    def area(self) -> int:
        """Object pixels inside the frame before any occlusion."""
        return int(np.count_nonzero(self.mask))


def render_background(
    photo: Image.Image, window: tuple[float, float, float, float], size: tuple[int, int]
) -> np.ndarray:
    """Camera view: the photo box ``window`` (left, top, right, bottom) resized to ``size``.

    Args:
        photo: RGB background photo.
        window: box in photo pixels.
        size: output (width, height).
    Returns:
        HxWx3 uint8 frame.
    """
    view = photo.transform(size, Image.Transform.EXTENT, window, Image.Resampling.BILINEAR)
    return np.array(view)


def _inverse_affine(pose: Pose, sprite_shape: tuple[int, ...]) -> tuple[float, ...]:
    """PIL AFFINE coefficients mapping frame coordinates to sprite coordinates.

    Forward: ``frame = centre + scale * R(angle) (sprite - sprite_centre)``.
    """
    cos_a = math.cos(math.radians(pose.angle_deg)) / pose.scale
    sin_a = math.sin(math.radians(pose.angle_deg)) / pose.scale
    centre_x, centre_y = sprite_shape[1] / 2.0, sprite_shape[0] / 2.0
    return (
        cos_a,
        sin_a,
        centre_x - (cos_a * pose.x + sin_a * pose.y),
        -sin_a,
        cos_a,
        centre_y - (-sin_a * pose.x + cos_a * pose.y),
    )


def _frame_box(
    pose: Pose, sprite_shape: tuple[int, ...], frame_size: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """Integer frame box (left, top, right, bottom) covering the warped sprite, clipped."""
    height, width = sprite_shape[:2]
    cos_a = math.cos(math.radians(pose.angle_deg)) * pose.scale
    sin_a = math.sin(math.radians(pose.angle_deg)) * pose.scale
    corners_x, corners_y = [], []
    for dx, dy in (
        (-width / 2, -height / 2),
        (width / 2, -height / 2),
        (-width / 2, height / 2),
        (width / 2, height / 2),
    ):
        corners_x.append(pose.x + cos_a * dx - sin_a * dy)
        corners_y.append(pose.y + sin_a * dx + cos_a * dy)
    left = max(math.floor(min(corners_x)) - 1, 0)
    top = max(math.floor(min(corners_y)) - 1, 0)
    right = min(math.ceil(max(corners_x)) + 1, frame_size[0])
    bottom = min(math.ceil(max(corners_y)) + 1, frame_size[1])
    if right <= left or bottom <= top:
        return None
    return left, top, right, bottom


def warp_sprite(sprite: Sprite, pose: Pose, frame_size: tuple[int, int]) -> PlacedSprite | None:
    """Place ``sprite`` at ``pose`` in a frame of ``frame_size`` (width, height).

    Colours are resampled bilinearly, the mask with nearest neighbour (it stays exact).
    Returns None when no part of the sprite's box lies in the frame.
    """
    box = _frame_box(pose, sprite.mask.shape, frame_size)
    if box is None:
        return None
    left, top, right, bottom = box
    a, b, c, d, e, f = _inverse_affine(pose, sprite.mask.shape)
    # Shift the output origin to the box corner: frame (x, y) = box (x + left, y + top).
    coefficients = (a, b, c + a * left + b * top, d, e, f + d * left + e * top)
    size = (right - left, bottom - top)
    rgb = Image.fromarray(sprite.rgb).transform(
        size, Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR
    )
    mask = Image.fromarray(sprite.mask.astype(np.uint8) * 255).transform(
        size, Image.Transform.AFFINE, coefficients, Image.Resampling.NEAREST
    )
    return PlacedSprite(top, left, np.asarray(rgb), np.asarray(mask) > 127)


def compose_frame(
    background: np.ndarray, layers: Sequence[tuple[PlacedSprite | None, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Paint sprites bottom to top over ``background`` and build the label map.

    Args:
        background: HxWx3 uint8 camera view.
        layers: ``(placed sprite or None, label)`` from bottom to top; label 0 marks an
            unannotated object (a distractor), which also hides the labels beneath it.
    Returns:
        ``(frame HxWx3 uint8, labels HxW uint8)``.
    """
    frame = background.copy()
    labels = np.zeros(background.shape[:2], dtype=np.uint8)
    for placed, label in layers:
        if placed is None:
            continue
        rows = slice(placed.top, placed.top + placed.mask.shape[0])
        cols = slice(placed.left, placed.left + placed.mask.shape[1])
        frame[rows, cols][placed.mask] = placed.rgb[placed.mask]
        labels[rows, cols][placed.mask] = label
    return frame, labels


def apply_photometric(
    frame: np.ndarray, gain: float, noise_std: float, rng: np.random.Generator
) -> np.ndarray:
    """Global brightness ``gain`` and Gaussian sensor noise of ``noise_std`` grey levels."""
    values = frame.astype(np.float32)
    values *= np.float32(gain)
    if noise_std > 0:
        noise = rng.standard_normal(size=frame.shape, dtype=np.float32)
        noise *= np.float32(noise_std)
        values += noise
    np.rint(values, out=values)
    np.clip(values, 0, 255, out=values)
    return values.astype(np.uint8)
