"""`ImageFolderSource`: a folder of JPEG/PNG frames (DAVIS `JPEGImages/480p/<seq>/00000.jpg`,
SA-V `JPEGImages_24fps/<vid>/00000.jpg`, or any `frame_12.png`-style names).

Frame order: by the last number in each file name (`2.jpg` before `10.jpg`; `frame_12.png` is
frame number 12), ties broken by name. If some file name has no number, all files are sorted
in natural order instead (digit runs compared as numbers). Frame i is the i-th file in that
order, whatever its number: a folder holding `00004.jpg` and `00008.jpg` has frames 0 and 1.
Images are loaded lazily, one per `get`, as a viewer shows them (EXIF orientation applied, any
mode converted to 8-bit RGB: `masklet.io.pil_images`); a small LRU cache keeps the last few.
The frame size is the displayed size of the first file (width and height swapped for a rotated
photo); a frame of another displayed size raises `InputError` naming both files and sizes.
A frame that cannot be decoded (corrupt or truncated file, not an image) raises `InputError`
naming that file when it is reached; it is not skipped, since skipping would silently renumber
every later frame and shift prompts and outputs onto the wrong images.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from masklet.errors import InputError
from masklet.io.frames import FrameSource, frame_cache
from masklet.io.pil_images import read_displayed_size, read_rgb_image

IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png"})
_DIGITS = re.compile(r"(\d+)")


def _natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    parts = _DIGITS.split(name)
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in parts if part)


def sort_frame_files(paths: list[Path]) -> list[Path]:
    """Sort image files into frame order (see the module docstring)."""
    numbers = [_DIGITS.findall(path.stem) for path in paths]
    if all(numbers):
        keyed = sorted(
            zip(paths, numbers, strict=True), key=lambda pair: (int(pair[1][-1]), pair[0].name)
        )
        return [path for path, _ in keyed]
    return sorted(paths, key=lambda path: _natural_key(path.name))


def list_frame_files(folder: Path) -> list[Path]:
    """The JPEG/PNG files directly inside `folder`, in frame order; InputError if none."""
    if not folder.exists():
        raise InputError(f"frame folder not found: {folder}")
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    files = [
        path
        for path in folder.iterdir()
        if path.suffix.lower() in IMAGE_SUFFIXES
        and path.is_file()
        and not path.name.startswith(".")
    ]
    if not files:
        raise InputError(f"folder {folder} contains no .jpg/.jpeg/.png frames")
    return sort_frame_files(files)


def load_rgb_image(path: str | Path) -> np.ndarray:
    """Read an image file as displayed: an (H, W, 3) uint8 RGB array, row 0 at the top of the
    upright picture (EXIF orientation applied; modes converted as in `masklet.io.pil_images`).
    InputError naming the file if it is missing, not an image, truncated or corrupt."""
    return read_rgb_image(path)


class ImageFolderSource(FrameSource):
    """Frames stored as image files in one folder.

    Args:
        folder: the folder; its `.jpg`, `.jpeg` and `.png` files are the frames.
        fps: frame rate to report (image folders carry none), or None.
        cache_size: how many decoded images the LRU cache keeps.
    All images must have the displayed size of the first one (checked as they are loaded).
    """

    def __init__(self, folder: str | Path, *, fps: float | None = None, cache_size: int = 2):
        self.folder = Path(folder)
        self.files = list_frame_files(self.folder)
        self.cache = frame_cache(cache_size)
        self._fps = fps
        self._size = self._read_size(self.files[0])

    @property
    def num_frames(self) -> int:
        return len(self.files)

    @property
    def height(self) -> int:
        return self._size[1]

    @property
    def width(self) -> int:
        return self._size[0]

    @property
    def fps(self) -> float | None:
        return self._fps

    def get(self, index: int) -> np.ndarray:
        index = self._check_index(index)
        cached = self.cache.get(index)
        if cached is not None:
            return cached.copy()
        frame = load_rgb_image(self.files[index])
        if frame.shape[:2] != (self.height, self.width):
            raise InputError(
                f"frame {index} ({self.files[index]}) is {frame.shape[1]}x{frame.shape[0]} but "
                f"the first frame ({self.files[0].name}) is {self.width}x{self.height}: "
                "all frames must have the same size"
            )
        self.cache.put(index, frame)
        return frame.copy()

    def close(self) -> None:
        self.cache.clear()

    @staticmethod
    def _read_size(path: Path) -> tuple[int, int]:
        """Displayed (width, height) from the image header (after EXIF orientation), without
        decoding the pixels."""
        return read_displayed_size(path)
