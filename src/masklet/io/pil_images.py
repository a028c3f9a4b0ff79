"""Still images as a viewer shows them: turned upright by their EXIF orientation, any mode
as 8-bit RGB. Every still-image path of masklet goes through here (image files, frame folders,
PIL images given to a predictor or a frame source, mask images given as prompts).

- `upright(image)`: the PIL image turned by its EXIF orientation tag (0x0112; values 2..8 mirror
  and/or rotate), so that pixel (x, y) is where a photo viewer shows it. Images without the tag
  (most PNGs, images made in memory) come back unchanged; the turned image no longer carries
  the tag, so turning twice is harmless.
- `displayed_size(image)`: `(width, height)` after that turn, from the header alone.
- `rgb_array(image)`: an upright `(H, W, 3)` uint8 RGB array of any PIL mode: `1` and `L` are
  repeated over the three channels; 16-bit grey (`I;16*`, and `I`, which is how 16-bit PNGs
  used to open) is scaled to 8 bits, `round(v * 255 / 65535)`, so 65535 -> 255 (`I` values
  outside 0..65535 are clipped first); `RGBA`, `LA` and `PA` lose their alpha (not composited
  on any background); `P` goes through its palette, transparency dropped the same way;
  `CMYK`, `YCbCr`, `LAB`, `HSV` use PIL's conversion (no ICC colour management); 16-bit RGB
  PNGs are already reduced to 8 bits by PIL when they open (high byte); `F` is clipped to
  0..255 by PIL.
- `mask_values(image)`: an upright `(H, W)` array of a mask image: single-band modes keep their
  values (`P` palette indices, `L`/`I`/`I;16` levels, `1` as bool); multi-band modes (`RGB`,
  `RGBA`, `LA`, ...) give the largest colour band, alpha ignored.
- `label_values(image)`: the same for a label map that must be exact: a multi-band image is
  accepted only when it is grey (every colour band equal, e.g. a grey image saved as RGB),
  else `InputError`.
- `read_rgb_image(path)`, `read_mask_values(path)`, `read_label_values(path)`,
  `read_displayed_size(path)`: the same for an image file (`read_image_file(path, decode)` is
  the shared reader; it can also let the JPEG decoder shrink a large photo while decoding).
  Every failure (missing file, not an image, truncated or corrupt data, an image over PIL's
  decompression-bomb limit) is one `InputError` line naming the file.

PIL's decompression-bomb guard is kept as it is: images up to `Image.MAX_IMAGE_PIXELS`
(89 million pixels) open silently, up to twice that with one `DecompressionBombWarning`, larger
ones give an `InputError`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageOps

from masklet.errors import InputError, MaskletError

ORIENTATION_TAG = 0x0112
#: EXIF orientations whose displayed image has width and height swapped.
SWAPPED_ORIENTATIONS: frozenset[int] = frozenset({5, 6, 7, 8})
SIXTEEN_BIT_MODES: frozenset[str] = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
PALETTE_MODES: frozenset[str] = frozenset({"P", "PA"})
SINGLE_BAND_MASK_MODES: frozenset[str] = SIXTEEN_BIT_MODES | {"1", "L", "P"}
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)

Decoded = TypeVar("Decoded")


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1..8) of `image`; 1 (as stored) when absent or unreadable."""
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except (OSError, ValueError, SyntaxError, TypeError, KeyError):  # broken EXIF: ignore it
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright(image: Image.Image) -> Image.Image:
    """`image` as displayed: turned by its EXIF orientation, or itself when there is none."""
    if exif_orientation(image) == 1:
        return image
    return ImageOps.exif_transpose(image)


def displayed_size(image: Image.Image) -> tuple[int, int]:
    """`(width, height)` of `image` as displayed (after EXIF orientation), pixels not decoded."""
    width, height = image.size
    if exif_orientation(image) in SWAPPED_ORIENTATIONS:
        return height, width
    return width, height


