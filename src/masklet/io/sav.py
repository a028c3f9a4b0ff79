"""SA-V training annotations: `<video_id>_manual.json` / `<video_id>_auto.json`.

File layout (SA-V README): `masklet[k][j]` is the compressed COCO RLE
`{"size": [H, W], "counts": str}` of object j on annotated frame k. Videos are 24 fps and
annotated every 4th frame (6 fps), so annotated frame k is video frame `4 * k`. The list is
dense: an object absent from a frame has an empty RLE there. Per-video fields (`video_*`) and
per-object lists (`masklet_*`, one entry per object) accompany it.

`SavAnnotation` holds the masks and the fields that cannot be derived from them. On writing,
the derived statistics are computed from the masks (`masklet_stats`):
- masklet_size_abs: mean mask area in pixels over the annotated frames where it is visible
  (0.0 if never visible); masklet_size_rel: that divided by H * W;
- masklet_size_bucket: "small" below 32^2 pixels, "medium" below 96^2, else "large";
- masklet_first_appeared_frame: the annotated-frame index k of the first non-empty mask (the
  SA-V example files count annotated frames: 113 of 121); the object's frame count if never;
- masklet_visibility_changes: visible<->invisible switches after the first appearance;
- masklet_frame_count: the number of annotated frames;
- masklet_num: the number of objects; video_resolution: H * W; video_duration:
  video_frame_count / fps.
Defaults for fields the masks cannot tell: masklet_type "manual", masklet_edited_frame_count
0, masklet_stability_score None, video_environment "" and video_split "" (unknown),
video_frame_count `frame_stride * (annotated frames - 1) + 1`. Unknown extra keys of a file
are kept in `extra` and written back. Reading ignores the derived fields of the file.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from masklet.errors import InputError
from masklet.io.files import write_json
from masklet.io.rle import RLE, compress_rle, empty_rle, mask_to_rle, rle_area, rle_to_mask

SAV_FPS = 24.0
SAV_FRAME_STRIDE = 4
_DERIVED_KEYS = frozenset(
    {
        "video_duration",
        "video_resolution",
        "masklet_size_rel",
        "masklet_size_abs",
        "masklet_size_bucket",
        "masklet_visibility_changes",
        "masklet_first_appeared_frame",
        "masklet_frame_count",
        "masklet_num",
    }
)


@dataclasses.dataclass
class SavAnnotation:
    """One SA-V annotation file. `masklet[k][j]` is the RLE of object `masklet_id[j]` on
    annotated frame k (video frame `frame_stride * k`); H, W are `video_height, video_width`."""

    video_id: str
    video_height: int
    video_width: int
    masklet: list[list[RLE]]
    masklet_id: list[int]
    video_frame_count: int
    fps: float = SAV_FPS
    frame_stride: int = SAV_FRAME_STRIDE
    video_environment: str | list[str] = ""
    video_split: str = ""
    masklet_type: list[str] = dataclasses.field(default_factory=list)
    masklet_edited_frame_count: list[int] = dataclasses.field(default_factory=list)
    masklet_stability_score: list[Any] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def num_annotated_frames(self) -> int:
        return len(self.masklet)

    def frame_indices(self) -> list[int]:
        """Video frame index of each annotated frame: `[0, 4, 8, ...]`."""
        return [self.frame_stride * k for k in range(self.num_annotated_frames)]

    def masks_at(self, annotated_index: int) -> dict[int, np.ndarray]:
        """`{obj_id: (H, W) bool}` on annotated frame `annotated_index` (video frame
        `frame_stride * annotated_index`)."""
        if not 0 <= annotated_index < self.num_annotated_frames:
            raise InputError(
                f"annotated frame {annotated_index} is out of range: valid indices are "
                f"0..{self.num_annotated_frames - 1}"
            )
        row = self.masklet[annotated_index]
        return {obj_id: rle_to_mask(rle) for obj_id, rle in zip(self.masklet_id, row, strict=True)}


def masklet_stats(annotation: SavAnnotation) -> dict[str, list[Any]]:
    """The derived per-object fields (see the module docstring), computed from the RLEs."""
    resolution = annotation.video_height * annotation.video_width
    areas = np.array(
        [[rle_area(rle) for rle in row] for row in annotation.masklet], dtype=np.float64
    ).reshape(annotation.num_annotated_frames, len(annotation.masklet_id))
    stats: dict[str, list[Any]] = {key: [] for key in _PER_OBJECT_DERIVED}
    for column in areas.T:
        visible = column > 0
        size_abs = float(column[visible].mean()) if visible.any() else 0.0
        first = int(np.argmax(visible)) if visible.any() else len(column)
        stats["masklet_size_abs"].append(size_abs)
        stats["masklet_size_rel"].append(size_abs / resolution if resolution else 0.0)
        stats["masklet_size_bucket"].append(_size_bucket(size_abs))
        stats["masklet_first_appeared_frame"].append(float(first))
        stats["masklet_visibility_changes"].append(int(np.count_nonzero(np.diff(visible[first:]))))
        stats["masklet_frame_count"].append(len(column))
    return stats


_PER_OBJECT_DERIVED = (
    "masklet_size_rel",
    "masklet_size_abs",
    "masklet_size_bucket",
    "masklet_visibility_changes",
    "masklet_first_appeared_frame",
    "masklet_frame_count",
)


def _size_bucket(size_abs: float) -> str:
    if size_abs < 32**2:
        return "small"
    return "medium" if size_abs < 96**2 else "large"


def sav_annotation_from_masks(
    video_id: str,
    frames: Sequence[Mapping[int, np.ndarray]],
    height: int,
    width: int,
    *,
    obj_ids: Sequence[int] | None = None,
    video_frame_count: int | None = None,
    frame_stride: int = SAV_FRAME_STRIDE,
    fps: float = SAV_FPS,
    **fields: Any,
) -> SavAnnotation:
    """Build an annotation from per-annotated-frame masks `frames[k] = {obj_id: (H, W) mask}`
    (frame k is video frame `frame_stride * k`). Objects missing from a frame get an empty RLE.
    `obj_ids` defaults to every id seen, sorted. Other `SavAnnotation` fields pass as keywords.
    """
    ids = sorted({int(i) for frame in frames for i in frame}) if obj_ids is None else list(obj_ids)
    blank = empty_rle(height, width)
    rows: list[list[RLE]] = []
    for k, frame in enumerate(frames):
        row = []
        for obj_id in ids:
            mask = frame.get(obj_id)
            if mask is not None and np.asarray(mask).shape != (height, width):
                raise InputError(
                    f"mask of object {obj_id} on annotated frame {k} has shape "
                    f"{np.asarray(mask).shape}, expected {(height, width)}"
                )
            row.append(dict(blank) if mask is None else mask_to_rle(mask))
        rows.append(row)
    count = frame_stride * (len(rows) - 1) + 1 if video_frame_count is None else video_frame_count
    return SavAnnotation(
        video_id=video_id,
        video_height=height,
        video_width=width,
        masklet=rows,
        masklet_id=ids,
        video_frame_count=max(count, 0),
        fps=fps,
        frame_stride=frame_stride,
        **fields,
    )


def sav_to_json_dict(annotation: SavAnnotation) -> dict[str, Any]:
    """The JSON object of a SA-V annotation file (derived fields computed from the masks)."""
    num_objects = len(annotation.masklet_id)
    for k, row in enumerate(annotation.masklet):
        if len(row) != num_objects:
            raise InputError(f"annotated frame {k} has {len(row)} RLEs for {num_objects} objects")
    stats = masklet_stats(annotation)
    height, width = annotation.video_height, annotation.video_width
    data: dict[str, Any] = {
        "video_id": annotation.video_id,
        "video_duration": annotation.video_frame_count / annotation.fps if annotation.fps else 0.0,
        "video_frame_count": float(annotation.video_frame_count),
        "video_height": float(height),
        "video_width": float(width),
        "video_resolution": float(height * width),
        "video_environment": annotation.video_environment,
        "video_split": annotation.video_split,
        "masklet": [[compress_rle(rle) for rle in row] for row in annotation.masklet],
        "masklet_id": [int(i) for i in annotation.masklet_id],
        **stats,
        "masklet_edited_frame_count": _per_object(
            annotation.masklet_edited_frame_count, 0, num_objects
        ),
        "masklet_type": _per_object(annotation.masklet_type, "manual", num_objects),
        "masklet_stability_score": _per_object(
            annotation.masklet_stability_score, None, num_objects
        ),
        "masklet_num": num_objects,
    }
    data.update(annotation.extra)
    return data


def _per_object(values: list[Any], default: Any, count: int) -> list[Any]:
    if not values:
        return [default] * count
    if len(values) != count:
        raise InputError(f"per-object list has {len(values)} entries for {count} objects")
    return list(values)


def write_sav_json(path: str | Path, annotation: SavAnnotation) -> None:
    """Write a SA-V annotation file atomically (parent folders are created)."""
    write_json(path, sav_to_json_dict(annotation))


def read_sav_json(
    path: str | Path, *, fps: float = SAV_FPS, frame_stride: int = SAV_FRAME_STRIDE
) -> SavAnnotation:
    """Read a SA-V annotation file (`fps`, `frame_stride`: the video's, not stored in the file).
    Derived statistics in the file are not kept (recompute them with `masklet_stats`);
    unknown keys go to `extra`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise InputError(f"SA-V annotation file not found: {path}") from error
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read SA-V annotation file {path}: {error}") from error
    return sav_from_json_dict(data, source=str(path), fps=fps, frame_stride=frame_stride)


def sav_from_json_dict(
    data: Mapping[str, Any],
    *,
    source: str = "<dict>",
    fps: float = SAV_FPS,
    frame_stride: int = SAV_FRAME_STRIDE,
) -> SavAnnotation:
    """Parse the JSON object of a SA-V annotation file (see `read_sav_json`)."""
    required = ("video_id", "video_height", "video_width", "masklet", "masklet_id")
    missing = [key for key in required if key not in data]
    if missing:
        raise InputError(f"{source} is not a SA-V annotation: missing {', '.join(missing)}")
    known = (
        set(required)
        | _DERIVED_KEYS
        | {
            "video_frame_count",
            "video_environment",
            "video_split",
            "masklet_type",
            "masklet_edited_frame_count",
            "masklet_stability_score",
        }
    )
    frame_count = data.get("video_frame_count")
    if frame_count is None:
        frame_count = max(frame_stride * (len(data["masklet"]) - 1) + 1, 0)
    rows = [list(row) for row in data["masklet"]]
    return SavAnnotation(
        video_id=str(data["video_id"]),
        video_height=int(data["video_height"]),
        video_width=int(data["video_width"]),
        masklet=rows,
        masklet_id=[int(i) for i in data["masklet_id"]],
        video_frame_count=int(frame_count),
        fps=fps,
        frame_stride=frame_stride,
        video_environment=data.get("video_environment", ""),
        video_split=str(data.get("video_split", "")),
        masklet_type=list(data.get("masklet_type", [])),
        masklet_edited_frame_count=list(data.get("masklet_edited_frame_count", [])),
        masklet_stability_score=list(data.get("masklet_stability_score") or []),
        extra={key: value for key, value in data.items() if key not in known},
    )
