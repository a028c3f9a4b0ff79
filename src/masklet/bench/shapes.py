"""Object sprites for the synthetic benchmark: exact shapes with photo textures.

A sprite is an RGB patch with an exact boolean mask of the same size (``HxWx3`` uint8 and
``HxW`` bool, sprite pixel coordinates, origin top-left). Shapes come from photo
silhouettes (``photos.Silhouette``) or are drawn procedurally (ellipse, star, smooth blob);
shapes without their own appearance are filled with a crop of a real photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from masklet.bench.photos import Silhouette

PROCEDURAL_SHAPES: tuple[str, ...] = ("ellipse", "star", "blob")
SHAPE_RESOLUTION = 256


@dataclass(frozen=True)
class Sprite:
    """An object's appearance and exact shape at its own resolution.

    Attributes:
        rgb: HxWx3 uint8 colours (also defined outside the mask, so resampling at the mask
            edge never mixes in black).
        mask: HxW bool, True on the object; never touches the patch border.
        source: where shape and texture came from (for the dataset's metadata).
    """

    rgb: np.ndarray
    mask: np.ndarray
    source: str


def _polar_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Radius (in units of size/2) and angle of each pixel centre of a size x size grid."""
    coords = (np.arange(size, dtype=np.float64) + 0.5) / (size / 2.0) - 1.0
    x, y = np.meshgrid(coords, coords)
    return np.hypot(x, y), np.arctan2(y, x)


def procedural_alpha(
    kind: str, rng: np.random.Generator, size: int = SHAPE_RESOLUTION
) -> np.ndarray:
    """Draw a procedural shape as a float32 0/1 ``size x size`` alpha (object inside 0.95 R).

    Args:
        kind: one of ``PROCEDURAL_SHAPES``.
        rng: source of the shape's random parameters.
    """
    radius, angle = _polar_grid(size)
    if kind == "ellipse":
        aspect = rng.uniform(0.45, 0.9)
        tilt = rng.uniform(0, math.pi)
        along = radius * np.cos(angle - tilt)
        across = radius * np.sin(angle - tilt)
        inside = (along / 0.95) ** 2 + (across / (0.95 * aspect)) ** 2 <= 1.0
    elif kind == "star":
        points = int(rng.integers(4, 8))
        inner = rng.uniform(0.4, 0.65)
        phase = rng.uniform(0, 2 * math.pi)
        wave = 0.5 + 0.5 * np.cos(points * angle + phase)
        inside = radius <= 0.95 * (inner + (1.0 - inner) * wave**2)
    elif kind == "blob":
        profile = np.ones_like(angle)
        for harmonic in range(2, 6):
            amplitude = rng.uniform(0.0, 0.25 / harmonic * 2)
            profile += amplitude * np.sin(harmonic * angle + rng.uniform(0, 2 * math.pi))
        inside = radius <= 0.95 * profile / profile.max()
    else:
        raise ValueError(f"unknown procedural shape {kind!r}")
    return inside.astype(np.float32)


def _resize_alpha(alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resample a float alpha to (width, height) and threshold it into an exact mask."""
    image = Image.fromarray(alpha.astype(np.float32), mode="F")
    resized = np.asarray(image.resize(size, Image.Resampling.BILINEAR))
    mask = resized >= 0.5
    mask[0, :] = mask[-1, :] = False
    mask[:, 0] = mask[:, -1] = False
    return mask


def _texture_crop(
    photo: Image.Image, size: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """A random crop of ``photo`` with the aspect of ``size`` (width, height), resized to it."""
    width, height = size
    scale = min(photo.width / width, photo.height / height) * rng.uniform(0.35, 0.8)
    crop_w, crop_h = max(width * scale, 1.0), max(height * scale, 1.0)
    left = rng.uniform(0, max(photo.width - crop_w, 0.0))
    top = rng.uniform(0, max(photo.height - crop_h, 0.0))
    box = (left, top, left + crop_w, top + crop_h)
    return np.asarray(photo.resize(size, Image.Resampling.BILINEAR, box=box))


def _sprite_size(alpha_shape: tuple[int, ...], longest_side: int) -> tuple[int, int]:
    height, width = alpha_shape[:2]
    factor = longest_side / max(height, width)
    return max(round(width * factor), 4), max(round(height * factor), 4)


def make_sprite(
    shape: Silhouette | str,
    texture_photo: Image.Image,
    longest_side: int,
    rng: np.random.Generator,
) -> Sprite:
    """Build a sprite whose longer side is ``longest_side`` pixels.

    Args:
        shape: a photo silhouette, or the name of a procedural shape.
        texture_photo: RGB photo to cut the texture from when the shape has no colours.
        longest_side: sprite size in pixels (at least 4).
        rng: source of the texture crop and shape parameters.
    """
    if isinstance(shape, str):
        alpha, own_rgb, source = procedural_alpha(shape, rng), None, shape
    else:
        alpha, own_rgb, source = shape.alpha, shape.rgb, shape.name
    size = _sprite_size(alpha.shape, longest_side)
    mask = _resize_alpha(alpha, size)
    if own_rgb is not None:
        rgb = np.asarray(Image.fromarray(own_rgb).resize(size, Image.Resampling.LANCZOS))
    else:
        rgb = _texture_crop(texture_photo, size, rng)
    return Sprite(rgb=np.ascontiguousarray(rgb), mask=mask, source=source)


def look_alike(sprite: Sprite, similarity: float, rng: np.random.Generator) -> Sprite:
    """A distractor copy of ``sprite``: same shape, colours changed by ``1 - similarity``.

    Each colour channel gets a gain of ``1 + (1 - similarity) * N(0, 0.5)`` and an offset
    of ``(1 - similarity) * N(0, 40)``; similarity 1 gives an identical copy.
    """
    change = 1.0 - similarity
    gain = 1.0 + change * rng.normal(0.0, 0.5, size=3)
    offset = change * rng.normal(0.0, 40.0, size=3)
    rgb = np.clip(sprite.rgb.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
    return Sprite(rgb=rgb, mask=sprite.mask.copy(), source=f"look-alike of {sprite.source}")
