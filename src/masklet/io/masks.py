"""Mask files: DAVIS indexed PNGs and SA-V per-object PNGs, and label-map conversions.

Conventions:
- a label map is an (H, W) uint8 array: 0 = background, 1..254 = object ids, 255 = void
  (DAVIS marks uncertain pixels 255; they belong to no object);
- per-object masks are a dict `{obj_id: (H, W) bool array}`;
- a palette is an (N, 3) uint8 array of RGB colours, N <= 256; colour i shows label i.
  `voc_palette()` is the PASCAL VOC palette DAVIS uses. Reading a palettised PNG returns its
  own palette so that writing results back keeps the dataset's colours.

Layouts:
- DAVIS: one indexed PNG per frame, `Annotations/480p/<seq>/%05d.png`, all objects in it.
- ranked masks (`masklet auto`, `write_ranked_masks`): `masks/mask_NNN.png`, one 0/255 PNG
  per mask, or one uint16 `labels.png` (0 background, mask i = i + 1; the higher-ranked mask
  wins where masks overlap).
- SA-V val/test: one binary PNG per object and frame, `<vid>/<obj:03d>/%05d.png`
  (`write_object_pngs` writes 0/1 indexed PNGs with the VOC palette, like the SA-V tools;
  `read_object_png` accepts any PNG mode, nonzero = foreground).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from masklet.errors import InputError
from masklet.io.files import write_png
from masklet.io.pil_images import read_image_file, read_mask_values, upright

VOID_LABEL = 255
MAX_OBJECT_ID = 254
_FRAME_FILE = re.compile(r"^(\d+)\.png$", re.IGNORECASE)
_OBJECT_DIR = re.compile(r"^\d+$")


def voc_palette(num_colors: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map: (num_colors, 3) uint8; 0 black, 1 (128, 0, 0), 2 (0, 128, 0),
    ..., 255 (224, 224, 192). Bits of the label are spread over the colour channels."""
    labels = np.arange(num_colors, dtype=np.int64)
    palette = np.zeros((num_colors, 3), dtype=np.int64)
    for shift in range(8):
        for channel in range(3):
            bit = (labels >> (3 * shift + channel)) & 1
            palette[:, channel] |= bit << (7 - shift)
    return palette.astype(np.uint8)


def _check_palette(palette: np.ndarray) -> np.ndarray:
    palette = np.asarray(palette)
    if palette.ndim != 2 or palette.shape[1] != 3 or not 1 <= palette.shape[0] <= 256:
        raise InputError(f"a palette must have shape (N, 3) with N <= 256, got {palette.shape}")
    return palette.astype(np.uint8)


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputError(f"a label map must have shape (H, W), got shape {labels.shape}")
    if labels.dtype != np.uint8:
        out_of_range = labels.size > 0 and (labels.min() < 0 or labels.max() > 255)
        if not np.issubdtype(labels.dtype, np.integer) or out_of_range:
            raise InputError(
                f"a label map must hold integers 0..255 (uint8), got dtype {labels.dtype}"
            )
        labels = labels.astype(np.uint8)
    return labels


