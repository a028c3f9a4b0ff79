"""Mask writers of the `masklet track` formats, fed one frame at a time.

| format | what is written under the output folder `DIR` |
| --- | --- |
| `davis` | `DIR/%05d.png`: one indexed PNG per frame, 0 background, label = object id |
| `pngs` | `DIR/<obj:03d>/%05d.png`: one binary PNG per object and frame (SA-V val layout) |
| `sav` | `DIR/<video>_auto.json`: SA-V masklet JSON, COCO RLE per frame and object |
| `coco` | `DIR/<video>_coco.json`: COCO instances JSON, one image per frame |
| `overlay` | `DIR/<video>_overlay.mp4`: H.264 video of the masks drawn over the frames |

Masks are `{obj_id: (H, W) bool array}` in the video's pixels; frames `(H, W, 3)` uint8 RGB.
PNG and video writers write each frame as soon as it comes. The JSON writers keep only the
RLE strings (a few bytes per object and frame, no masks or frames) and write their file
atomically on `close()` and every `flush_seconds`, so a valid file exists after an interrupt.
Every file is written under a temporary name and renamed when complete (`masklet.io.files`),
so a failed write (disk full, ...) leaves the files finished before it valid and raises a
one-line `MaskletError` naming the file; `close_writers` finishes every writer regardless.
`add_frame_to_sav_json` / `add_frame_to_coco_json` add one frame to such a file (created when
missing), for writing frame by frame from a notebook.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from masklet.errors import InputError, MaskletError
from masklet.io.files import write_json
from masklet.io.masks import MAX_OBJECT_ID, masks_to_labels, write_indexed_png, write_object_pngs
from masklet.io.rle import RLE, empty_rle, mask_to_rle
from masklet.io.sav import SavAnnotation, read_sav_json, sav_to_json_dict
from masklet.io.video_writer import VideoWriter, overlay_masks

FORMATS = ("davis", "pngs", "sav", "coco", "overlay")
DEFAULT_FPS = 24.0  # overlay frame rate when the source has none (image folders)

Masks = Mapping[int, np.ndarray]  # {obj_id: (H, W) bool}


@dataclass(frozen=True)
class VideoMeta:
    """What the writers need to know about the tracked video."""

    video_id: str
    height: int
    width: int
    num_frames: int | None
    fps: float | None
    obj_ids: tuple[int, ...]
    palette: np.ndarray | None = None  # DAVIS colours (default PASCAL VOC)


class MaskWriter:
    """Base of the writers: `write(frame_idx, masks, frame)` per frame, then `close()`."""

    needs_frame = False  # whether `write` needs the RGB frame

    def __init__(self, path: Path, pattern: str | None = None) -> None:
        self.path = path  # the file or folder written
        self.target = pattern or str(path)  # what is written, for messages

    def write(self, frame_idx: int, masks: Masks, frame: np.ndarray | None) -> None:
        """Write the masks of frame `frame_idx` (`frame`: its (H, W, 3) uint8 RGB pixels,
        needed only when `needs_frame`)."""
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output (the PNG writers have nothing to finish)."""


class DavisWriter(MaskWriter):
    """`DIR/%05d.png` indexed label maps (smallest id wins where objects overlap)."""

    def __init__(self, out_dir: Path, meta: VideoMeta) -> None:
        super().__init__(out_dir, str(out_dir / "%05d.png"))
        too_large = [i for i in meta.obj_ids if not 1 <= i <= MAX_OBJECT_ID]
        if too_large:
            raise InputError(
                f"object id {too_large[0]} cannot be stored in DAVIS PNGs (ids 1..254); "
                "use --format pngs, sav or coco"
            )
        self.shape = (meta.height, meta.width)
        self.palette = meta.palette

    def write(self, frame_idx: int, masks: Masks, frame: np.ndarray | None) -> None:
        labels = masks_to_labels(masks, self.shape)
        write_indexed_png(self.path / f"{frame_idx:05d}.png", labels, self.palette)


class ObjectPngWriter(MaskWriter):
    """`DIR/<obj:03d>/%05d.png` binary PNGs, one per object and frame."""

    def __init__(self, out_dir: Path) -> None:
        super().__init__(out_dir, str(out_dir / "<obj:03d>" / "%05d.png"))

    def write(self, frame_idx: int, masks: Masks, frame: np.ndarray | None) -> None:
        write_object_pngs(self.path, frame_idx, masks)


