"""The common types of the training data pipeline, and the clip sampler.

An `AnnotatedVideo` is a sequence of annotated frames, addressed by *position* 0..N-1 (the
n-th annotated frame, whatever its number in the video: SA-V annotates every 4th frame, so
position 2 is video frame 8). An image is a video of one annotated frame. A `ClipSource` is a
sequence of such videos (a dataset). The `ClipSampler` draws a `SampledClip` from a video:
`T` consecutive annotated frames at full resolution and the masks of up to `max_objects`
objects visible on the clip's first frame.

Conventions: frames are `(H, W, 3)` uint8 RGB numpy arrays, masks `(H, W)` bool numpy arrays
in the same pixel grid (row 0 at the top); object ids are the ids of the source annotation.
Every random choice takes an explicit `numpy.random.Generator`.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from masklet.errors import ConfigError, InputError

#: Random starts tried before a video is declared to have no object on any first frame.
MAX_START_RETRIES = 20
#: Frame files named by their frame number: `00012.jpg`, `12.png`.
NUMBERED_JPEG = re.compile(r"^(\d+)\.jpe?g$", re.IGNORECASE)
NUMBERED_PNG = re.compile(r"^(\d+)\.png$", re.IGNORECASE)


class AnnotatedVideo(abc.ABC):
    """One annotated video (or image): frames and per-object masks at annotated positions."""

    #: name of the video in its dataset (a sequence name, a SA-V id, an image file stem).
    name: str

    @property
    @abc.abstractmethod
    def num_frames(self) -> int:
        """Number of annotated frames (positions)."""

    @abc.abstractmethod
    def frame_number(self, position: int) -> int:
        """The frame's index in the video (file number or decoded index) at `position`."""

    @abc.abstractmethod
    def visible_objects(self, position: int) -> list[int]:
        """Ids of the objects with a non-empty mask at `position`, sorted."""

    @abc.abstractmethod
    def read_masks(self, position: int, obj_ids: Sequence[int]) -> dict[int, np.ndarray]:
        """`{obj_id: (H, W) bool}` at `position` for those of `obj_ids` that are annotated
        there; an object left out is absent from the frame."""

    @abc.abstractmethod
    def read_frames(self, positions: Sequence[int]) -> np.ndarray:
        """The frames at `positions`, in that order: `(T, H, W, 3)` uint8 RGB."""


class ClipSource(Protocol):
    """A dataset of annotated videos, as `TrainingData` uses it.

    Attributes:
        name: short dataset name used in clip names (`"davis"`, `"sav"`, ...).
        images_only: True for image datasets: a clip is always one frame.
        frames_per_video: every video's annotated frame count when it is fixed (synthetic
            videos), else None; lets `TrainingData` reject a too-long clip length up front.
    """

    name: str
    images_only: bool
    frames_per_video: int | None

    def __len__(self) -> int: ...

    def video(self, index: int) -> AnnotatedVideo: ...


@dataclass(frozen=True)
class SampledClip:
    """A clip drawn from a video, before augmentation.

    Attributes:
        name: `"<dataset>/<video>@<frame number of the clip's first frame>"`.
        frames: `(T, H, W, 3)` uint8 RGB, in clip order (reversed clips run backwards).
        masks: `(T, K, H, W)` bool; object k's mask on clip frame t, all False where absent.
        obj_ids: the K objects' ids in the source annotation.
    """

    name: str
    frames: np.ndarray
    masks: np.ndarray
    obj_ids: tuple[int, ...]


