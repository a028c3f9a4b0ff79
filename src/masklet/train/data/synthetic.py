"""Synthetic training videos rendered on the fly from real photos (`masklet.bench`).

Video `i` of a `SyntheticSource` is `make_synthetic_video(library, config, seed, i)`: it
depends only on `(seed, i)`, the knobs and the photos of the chosen split. Training uses the
"train" part of the photo folder (`PhotoLibrary.split`), validation the "eval" part, so that
validation videos never show a training photo. With `images=True` the source is an image
dataset: every clip is the first frame of such a video (a multi-object image).

Masks come from the exact label maps (labels 1..N = the annotated objects; look-alike
distractors are unannotated background).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from masklet.bench.config import SyntheticVideoConfig
from masklet.bench.photos import PhotoLibrary
from masklet.bench.synthetic import SyntheticVideo, make_synthetic_video
from masklet.errors import ConfigError, InputError
from masklet.io.masks import labels_to_masks
from masklet.train.data.video import AnnotatedVideo

DEFAULT_NUM_VIDEOS = 1_000_000
#: Seed streams tried for a video whose objects do not fit (see `SyntheticSource._render`).
RENDER_RETRIES = 5
RETRY_SEED_STRIDE = 1_000_003


class SyntheticClipVideo(AnnotatedVideo):
    """A rendered `SyntheticVideo`: every frame is annotated."""

    def __init__(self, video: SyntheticVideo) -> None:
        self.name = video.name
        self.frames = video.frames
        self.labels = video.labels
        self.sources = video.sources  # photo and shape names, for logs and tests

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def frame_number(self, position: int) -> int:
        return position

    def visible_objects(self, position: int) -> list[int]:
        present = np.unique(self.labels[position])
        return [int(label) for label in present if label != 0]

    def read_masks(self, position: int, obj_ids: Sequence[int]) -> dict[int, np.ndarray]:
        return labels_to_masks(self.labels[position], obj_ids)

    def read_frames(self, positions: Sequence[int]) -> np.ndarray:
        return np.stack([self.frames[p] for p in positions])


class SyntheticSource:
    """Synthetic videos (or multi-object images) from one part of a photo folder.

    Args:
        photos: photo folder (default `$MASKLET_SAMPLES`, else `~/.cache/masklet-samples`).
        split: "train" or "eval" part of the photos (`PhotoLibrary.split`).
        width, height: frame size in pixels.
        num_frames: frames per video (>= 8); at least the training clip length.
        num_objects: annotated objects per video (>= 2).
        num_videos: length of the source (videos are rendered when opened, so any size).
        seed: dataset seed; video i is rendered from `(seed, i)`.
        images: an image dataset: each clip is the first frame of a video (only that frame
            is rendered; every annotated object shows at least half of itself there).
        name: dataset name used in clip names.
        knobs: further `SyntheticVideoConfig` fields (`num_distractors`, `noise_std`, ...).
    Raises:
        InputError: no usable photo in the folder.
        ConfigError: a bad knob, split or size.
    """

    frames_per_video: int | None

    def __init__(
        self,
        photos: str | Path | None = None,
        *,
        split: str = "train",
        width: int = 256,
        height: int = 144,
        num_frames: int = 8,
        num_objects: int = 3,
        num_videos: int = DEFAULT_NUM_VIDEOS,
        seed: int = 0,
        images: bool = False,
        name: str = "synthetic",
        **knobs: Any,
    ) -> None:
        known = {field.name for field in fields(SyntheticVideoConfig)}
        unknown = sorted(set(knobs) - known)
        if unknown:
            raise ConfigError(
                f"unknown synthetic option {unknown[0]!r}; known: {', '.join(sorted(known))}"
            )
        if num_videos < 1 or seed < 0:
            raise ConfigError(f"num_videos must be >= 1 and seed >= 0, got {num_videos}, {seed}")
        self.config = SyntheticVideoConfig(
            width=width, height=height, num_frames=num_frames, num_objects=num_objects, **knobs
        )
        self.library = PhotoLibrary.from_folder(photos).split(split)
        self.split = split
        self.num_videos = num_videos
        self.seed = seed
        self.images_only = images
        self.frames_per_video = None if images else num_frames
        self.name = name

    def __len__(self) -> int:
        return self.num_videos

    def video(self, index: int) -> AnnotatedVideo:
        """Render video `index` (about 30-90 ms at 256x144, 8 frames)."""
        if not 0 <= index < self.num_videos:
            raise IndexError(f"synthetic video {index} out of range 0..{self.num_videos - 1}")
        return SyntheticClipVideo(self._render(index))

    def _render(self, index: int) -> SyntheticVideo:
        """Video `index`; when its draws cannot place every object visibly (crowded, large
        objects), the same index is drawn again from the next seed streams, so that a training
        run never stops on one unlucky video and stays deterministic."""
        failure = ""
        for retry in range(RENDER_RETRIES):
            try:
                return make_synthetic_video(
                    self.library,
                    self.config,
                    self.seed + retry * RETRY_SEED_STRIDE,
                    index,
                    leading_frames=1 if self.images_only else None,
                )
            except InputError as error:
                failure = str(error)
        raise InputError(
            f"{failure}, nor with {RENDER_RETRIES - 1} other seeds: fewer or smaller objects "
            f"(num_objects={self.config.num_objects}, object_size={self.config.object_size}) "
            f"fit in {self.config.width}x{self.config.height} frames"
        )