class _JsonWriter(MaskWriter):
    """Collects RLEs per frame; writes the whole file on `close` and every `flush_seconds`."""

    def __init__(self, path: Path, meta: VideoMeta, flush_seconds: float) -> None:
        super().__init__(path)
        self.meta = meta
        self.flush_seconds = flush_seconds
        self._last_flush = time.monotonic()
        self._dirty = False

    def write(self, frame_idx: int, masks: Masks, frame: np.ndarray | None) -> None:
        self.add(frame_idx, masks)
        self._dirty = True
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def add(self, frame_idx: int, masks: Masks) -> None:
        """Keep the RLEs of frame `frame_idx` for the next `flush`."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """The whole file's JSON object, from what was added so far."""
        raise NotImplementedError

    def flush(self) -> None:
        """Write the file now (atomically)."""
        write_json(self.path, self.to_json())
        self._dirty = False
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Write the file if anything changed since the last write (or it does not exist)."""
        if self._dirty or not self.path.exists():
            self.flush()


class SavJsonWriter(_JsonWriter):
    """SA-V masklet JSON: row k is video frame `stride * k`, every object in every row (an
    empty RLE where an object is absent or the frame was not tracked). Rows end at the last
    tracked frame."""

    def __init__(
        self, path: Path, meta: VideoMeta, stride: int = 1, flush_seconds: float = 30.0
    ) -> None:
        super().__init__(path, meta, flush_seconds)
        if stride < 1:
            raise InputError(f"--sav-stride must be >= 1, got {stride}")
        self.stride = stride
        self.rows: dict[int, list[RLE]] = {}

    def add(self, frame_idx: int, masks: Masks) -> None:
        if frame_idx % self.stride:
            return
        blank = empty_rle(self.meta.height, self.meta.width)
        self.rows[frame_idx // self.stride] = [
            mask_to_rle(masks[i]) if i in masks else dict(blank) for i in self.meta.obj_ids
        ]

    def to_json(self) -> dict[str, Any]:
        meta = self.meta
        count = max(self.rows) + 1 if self.rows else 0
        blank = [dict(empty_rle(meta.height, meta.width)) for _ in meta.obj_ids]
        annotation = SavAnnotation(
            video_id=meta.video_id,
            video_height=meta.height,
            video_width=meta.width,
            masklet=[self.rows.get(k, blank) for k in range(count)],
            masklet_id=list(meta.obj_ids),
            video_frame_count=meta.num_frames or self.stride * max(count - 1, 0) + 1,
            fps=meta.fps or DEFAULT_FPS,
            frame_stride=self.stride,
            masklet_type=["auto"] * len(meta.obj_ids),
        )
        return sav_to_json_dict(annotation)


def _bbox(mask: np.ndarray) -> list[int]:
    rows, cols = np.nonzero(mask)
    x0, y0 = int(cols.min()), int(rows.min())
    return [x0, y0, int(cols.max()) - x0 + 1, int(rows.max()) - y0 + 1]


def _coco_image(frame_idx: int, meta: VideoMeta) -> dict[str, Any]:
    return {
        "id": frame_idx,
        "file_name": f"{frame_idx:05d}.jpg",
        "frame_index": frame_idx,
        "height": meta.height,
        "width": meta.width,
    }


class CocoJsonWriter(_JsonWriter):
    """COCO instances JSON: image id = frame index, category id = object id, one annotation
    per visible object and frame with a compressed RLE, its area and bbox."""

    def __init__(self, path: Path, meta: VideoMeta, flush_seconds: float = 30.0) -> None:
        super().__init__(path, meta, flush_seconds)
        self.frames: dict[int, list[tuple[int, RLE, int, list[int]]]] = {}

    def add(self, frame_idx: int, masks: Masks) -> None:
        visible = [(i, np.asarray(masks[i], dtype=bool)) for i in sorted(masks)]
        self.frames[frame_idx] = [
            (i, mask_to_rle(mask), int(mask.sum()), _bbox(mask))
            for i, mask in visible
            if mask.any()
        ]

    def to_json(self) -> dict[str, Any]:
        meta = self.meta
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for frame_idx in sorted(self.frames):
            images.append(_coco_image(frame_idx, meta))
            for obj_id, rle, area, bbox in self.frames[frame_idx]:
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": frame_idx,
                        "category_id": obj_id,
                        "obj_id": obj_id,
                        "segmentation": rle,
                        "area": area,
                        "bbox": bbox,
                        "iscrowd": 0,
                    }
                )
        return {
            "info": {"description": "masklet track", "video": meta.video_id, "fps": meta.fps},
            "images": images,
            "annotations": annotations,
            "categories": [{"id": i, "name": f"object {i}"} for i in meta.obj_ids],
        }


class OverlayWriter(MaskWriter):
    """H.264 video of the masks over the frames, in tracking order, at the source's fps."""

    needs_frame = True

    def __init__(self, path: Path, meta: VideoMeta) -> None:
        super().__init__(path)
        self.video = VideoWriter(path, meta.fps or DEFAULT_FPS)

    def write(self, frame_idx: int, masks: Masks, frame: np.ndarray | None) -> None:
        if frame is None:
            raise ValueError("the overlay writer needs the frame")
        self.video.write(overlay_masks(frame, dict(masks)))

    def close(self) -> None:
        self.video.close()