@dataclass(frozen=True)
class ClipSampler:
    """Draws `num_frames` consecutive annotated frames from a uniformly random start, time
    reversed with probability `reverse_time_prob`, and a random subset of at most
    `max_objects` of the objects visible (non-empty mask) on the clip's first frame.

    A start whose first frame shows no object is redrawn, at most `max_start_retries` times.
    """

    num_frames: int
    max_objects: int
    reverse_time_prob: float = 0.0
    max_start_retries: int = MAX_START_RETRIES

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.max_objects < 1:
            raise ConfigError(f"max_objects must be >= 1, got {self.max_objects}")
        if not 0.0 <= self.reverse_time_prob <= 1.0:
            raise ConfigError(f"reverse_time_prob must be in [0, 1], got {self.reverse_time_prob}")
        if self.max_start_retries < 1:
            raise ConfigError(f"max_start_retries must be >= 1, got {self.max_start_retries}")

    def sample(
        self,
        video: AnnotatedVideo,
        rng: np.random.Generator,
        *,
        dataset: str = "",
        clip_length: int | None = None,
    ) -> SampledClip:
        """Draw one clip of `clip_length` frames (default `num_frames`) from `video`.

        Raises:
            InputError: the video has fewer annotated frames than the clip length, or no
                object is visible on the first frame of any drawn start.
        """
        length = self.num_frames if clip_length is None else clip_length
        positions, visible = self._draw_positions(video, rng, length)
        count = min(len(visible), self.max_objects)
        chosen = sorted(int(i) for i in rng.choice(visible, size=count, replace=False))
        frames = video.read_frames(positions)
        if frames.ndim != 4 or frames.shape[0] != len(positions) or frames.shape[-1] != 3:
            raise InputError(
                f"{video.name}: frames have shape {frames.shape}, expected (T, H, W, 3)"
            )
        masks = np.stack(
            [self._frame_masks(video, p, chosen, frames.shape[1:3]) for p in positions]
        )
        prefix = f"{dataset}/" if dataset else ""
        name = f"{prefix}{video.name}@{video.frame_number(positions[0])}"
        return SampledClip(name, frames, masks, tuple(chosen))

    def _draw_positions(
        self, video: AnnotatedVideo, rng: np.random.Generator, length: int
    ) -> tuple[list[int], list[int]]:
        """Positions of the clip, in clip order, and the objects visible on its first one."""
        total = video.num_frames
        if total < length:
            raise InputError(
                f"video {video.name} has {total} annotated frames, fewer than the clip length "
                f"{length}: lower num_frames or leave this video out"
            )
        visible_at: dict[int, list[int]] = {}
        for _ in range(self.max_start_retries):
            start = int(rng.integers(total - length + 1))
            positions = list(range(start, start + length))
            if rng.random() < self.reverse_time_prob:
                positions.reverse()
            first = positions[0]
            if first not in visible_at:
                visible_at[first] = video.visible_objects(first)
            if visible_at[first]:
                return positions, visible_at[first]
        raise InputError(
            f"video {video.name}: no object is visible on the first frame of any of "
            f"{self.max_start_retries} clips drawn from it (annotated frames tried: "
            f"{sorted(video.frame_number(p) for p in visible_at)})"
        )

    @staticmethod
    def _frame_masks(
        video: AnnotatedVideo, position: int, obj_ids: list[int], frame_hw: tuple[int, ...]
    ) -> np.ndarray:
        """`(K, H, W)` bool masks of `obj_ids` at `position` (all False where absent)."""
        read = video.read_masks(position, obj_ids)
        masks = np.zeros((len(obj_ids), *frame_hw), dtype=bool)
        for k, obj_id in enumerate(obj_ids):
            mask = read.get(obj_id)
            if mask is None:
                continue
            if mask.shape != tuple(frame_hw):
                raise InputError(
                    f"video {video.name}, frame {video.frame_number(position)}: mask of object "
                    f"{obj_id} is {mask.shape[1]}x{mask.shape[0]} but the frame is "
                    f"{frame_hw[1]}x{frame_hw[0]}"
                )
            masks[k] = mask
        return masks


def check_folder(path: str | Path, what: str) -> Path:
    """`path` as a `Path` when it is an existing folder, else `InputError` naming it and
    `what` was expected there."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise InputError(f"{what} not found: {folder} does not exist")
    if not folder.is_dir():
        raise InputError(f"{what} must be a folder: {folder} is a file")
    return folder


def numbered_files(folder: Path, pattern: re.Pattern[str]) -> dict[int, Path]:
    """`{frame number: file}` for the files of `folder` whose name matches `pattern` (its
    first group is the number)."""
    files = {}
    for path in folder.iterdir():
        match = pattern.match(path.name)
        if match and path.is_file():
            files[int(match.group(1))] = path
    return files
