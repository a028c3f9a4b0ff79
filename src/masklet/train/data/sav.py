"""SA-V training layout reader: videos with `<id>_manual.json` masklet annotations.

    <root>/[any sub-folders/]<id>.mp4             the 24 fps video, or
    <root>/[any sub-folders/]<id>/%05d.jpg        its frames, numbered by video frame index
    <root>/[any sub-folders/]<id>_manual.json     masklets on every 4th frame (`masklet.io.sav`)
    <root>/[any sub-folders/]<id>_auto.json       automatic masklets (used only when asked)

Annotated position k is video frame `frame_stride * k` (4 * k). With `include_auto`, the
automatic masklets of a video are extra objects whose ids are `AUTO_ID_OFFSET + masklet id`,
so they never collide with the manual ones. Visibility is measured on the RLEs without
decoding them (`rle_area`); only the chosen objects' masks are decoded (`rle_to_mask`).
Annotation files are parsed when a video is opened, with a small per-source cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from masklet.errors import InputError
from masklet.io.image_folder import load_rgb_image
from masklet.io.rle import RLE, rle_area, rle_to_mask
from masklet.io.sav import SavAnnotation, read_sav_json
from masklet.io.video_file import VideoFileSource
from masklet.lru import LRUCache
from masklet.train.data.video import NUMBERED_JPEG, AnnotatedVideo, check_folder, numbered_files

MANUAL_SUFFIX = "_manual.json"
AUTO_SUFFIX = "_auto.json"
AUTO_ID_OFFSET = 100_000
ANNOTATION_CACHE_SIZE = 8
LAYOUT_HINT = "expected <id>.mp4 (or an <id>/ folder of JPEG frames) next to <id>_manual.json"


@dataclass(frozen=True)
class SavEntry:
    """Where one SA-V video's files are."""

    video_id: str
    frames: Path
    manual: Path
    auto: Path | None


class SavVideo(AnnotatedVideo):
    """One SA-V video: frames decoded on demand, masks from the parsed annotations."""

    def __init__(self, entry: SavEntry, annotations: Sequence[tuple[int, SavAnnotation]]):
        self.name = entry.video_id
        self.entry = entry
        self.frame_stride = annotations[0][1].frame_stride
        self._num_frames = min(len(annotation.masklet) for _, annotation in annotations)
        self._rles: list[dict[int, RLE]] = [{} for _ in range(self._num_frames)]
        for offset, annotation in annotations:
            for position in range(self._num_frames):
                row = annotation.masklet[position]
                if len(row) != len(annotation.masklet_id):
                    raise InputError(
                        f"{entry.manual}: annotated frame {position} has {len(row)} RLEs for "
                        f"{len(annotation.masklet_id)} objects"
                    )
                for obj_id, rle in zip(annotation.masklet_id, row, strict=True):
                    self._rles[position][offset + obj_id] = rle

    @property
    def num_frames(self) -> int:
        return self._num_frames

    def frame_number(self, position: int) -> int:
        return self.frame_stride * position

    def visible_objects(self, position: int) -> list[int]:
        return sorted(obj_id for obj_id, rle in self._rles[position].items() if rle_area(rle))

    def read_masks(self, position: int, obj_ids: Sequence[int]) -> dict[int, np.ndarray]:
        row = self._rles[position]
        return {obj_id: rle_to_mask(row[obj_id]) for obj_id in obj_ids if obj_id in row}

    def read_frames(self, positions: Sequence[int]) -> np.ndarray:
        numbers = [self.frame_number(p) for p in positions]
        if self.entry.frames.is_dir():
            files = numbered_files(self.entry.frames, NUMBERED_JPEG)
            missing = [n for n in numbers if n not in files]
            if missing:
                raise InputError(
                    f"SA-V video {self.name}: no frame {missing[0]:05d}.jpg in {self.entry.frames}"
                )
            return np.stack([load_rgb_image(files[n]) for n in numbers])
        decoded: dict[int, np.ndarray] = {}
        with VideoFileSource(self.entry.frames, cache_size=0) as source:
            for number in sorted(set(numbers)):
                decoded[number] = source.get(number)
        return np.stack([decoded[n] for n in numbers])


def _frames_of(manual: Path, video_id: str) -> Path | None:
    """The video file or frame folder next to an annotation file, or None."""
    video = manual.with_name(f"{video_id}.mp4")
    if video.is_file():
        return video
    folder = manual.with_name(video_id)
    return folder if folder.is_dir() else None


class SavSource:
    """SA-V training videos (see the module docstring).

    Args:
        root: folder searched recursively for `*_manual.json` files with their videos.
        include_auto: also use the `<id>_auto.json` masklets (default: manual only).
        name: dataset name used in clip names.
    Raises:
        InputError: a missing folder, or no annotation file with a video next to it.
    """

    images_only = False
    frames_per_video: int | None = None

    def __init__(self, root: str | Path, *, include_auto: bool = False, name: str = "sav"):
        self.root = check_folder(root, "SA-V folder")
        self.name = name
        self.include_auto = include_auto
        self.entries = self._list_entries()
        self._cache: LRUCache[int, list[tuple[int, SavAnnotation]]] = LRUCache(
            ANNOTATION_CACHE_SIZE
        )

    def _list_entries(self) -> list[SavEntry]:
        entries = []
        for manual in sorted(self.root.rglob(f"*{MANUAL_SUFFIX}")):
            video_id = manual.name[: -len(MANUAL_SUFFIX)]
            frames = _frames_of(manual, video_id)
            if frames is None:
                continue
            auto = manual.with_name(f"{video_id}{AUTO_SUFFIX}")
            entries.append(SavEntry(video_id, frames, manual, auto if auto.is_file() else None))
        if not entries:
            raise InputError(f"no SA-V videos in {self.root}: {LAYOUT_HINT}")
        return entries

    def __len__(self) -> int:
        return len(self.entries)

    def video(self, index: int) -> AnnotatedVideo:
        """Open video `index` (its annotation files are parsed now, or taken from the cache)."""
        entry = self.entries[index]
        annotations = self._cache.get(index)
        if annotations is None:
            annotations = [(0, read_sav_json(entry.manual))]
            if self.include_auto and entry.auto is not None:
                annotations.append((AUTO_ID_OFFSET, read_sav_json(entry.auto)))
            self._cache.put(index, annotations)
        return SavVideo(entry, annotations)