def create_writers(
    formats: tuple[str, ...], out_dir: Path, meta: VideoMeta, sav_stride: int = 1
) -> list[MaskWriter]:
    """One writer per format, all under `out_dir` (see the module docstring for file names)."""
    writers: list[MaskWriter] = []
    for name in formats:
        if name == "davis":
            writers.append(DavisWriter(out_dir, meta))
        elif name == "pngs":
            writers.append(ObjectPngWriter(out_dir))
        elif name == "sav":
            writers.append(SavJsonWriter(out_dir / f"{meta.video_id}_auto.json", meta, sav_stride))
        elif name == "coco":
            writers.append(CocoJsonWriter(out_dir / f"{meta.video_id}_coco.json", meta))
        else:
            writers.append(OverlayWriter(out_dir / f"{meta.video_id}_overlay.mp4", meta))
    return writers


def close_writers(writers: list[MaskWriter], raise_errors: bool = True) -> None:
    """Close every writer, even after one of them fails, so each finishes what it can; then
    raise the first failure, unless `raise_errors` is False (an earlier error is reported)."""
    first_error: MaskletError | None = None
    for writer in writers:
        try:
            writer.close()
        except MaskletError as error:
            first_error = first_error or error
    if first_error is not None and raise_errors:
        raise first_error


def _sav_rows(path: Path) -> dict[int, dict[int, RLE]]:
    """`{row: {obj_id: RLE}}` of an existing SA-V JSON file (stride 1), `{}` when absent."""
    if not path.exists():
        return {}
    annotation = read_sav_json(path, frame_stride=1)
    ids = annotation.masklet_id
    return {k: dict(zip(ids, row, strict=True)) for k, row in enumerate(annotation.masklet)}


def add_frame_to_sav_json(path: Path, frame_idx: int, masks: Masks, meta: VideoMeta) -> None:
    """Add (or replace) row `frame_idx` (stride 1: rows are video frames) of the SA-V JSON at
    `path`, created when missing. The objects are those of the file and of `masks`; every row
    holds every object (an empty RLE where absent). `meta.obj_ids` is not used."""
    rows = _sav_rows(path)
    rows[frame_idx] = {obj_id: mask_to_rle(mask) for obj_id, mask in masks.items()}
    ids = tuple(sorted({obj_id for row in rows.values() for obj_id in row}))
    writer = SavJsonWriter(path, replace(meta, obj_ids=ids))
    blank = empty_rle(meta.height, meta.width)
    writer.rows = {k: [row.get(i, dict(blank)) for i in ids] for k, row in rows.items()}
    writer.flush()


def add_frame_to_coco_json(path: Path, frame_idx: int, masks: Masks, meta: VideoMeta) -> None:
    """Add (or replace) image `frame_idx` of the COCO instances JSON at `path` (written by
    `CocoJsonWriter`), created when missing. Categories are the objects of the file and of
    `masks`; `meta.obj_ids` is not used."""
    frames: dict[int, list[tuple[int, RLE, int, list[int]]]] = {}
    ids = set(masks)
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        ids |= {int(category["id"]) for category in data["categories"]}
        for image in data["images"]:
            frames[int(image["id"])] = []
        for ann in data["annotations"]:
            entry = (int(ann["obj_id"]), ann["segmentation"], int(ann["area"]), ann["bbox"])
            frames[int(ann["image_id"])].append(entry)
    writer = CocoJsonWriter(path, replace(meta, obj_ids=tuple(sorted(ids))))
    writer.frames = frames
    writer.add(frame_idx, masks)
    writer.flush()