def _sixteen_bit_to_rgb(image: Image.Image) -> np.ndarray:
    """16-bit grey (`I;16*`, `I`) -> (H, W, 3) uint8, `round(v * 255 / 65535)` after clipping."""
    values = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
    grey = ((values * 255 + 32767) // 65535).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def rgb_array(image: Image.Image, *, what: str = "image") -> np.ndarray:
    """Any PIL image -> upright `(H, W, 3)` uint8 RGB array (conversions: module docstring).

    Pixels are decoded here if the image is still lazy; a decoding failure or a mode PIL
    cannot convert raises `InputError` naming `what`.
    """
    try:
        shown = upright(image)
        if shown.mode == "RGB":
            return np.asarray(shown)
        if shown.mode in SIXTEEN_BIT_MODES:
            return _sixteen_bit_to_rgb(shown)
        if shown.mode in PALETTE_MODES:  # via RGBA: PIL warns on P + transparency -> RGB
            shown = shown.convert("RGBA")
        return np.asarray(shown.convert("RGB"))
    except DECODE_ERRORS as error:
        raise _read_failure(what, error) from None


def mask_values(image: Image.Image) -> np.ndarray:
    """A mask image -> upright `(H, W)` array of its values (rules: module docstring)."""
    shown = upright(image)
    if shown.mode in SINGLE_BAND_MASK_MODES:
        return np.array(shown)
    if shown.mode == "LA":
        return np.array(shown)[:, :, 0]
    if shown.mode not in ("RGB", "RGBA"):
        shown = shown.convert("RGB")
    return np.array(shown)[:, :, :3].max(axis=2)


def label_values(image: Image.Image, *, what: str = "label image") -> np.ndarray:
    """A label image -> upright `(H, W)` array of its stored values (`P` palette indices,
    grey levels); a multi-band image only when grey, else `InputError` naming `what`."""
    shown = upright(image)
    if shown.mode in SINGLE_BAND_MASK_MODES:
        return np.array(shown)
    bands = np.array(shown)
    colour = bands[:, :, :1] if shown.mode in ("LA", "PA") else bands[:, :, :3]
    if bands.ndim == 3 and bool((colour == colour[:, :, :1]).all()):
        return bands[:, :, 0]
    raise InputError(f"{what} is a {shown.mode} colour image; expected an indexed or grey PNG")


def _read_failure(what: str, error: BaseException) -> InputError:
    """The one-line error for a file or image that PIL could not decode or convert."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, Image.UnidentifiedImageError):
        reason = "not an image file in a format PIL reads (JPEG, PNG, ...)"
    elif "truncated" in text.lower():  # PIL says "Truncated File Read" or "... is truncated"
        reason = "image file is truncated (incomplete)"
    else:
        reason = text
    return InputError(f"cannot read {what}: {reason}")


def read_image_file(
    path: str | Path,
    decode: Callable[[Image.Image], Decoded],
    *,
    what: str = "image",
    draft_size: tuple[int, int] | None = None,
) -> Decoded:
    """Decode the image file `path` and return `decode(image)`.

    `decode` runs while the file is open and applies the orientation (`rgb_array`,
    `mask_values` do); the file is closed afterwards, so the image must not escape. With
    `draft_size` (width, height), a JPEG is decoded at 1/2, 1/4 or 1/8 scale while staying
    at least that large (PIL's `draft`; other formats ignore it). Every failure is an
    `InputError` naming `what` and `path`.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder, not an image file")
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    try:
        with Image.open(path) as image:
            if draft_size is not None:
                image.draft("RGB", draft_size)
            image.load()
            return decode(image)
    except MaskletError:
        raise
    except DECODE_ERRORS as error:
        raise _read_failure(f"{what} {path}", error) from None


def read_rgb_image(path: str | Path, *, what: str = "image") -> np.ndarray:
    """An image file as displayed: `(H, W, 3)` uint8 RGB; `InputError` naming the file."""
    return read_image_file(path, lambda image: rgb_array(image, what=f"{what} {path}"), what=what)


def read_mask_values(path: str | Path, *, what: str = "mask") -> np.ndarray:
    """A mask image file as displayed: `(H, W)` values (`mask_values`); `InputError` naming it."""
    return read_image_file(path, mask_values, what=what)


def read_label_values(path: str | Path, *, what: str = "mask") -> np.ndarray:
    """A label image file as displayed: `(H, W)` stored values (`label_values`); `InputError`
    naming it, also for a colour image that is not grey."""
    return read_image_file(
        path, lambda image: label_values(image, what=f"{what} {path}"), what=what
    )


def read_displayed_size(path: str | Path, *, what: str = "image") -> tuple[int, int]:
    """`(width, height)` of an image file as displayed, from its header (pixels not decoded)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            return displayed_size(image)
    except DECODE_ERRORS as error:
        raise _read_failure(f"{what} {path}", error) from None
