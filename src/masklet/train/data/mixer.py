"""The training loop's entry point: weighted dataset mixing and deterministic clips.

`TrainingData.sample(index)` draws everything from `numpy.random.default_rng([seed, index])`
(no global random state): which source (probability proportional to its weight), which
video, which frames and objects, and every augmentation. A resumed or distributed run asking
for the same sample indices therefore sees exactly the same clips, whatever the worker or
process count. `TrainingDataset` wraps it for a `torch.utils.data.DataLoader` (with
`collate_clips`, which keeps the clips as a list since their T and K differ).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset

from masklet.errors import ConfigError, InputError
from masklet.train.data.augment import AugmentOptions, augment_clip
from masklet.train.data.video import ClipSampler, ClipSource
from masklet.train.types import TrainClip

#: Clips drawn before giving up when augmentation leaves no object visible on frame 0.
MAX_CLIP_ATTEMPTS = 10
DEFAULT_EPOCH_LENGTH = 1_000_000


class SourceMixer:
    """Picks a source with probability proportional to its weight.

    Raises:
        ConfigError: no source, or a weight that is not a finite number > 0.
    """

    def __init__(self, sources: Sequence[tuple[ClipSource, float]]) -> None:
        if not sources:
            raise ConfigError("training data needs at least one source")
        for source, weight in sources:
            if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0):
                raise ConfigError(
                    f"the weight of source {getattr(source, 'name', source)!r} must be a "
                    f"finite number > 0, got {weight!r}"
                )
        self.sources = [source for source, _ in sources]
        weights = np.array([float(weight) for _, weight in sources])
        self.probabilities = weights / weights.sum()

    def pick(self, rng: np.random.Generator) -> ClipSource:
        """One source, drawn from `rng`."""
        return self.sources[int(rng.choice(len(self.sources), p=self.probabilities))]


class TrainingData:
    """Deterministic training clips from weighted sources.

    Args:
        sources: `(source, weight)` pairs (`open_source` builds sources); weights > 0.
        image_size: the side S of the model's square input.
        num_frames: frames per video clip (image sources always give 1).
        max_objects: most objects per clip.
        reverse_time_prob: probability that a video clip runs backwards.
        augment: augmentation knobs.
        seed: run seed (>= 0); sample `index` depends only on `(seed, index)`.
    Raises:
        ConfigError: bad sizes, probabilities or weights, or a source whose videos all have
            fewer frames than `num_frames`.
    """

    def __init__(
        self,
        sources: Sequence[tuple[ClipSource, float]],
        image_size: int,
        num_frames: int,
        max_objects: int,
        reverse_time_prob: float,
        augment: AugmentOptions,
        seed: int,
    ) -> None:
        if image_size < 8:
            raise ConfigError(f"image_size must be >= 8, got {image_size}")
        if seed < 0:
            raise ConfigError(f"seed must be >= 0, got {seed}")
        self.mixer = SourceMixer(sources)
        self.sampler = ClipSampler(num_frames, max_objects, reverse_time_prob)
        for source in self.mixer.sources:
            fixed = source.frames_per_video
            if not source.images_only and fixed is not None and fixed < num_frames:
                raise ConfigError(
                    f"source {source.name!r} has videos of {fixed} frames, fewer than the clip "
                    f"length num_frames={num_frames}"
                )
        self.image_size = image_size
        self.augment = augment
        self.seed = seed

    def sample(self, index: int) -> TrainClip:
        """Training clip number `index` (>= 0): images `(T, 3, S, S)` uint8, masks
        `(T, K, S, S)` bool with `1 <= K <= max_objects` and an object visible on frame 0;
        T = `num_frames`, or 1 from an image source.

        Raises:
            InputError: a video that cannot give a clip (too short, no visible object,
                unreadable files), named in the message.
        """
        if index < 0:
            raise InputError(f"sample index must be >= 0, got {index}")
        rng = np.random.default_rng([self.seed, index])
        for _ in range(MAX_CLIP_ATTEMPTS):
            source = self.mixer.pick(rng)
            video = source.video(int(rng.integers(len(source))))
            length = 1 if source.images_only else self.sampler.num_frames
            sampled = self.sampler.sample(video, rng, dataset=source.name, clip_length=length)
            clip = augment_clip(sampled, self.image_size, self.augment, rng)
            if bool(clip.masks[0].any()):
                return clip
        raise InputError(
            f"sample {index}: {MAX_CLIP_ATTEMPTS} clips in a row lost every object on their "
            f"first frame after resizing to {self.image_size} (last: {clip.name}); objects "
            f"too small for this image size?"
        )


class TrainingDataset(Dataset[TrainClip]):
    """`TrainingData` as a map-style dataset: item `index` is `data.sample(index)`.

    `length` is what `len()` reports (a DataLoader's epoch); any index >= 0 works.
    """

    def __init__(self, data: TrainingData, length: int = DEFAULT_EPOCH_LENGTH) -> None:
        if length < 1:
            raise ConfigError(f"dataset length must be >= 1, got {length}")
        self.data = data
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> TrainClip:
        return self.data.sample(int(index))


def collate_clips(batch: Sequence[TrainClip]) -> list[TrainClip]:
    """A DataLoader `collate_fn`: the batch's clips as a list (their T and K differ)."""
    return list(batch)
