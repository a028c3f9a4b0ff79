"""Image input checks shared by the predictors."""

from __future__ import annotations

from typing import Any

import numpy as np

from masklet.io.frames import as_rgb_frame


def image_to_array(image: Any) -> np.ndarray:
    """Accept an `H x W x 3` uint8 RGB numpy array or a PIL image; return the array. A PIL image
    is converted as a viewer shows it (EXIF orientation applied, any mode to 8-bit RGB); the
    checks and their `InputError`s are `masklet.io.frames.as_rgb_frame`'s."""
    return as_rgb_frame(image, what="image")