def _labels_and_palette(image: Image.Image, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """An opened label PNG -> (upright labels (H, W) uint8, palette (N, 3) uint8 or None)."""
    shown = upright(image)
    if shown.mode not in ("P", "L"):
        raise InputError(
            f"{path} is a {shown.mode} image: expected an indexed (P) or grayscale PNG"
        )
    raw_palette = shown.getpalette() if shown.mode == "P" else None
    palette = None if raw_palette is None else np.asarray(raw_palette, np.uint8).reshape(-1, 3)
    return np.array(shown).astype(np.uint8), palette


def read_indexed_png(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a label PNG: returns (labels (H, W) uint8, palette (N, 3) uint8 or None).

    Palettised ("P") PNGs give their palette; grayscale ("L") PNGs give None. Other modes
    (RGB colour masks) raise `InputError`. Read through `masklet.io.pil_images` (upright by
    any EXIF orientation; a missing or unreadable file is one `InputError` line).
    """
    path = Path(path)
    return read_image_file(path, lambda image: _labels_and_palette(image, path), what="mask PNG")


def read_png_palette(path: str | Path) -> np.ndarray | None:
    """The palette ((N, 3) uint8) of an indexed ("P") image file, None for any other mode;
    `InputError` naming the file when it cannot be read."""

    def palette_of(image: Image.Image) -> np.ndarray | None:
        raw_palette = image.getpalette() if image.mode == "P" else None
        return np.asarray(raw_palette, dtype=np.uint8).reshape(-1, 3) if raw_palette else None

    return read_image_file(path, palette_of, what="mask")


def write_indexed_png(
    path: str | Path, labels: np.ndarray, palette: np.ndarray | None = None
) -> None:
    """Write an (H, W) label map (uint8, 0..255) as an indexed PNG with `palette`
    ((N, 3) uint8; default: the VOC palette). Parent folders are created; the file is
    written atomically (`masklet.io.files`), a failed write raises `MaskletError`."""
    labels = _check_labels(labels)
    colors = voc_palette() if palette is None else _check_palette(palette)
    image = Image.fromarray(labels, mode="P")
    image.putpalette(colors.reshape(-1).tolist())
    write_png(path, image)


def labels_to_masks(
    labels: np.ndarray, obj_ids: Iterable[int] | None = None
) -> dict[int, np.ndarray]:
    """Split an (H, W) label map into `{obj_id: (H, W) bool}`.

    With `obj_ids=None`, every label present other than 0 (background) and 255 (void) becomes
    an object, in increasing order. With `obj_ids`, exactly those objects are returned (an
    object absent from this frame gets an all-False mask).
    """
    labels = _check_labels(labels)
    if obj_ids is None:
        present = np.unique(labels)
        obj_ids = [int(v) for v in present if v not in (0, VOID_LABEL)]
    return {int(obj_id): labels == obj_id for obj_id in obj_ids}


def masks_to_labels(
    masks: Mapping[int, np.ndarray], shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Merge `{obj_id: (H, W) mask}` into an (H, W) uint8 label map (0 = background).

    Object ids must be in 1..254. Where objects overlap, the smallest object id wins (as in the
    SAM 2 reference tools, which paint objects in decreasing id order). `shape` (H, W) is
    needed only when `masks` is empty.
    """
    if not masks and shape is None:
        raise InputError("masks_to_labels needs `shape` when there are no masks")
    out_shape = shape if shape is not None else np.asarray(next(iter(masks.values()))).shape
    labels = np.zeros(out_shape, dtype=np.uint8)
    for obj_id in sorted(masks, reverse=True):
        if not 1 <= int(obj_id) <= MAX_OBJECT_ID:
            raise InputError(
                f"object id {obj_id} cannot be stored in a label map: ids must be 1..254"
            )
        mask = np.asarray(masks[obj_id])
        if mask.shape != labels.shape:
            raise InputError(
                f"mask of object {obj_id} has shape {mask.shape}, expected {labels.shape}"
            )
        labels[mask != 0] = obj_id
    return labels


def object_png_path(video_dir: str | Path, obj_id: int, frame_idx: int) -> Path:
    """`<video_dir>/<obj:03d>/<frame:05d>.png`, the SA-V val/test layout."""
    return Path(video_dir) / f"{int(obj_id):03d}" / f"{int(frame_idx):05d}.png"


def read_object_png(path: str | Path) -> np.ndarray:
    """Read one binary mask PNG (any mode; nonzero = foreground) as an (H, W) bool array, as
    displayed (`masklet.io.pil_images.mask_values`)."""
    return read_mask_values(path, what="mask PNG") != 0


def write_object_pngs(
    video_dir: str | Path,
    frame_idx: int,
    masks: Mapping[int, np.ndarray],
    palette: np.ndarray | None = None,
) -> list[Path]:
    """Write each `{obj_id: (H, W) mask}` of one frame as `<video_dir>/<obj:03d>/<frame:05d>.png`
    (indexed PNG, 0 = background, 1 = object, colours from `palette`, default VOC).
    Returns the written paths."""
    paths = []
    for obj_id, mask in masks.items():
        if int(obj_id) < 0:
            raise InputError(f"object ids must be >= 0, got {obj_id}")
        path = object_png_path(video_dir, obj_id, frame_idx)
        binary = np.asarray(mask)
        if binary.ndim != 2:
            raise InputError(f"mask of object {obj_id} must be (H, W), got {binary.shape}")
        write_indexed_png(path, (binary != 0).astype(np.uint8), palette)
        paths.append(path)
    return paths


def list_object_pngs(video_dir: str | Path) -> dict[int, list[int]]:
    """Index a SA-V style folder: `{obj_id: sorted frame indices with a PNG}`."""
    video_dir = Path(video_dir)
    if not video_dir.is_dir():
        raise InputError(f"mask folder not found: {video_dir}")
    index: dict[int, list[int]] = {}
    for obj_dir in sorted(video_dir.iterdir()):
        if not (obj_dir.is_dir() and _OBJECT_DIR.match(obj_dir.name)):
            continue
        frames = []
        for file in obj_dir.iterdir():
            match = _FRAME_FILE.match(file.name)
            if match:
                frames.append(int(match.group(1)))
        index[int(obj_dir.name)] = sorted(frames)
    if not index:
        raise InputError(f"{video_dir} has no <obj:03d>/ folders of mask PNGs")
    return index


def read_object_pngs(
    video_dir: str | Path, frame_idx: int, obj_ids: Iterable[int] | None = None
) -> dict[int, np.ndarray]:
    """Read the masks of one frame from a SA-V style folder: `{obj_id: (H, W) bool}`.

    With `obj_ids=None`, every object that has a PNG for this frame is read; objects listed in
    `obj_ids` but without a PNG for this frame are left out.
    """
    ids = list_object_pngs(video_dir) if obj_ids is None else {int(i): [] for i in obj_ids}
    masks = {}
    for obj_id in ids:
        path = object_png_path(video_dir, obj_id, frame_idx)
        if path.exists():
            masks[obj_id] = read_object_png(path)
    return masks


def write_binary_png(path: str | Path, mask: np.ndarray) -> Path:
    """Write an (H, W) mask (nonzero = foreground) as a grayscale PNG, 0 and 255, atomically."""
    return write_png(path, (np.asarray(mask) != 0).astype(np.uint8) * 255)


def write_ranked_masks(
    out_dir: str | Path, masks: Sequence[np.ndarray], *, label_png: bool = False
) -> list[str]:
    """Write masks ranked best first (`(H, W)` bool each) under `out_dir`: one
    `masks/mask_NNN.png` each, or with `label_png` one uint16 `labels.png` (0 background,
    mask i = i + 1, the higher-ranked mask wins on overlaps). Returns each mask's file name
    relative to `out_dir`."""
    out = Path(out_dir)
    if label_png:
        height, width = masks[0].shape if len(masks) else (0, 0)
        labels = np.zeros((height, width), dtype=np.uint16)
        for index in reversed(range(len(masks))):  # higher-ranked masks painted last
            labels[masks[index]] = index + 1
        write_png(out / "labels.png", labels)
        return ["labels.png"] * len(masks)
    names = []
    for index, mask in enumerate(masks):
        name = f"masks/mask_{index:03d}.png"
        write_binary_png(out / name, mask)
        names.append(name)
    return names
