"""DAVIS 2017 dataset layout: writing sequences, listing them.

    <root>/JPEGImages/480p/<seq>/%05d.jpg     RGB frames
    <root>/Annotations/480p/<seq>/%05d.png    indexed label maps (0 background, 1..N objects,
                                              255 void; `masklet.io.masks`)
    <root>/ImageSets/2017/<split>.txt         sequence names, one a line

Every file is written atomically (`masklet.io.files`): complete or absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from masklet.errors import InputError
from masklet.io.files import AtomicFile
from masklet.io.masks import write_indexed_png

IMAGE_SET_YEAR = "2017"


def davis_frame_folder(root: str | Path, sequence: str) -> Path:
    """`<root>/JPEGImages/480p/<sequence>`."""
    return Path(root) / "JPEGImages" / "480p" / sequence


def davis_annotation_folder(root: str | Path, sequence: str | None = None) -> Path:
    """`<root>/Annotations/480p`, or the folder of one `sequence` in it."""
    folder = Path(root) / "Annotations" / "480p"
    return folder if sequence is None else folder / sequence


def image_set_path(root: str | Path, split: str = "val") -> Path:
    """`<root>/ImageSets/2017/<split>.txt`."""
    return Path(root) / "ImageSets" / IMAGE_SET_YEAR / f"{split}.txt"


def write_jpeg(path: str | Path, frame: np.ndarray, quality: int = 90) -> Path:
    """Write an `(H, W, 3)` uint8 RGB frame as a JPEG of `quality` (1..95) atomically."""
    with AtomicFile(path) as temporary:
        Image.fromarray(frame).save(temporary, format="JPEG", quality=quality)
    return Path(path)


def write_davis_sequence(
    root: str | Path,
    sequence: str,
    frames: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    *,
    jpeg_quality: int = 90,
    palette: np.ndarray | None = None,
) -> None:
    """Write one sequence: frame t (`(H, W, 3)` uint8 RGB) as `JPEGImages/480p/<seq>/t.jpg`
    and its label map (`(H, W)` uint8) as `Annotations/480p/<seq>/t.png` with `palette`
    ((N, 3) uint8; default PASCAL VOC)."""
    if len(frames) != len(labels):
        raise InputError(f"{len(frames)} frames but {len(labels)} label maps for {sequence}")
    image_dir = davis_frame_folder(root, sequence)
    mask_dir = davis_annotation_folder(root, sequence)
    for index, (frame, label_map) in enumerate(zip(frames, labels, strict=True)):
        write_jpeg(image_dir / f"{index:05d}.jpg", frame, jpeg_quality)
        write_indexed_png(mask_dir / f"{index:05d}.png", label_map, palette)


def write_image_set(root: str | Path, names: Sequence[str], split: str = "val") -> Path:
    """Write `ImageSets/2017/<split>.txt`: the sequence names, one a line."""
    path = image_set_path(root, split)
    with AtomicFile(path) as temporary:
        temporary.write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    return path


def list_davis_sequences(root: str | Path, subset: str | None = None) -> list[str]:
    """Sequence names of a DAVIS-layout dataset: the comma-separated `subset`, else those of
    `ImageSets/2017/val.txt`, else every annotated sequence (sorted). `InputError` when the
    layout is not DAVIS's or a named sequence has no annotations."""
    root = Path(root)
    annotations = davis_annotation_folder(root)
    if not (root / "JPEGImages" / "480p").is_dir() or not annotations.is_dir():
        raise InputError(
            f"{root} is not a DAVIS-layout dataset (needs JPEGImages/480p and Annotations/480p)"
        )
    val_list = image_set_path(root)
    if subset is not None:
        names = [name.strip() for name in subset.split(",") if name.strip()]
    elif val_list.is_file():
        names = val_list.read_text().split()
    else:
        names = sorted(path.name for path in annotations.iterdir() if path.is_dir())
    missing = [name for name in names if not (annotations / name).is_dir()]
    if missing or not names:
        raise InputError(f"no annotations for sequence {missing[0] if missing else '(none)'}")
    return names
