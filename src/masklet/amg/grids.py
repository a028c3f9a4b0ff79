"""Point grids and crop boxes for automatic mask generation.

Point grids are `(N, 2)` float64 arrays of xy fractions in [0, 1] (row-major: x varies fastest).
Crop boxes are `(x0, y0, x1, y1)` integer pixel boxes of the original image, end-exclusive.
"""

from __future__ import annotations

from itertools import product

import numpy as np

CropBox = tuple[int, int, int, int]


def build_point_grid(points_per_side: int) -> np.ndarray:
    """`(points_per_side**2, 2)` xy points at the centres of an even `n x n` tiling of the
    unit square, ordered row by row (x varies fastest)."""
    half_step = 1.0 / (2 * points_per_side)
    centres = np.linspace(half_step, 1.0 - half_step, points_per_side)
    grid_x, grid_y = np.meshgrid(centres, centres, indexing="xy")
    return np.stack([grid_x.ravel(), grid_y.ravel()], axis=-1)


def build_layer_point_grids(
    points_per_side: int, crop_n_layers: int, downscale_factor: int
) -> list[np.ndarray]:
    """One grid per crop layer; layer `i` has `int(points_per_side / downscale_factor**i)`
    points per side."""
    return [
        build_point_grid(int(points_per_side / (downscale_factor**layer)))
        for layer in range(crop_n_layers + 1)
    ]


def _crop_length(image_length: int, crops_per_side: int, overlap: int) -> int:
    """Side of each crop so that `crops_per_side` crops overlapping by `overlap` cover the
    image (ceiling division)."""
    total = overlap * (crops_per_side - 1) + image_length
    return -(-total // crops_per_side)


def generate_crop_boxes(
    image_hw: tuple[int, int], crop_n_layers: int, overlap_ratio: float
) -> tuple[list[CropBox], list[int]]:
    """Crop boxes of every layer and the layer index of each.

    Layer 0 is the whole image; layer `i >= 1` tiles the image with `2**i x 2**i` crops that
    overlap by `int(overlap_ratio * short_side * 2 / 2**i)` pixels. Within a layer the boxes
    are ordered by x0 first, then y0.
    """
    height, width = image_hw
    short_side = min(height, width)
    boxes: list[CropBox] = [(0, 0, width, height)]
    layers = [0]
    for layer in range(1, crop_n_layers + 1):
        per_side = 2**layer
        overlap = int(overlap_ratio * short_side * (2 / per_side))
        crop_w = _crop_length(width, per_side, overlap)
        crop_h = _crop_length(height, per_side, overlap)
        starts_x = [(crop_w - overlap) * index for index in range(per_side)]
        starts_y = [(crop_h - overlap) * index for index in range(per_side)]
        for x0, y0 in product(starts_x, starts_y):
            boxes.append((x0, y0, min(x0 + crop_w, width), min(y0 + crop_h, height)))
            layers.append(layer)
    return boxes, layers
