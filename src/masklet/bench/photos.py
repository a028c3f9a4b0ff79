"""Real photos for the synthetic benchmark: where they are and what each one is good for.

A photo folder (``--photos DIR``, else ``$MASKLET_SAMPLES``, else
``~/.cache/masklet-samples``; a ``photos/`` subfolder is used when present) is sorted into

- backgrounds: colour photos at least ``MIN_BACKGROUND_SIDE`` pixels on the short side; they
  also serve as textures for objects that have a shape but no appearance of their own;
- silhouettes: images that carry an exact object shape, either in an alpha channel (an
  object on a transparent background, e.g. a clip-art PNG) or as a black-and-white drawing
  (e.g. scikit-image's ``horse.png``), where the object is the tone that touches the image
  border least.

Files are visited in sorted order, so the same folder always gives the same library.

``PhotoLibrary.split("train" | "eval")`` divides a library deterministically by a SHA-1
hash of each file name (the same on every machine and Python run): about
``EVAL_PHOTO_FRACTION`` of the backgrounds and of the silhouettes go to "eval", the rest to
"train". A kind with two or more photos is never empty on either side (the photo with the
lowest hash moves to "eval", or the highest to "train", when a side would be empty), so the
two sides are disjoint; a kind with a single photo keeps it on both sides (nothing else could
be used), and a kind with none stays empty.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from masklet.errors import ConfigError, InputError
from masklet.io.pil_images import read_image_file, read_rgb_image, rgb_array, upright

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
MIN_BACKGROUND_SIDE = 150
ANALYSIS_SIDE = 256
MIN_GRAY_LEVELS = 100
EVAL_PHOTO_FRACTION = 0.2
PHOTO_SPLITS = ("train", "eval")
FETCH_HINT = (
    "run shared/data/fetch-samples.sh (it fills ~/.cache/masklet-samples) or pass --photos DIR"
)


@dataclass(frozen=True)
class Silhouette:
    """An exact object shape taken from a photo.

    Attributes:
        name: file name it came from.
        alpha: HxW float32 coverage in [0, 1], cropped to the object with a small margin;
            the exact mask is ``alpha >= 0.5`` after any resampling.
        rgb: HxWx3 uint8 appearance of the object (alpha images), or None for a bare shape
            that is textured with a photo crop.
    """

    name: str
    alpha: np.ndarray
    rgb: np.ndarray | None


@dataclass(frozen=True)
class PhotoLibrary:
    """Sorted lists of background photos and silhouette images found in one folder."""

    folder: Path
    backgrounds: tuple[Path, ...]
    silhouettes: tuple[Path, ...]

    @classmethod
    def from_folder(cls, folder: str | Path | None = None) -> PhotoLibrary:
        """Scan a photo folder (see the module docstring for the default).

        Raises:
            InputError: no usable background photo in the folder.
        """
        root = resolve_photo_folder(folder)
        backgrounds: list[Path] = []
        silhouettes: list[Path] = []
        for path in sorted(root.iterdir()):
            if path.suffix.lower() not in PHOTO_SUFFIXES or not path.is_file():
                continue
            kind = classify_photo(path)
            if kind == "background":
                backgrounds.append(path)
            elif kind == "silhouette":
                silhouettes.append(path)
        if not backgrounds:
            raise InputError(f"no usable colour photos in {root}; {FETCH_HINT}")
        return cls(root, tuple(backgrounds), tuple(silhouettes))

    def split(self, part: str) -> PhotoLibrary:
        """The ``"train"`` or ``"eval"`` part of the library (see the module docstring).

        Raises:
            ConfigError: ``part`` is neither "train" nor "eval".
        """
        if part not in PHOTO_SPLITS:
            raise ConfigError(f"photo split must be 'train' or 'eval', got {part!r}")
        backgrounds = _split_part(self.backgrounds, part)
        silhouettes = _split_part(self.silhouettes, part)
        return PhotoLibrary(self.folder, backgrounds, silhouettes)


def _name_hash(path: Path) -> float:
    """A position in [0, 1) from the SHA-1 of the file name (stable across runs and hosts)."""
    digest = hashlib.sha1(path.name.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) / 2**32


def _split_part(paths: Sequence[Path], part: str) -> tuple[Path, ...]:
    """The photos of one kind that belong to ``part``, in their original order."""
    if len(paths) < 2:
        return tuple(paths)
    by_hash = sorted(paths, key=lambda path: (_name_hash(path), path.name))
    evaluation = {path for path in paths if _name_hash(path) < EVAL_PHOTO_FRACTION}
    if not evaluation:
        evaluation = {by_hash[0]}
    if len(evaluation) == len(paths):
        evaluation.discard(by_hash[-1])
    chosen = evaluation if part == "eval" else set(paths) - evaluation
    return tuple(path for path in paths if path in chosen)


def resolve_photo_folder(folder: str | Path | None) -> Path:
    """Pick the photo folder: argument, else ``$MASKLET_SAMPLES``, else the default cache."""
    if folder is None:
        env = os.environ.get("MASKLET_SAMPLES")
        folder = env if env else Path.home() / ".cache" / "masklet-samples"
    root = Path(folder).expanduser()
    if (root / "photos").is_dir():
        root = root / "photos"
    if not root.is_dir():
        raise InputError(f"no photos found: {root} does not exist; {FETCH_HINT}")
    return root


def _border_values(array: np.ndarray) -> np.ndarray:
    return np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])


def _is_clean_shape(foreground: np.ndarray) -> bool:
    """A usable silhouette covers 5-85% of the image and barely touches its border."""
    coverage = float(foreground.mean())
    return 0.05 <= coverage <= 0.85 and float(_border_values(foreground).mean()) < 0.1


def _alpha_of(image: Image.Image) -> np.ndarray | None:
    """Alpha channel as float in [0, 1] when it outlines a clean object, else None."""
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return None
    alpha = np.asarray(image.convert("RGBA"))[..., 3].astype(np.float32) / 255.0
    return alpha if _is_clean_shape(alpha >= 0.5) else None


def _drawing_alpha(gray: np.ndarray) -> np.ndarray | None:
    """Object coverage of a black-and-white drawing (float gray in [0, 1]), else None.

    A drawing has at least 97% of its pixels near black or white; the object is the tone
    that touches the image border least, and coverage is that tone's intensity.
    """
    if float(((gray < 0.15) | (gray > 0.85)).mean()) < 0.97:
        return None
    dark_is_object = float(_border_values(gray < 0.5).mean()) < 0.5
    alpha = (1.0 - gray) if dark_is_object else gray
    return alpha if _is_clean_shape(alpha >= 0.5) else None


def _shape_of(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``(alpha HxW float32, rgb HxWx3 uint8 or None)`` if the image holds a silhouette."""
    alpha = _alpha_of(image)
    if alpha is not None:
        return alpha, rgb_array(image)
    drawing = _drawing_alpha(_gray_of(image))
    return None if drawing is None else (drawing, None)


def _gray_of(image: Image.Image) -> np.ndarray:
    """HxW float32 luma in [0, 1] of the RGB image (``rgb_array``: 16-bit grey scaled)."""
    return np.asarray(Image.fromarray(rgb_array(image)).convert("L"), dtype=np.float32) / 255.0


def _classify_opened(image: Image.Image) -> str | None:
    """``"silhouette"``, ``"background"`` or None for a decoded image (see ``classify_photo``)."""
    shown = upright(image)
    full_size = shown.size
    shown.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE))
    if _shape_of(shown) is not None:
        return "silhouette"
    photo_like = np.unique(_gray_of(shown)).size >= MIN_GRAY_LEVELS
    if shown.mode in ("RGB", "RGBA", "P") and min(full_size) >= MIN_BACKGROUND_SIDE and photo_like:
        return "background"
    return None


def classify_photo(path: Path) -> str | None:
    """Return ``"silhouette"``, ``"background"`` or None (not usable) for one image file (read
    with ``masklet.io.pil_images``, a JPEG decoded at reduced size for speed)."""
    draft_size = (ANALYSIS_SIDE, ANALYSIS_SIDE)
    try:
        return read_image_file(path, _classify_opened, what="photo", draft_size=draft_size)
    except InputError:
        return None


def load_rgb(path: Path, max_side: int | None = None) -> Image.Image:
    """Load a photo as an RGB PIL image (``masklet.io.pil_images.read_rgb_image``: upright,
    any mode), shrunk (LANCZOS) so its long side <= ``max_side``."""
    rgb = Image.fromarray(read_rgb_image(path, what="photo"))
    if max_side is not None and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return rgb


def load_silhouette(path: Path, max_side: int = 512, margin: int = 2) -> Silhouette:
    """Load a silhouette image, cropped to its object plus ``margin`` transparent pixels.

    Raises:
        InputError: the file is unreadable or holds no clean silhouette.
    """

    def shrunk_shape(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None] | None:
        shown = upright(image)
        shown.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        return _shape_of(shown)

    shape = read_image_file(path, shrunk_shape, what="silhouette image")
    if shape is None:
        raise InputError(f"{path} holds no clean object silhouette")
    alpha, rgb = shape
    rows = np.flatnonzero((alpha >= 0.5).any(axis=1))
    cols = np.flatnonzero((alpha >= 0.5).any(axis=0))
    crop = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    pad = ((margin, margin), (margin, margin))
    alpha_out = np.pad(alpha[crop].astype(np.float32), pad)
    rgb_out = None if rgb is None else np.pad(rgb[crop], (*pad, (0, 0)), mode="edge")
    return Silhouette(path.name, alpha_out, rgb_out)
