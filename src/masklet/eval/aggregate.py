"""Aggregation of per-frame J and F into per-object, per-video and dataset scores.

Per object, each of J and F is summarised DAVIS-style by three statistics over the evaluated
frames (semi-supervised VOS leaves out the first and last annotated frame):

- mean: the average over frames;
- recall: the share of frames whose value is above 0.5;
- decay: the mean over the first of four temporal bins minus the mean over the last one.
  The bin edges are DAVIS's ``round(linspace(1, n, 5)) - 1`` (0-based frame positions), and
  each bin includes both of its edges, so neighbouring bins share one frame. For n = 8 the
  bins are frames 0-2, 2-4, 4-5 and 5-7; for n = 10 they are 0-2, 2-5, 5-7 and 7-9.

A video's score is the average over its objects; the dataset score is the average over all
objects of all videos (as DAVIS and the SA-V evaluator do), not over videos.
J&F is ``(J + F) / 2`` of the corresponding means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

DECAY_BINS = 4
RECALL_THRESHOLD = 0.5


@dataclass(frozen=True)
class MetricStatistics:
    """DAVIS summary of one measure (J or F) over frames or objects.

    Attributes:
        mean: average value in [0, 1] (NaN when there are no frames).
        recall: share of frames with value > 0.5, in [0, 1].
        decay: mean of the first temporal quarter minus mean of the last, in [-1, 1].
    """

    mean: float
    recall: float
    decay: float


def decay_bins(num_frames: int) -> list[tuple[int, int]]:
    """DAVIS's four temporal bins as inclusive ``(first, last)`` frame positions."""
    if num_frames <= 0:
        return []
    edges = np.round(np.linspace(1, num_frames, DECAY_BINS + 1) + 1e-10).astype(int) - 1
    return [(int(edges[i]), int(edges[i + 1])) for i in range(DECAY_BINS)]


def frame_statistics(values: Sequence[float]) -> MetricStatistics:
    """Mean, recall and decay of per-frame values (see the module docstring).

    Args:
        values: per-frame J or F values in temporal order.
    Returns:
        MetricStatistics; all fields NaN for an empty sequence.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        nan = float("nan")
        return MetricStatistics(mean=nan, recall=nan, decay=nan)
    bins = decay_bins(array.size)
    first = array[bins[0][0] : bins[0][1] + 1]
    last = array[bins[-1][0] : bins[-1][1] + 1]
    return MetricStatistics(
        mean=float(array.mean()),
        recall=float(np.mean(array > RECALL_THRESHOLD)),
        decay=float(first.mean() - last.mean()),
    )


def _nan_mean(values: Sequence[float]) -> float:
    finite = [value for value in values if not np.isnan(value)]
    return float(np.mean(finite)) if finite else float("nan")


def average_statistics(items: Sequence[MetricStatistics]) -> MetricStatistics:
    """Field-wise mean of several statistics (objects of a video, or of a dataset)."""
    return MetricStatistics(
        mean=_nan_mean([item.mean for item in items]),
        recall=_nan_mean([item.recall for item in items]),
        decay=_nan_mean([item.decay for item in items]),
    )


@dataclass(frozen=True)
class ObjectScores:
    """Scores of one object in one video.

    Attributes:
        object_id: the object's label (DAVIS palette index, or SA-V folder number).
        frames: names of the evaluated frames (file stems, e.g. ``"00004"``), in order.
        j_per_frame: J on each evaluated frame, aligned with ``frames``.
        f_per_frame: F on each evaluated frame, aligned with ``frames``.
    """

    object_id: int
    frames: tuple[str, ...]
    j_per_frame: tuple[float, ...]
    f_per_frame: tuple[float, ...]

    @property
    def j(self) -> MetricStatistics:
        """Summary of J over the evaluated frames."""
        return frame_statistics(self.j_per_frame)

    @property
    def f(self) -> MetricStatistics:
        """Summary of F over the evaluated frames."""
        return frame_statistics(self.f_per_frame)

    @property
    def j_and_f(self) -> float:
        """``(mean J + mean F) / 2``."""
        return (self.j.mean + self.f.mean) / 2.0


class _ObjectAverages:
    """J, F and J&F averaged over the objects returned by `scored_objects` (DAVIS and SA-V
    average over objects, for one video as for a whole set)."""

    def scored_objects(self) -> tuple[ObjectScores, ...]:
        raise NotImplementedError

    @property
    def j(self) -> MetricStatistics:
        """Average of the objects' J statistics."""
        return average_statistics([obj.j for obj in self.scored_objects()])

    @property
    def f(self) -> MetricStatistics:
        """Average of the objects' F statistics."""
        return average_statistics([obj.f for obj in self.scored_objects()])

    @property
    def j_and_f(self) -> float:
        """``(mean J + mean F) / 2`` over the objects: the headline number."""
        return (self.j.mean + self.f.mean) / 2.0


@dataclass(frozen=True)
class VideoScores(_ObjectAverages):
    """Scores of all objects in one video.

    Attributes:
        name: the video (sequence) name.
        objects: per-object scores, sorted by object id.
        missing_files: prediction files that did not exist (scored as empty masks), as paths
            relative to the prediction root.
    """

    name: str
    objects: tuple[ObjectScores, ...]
    missing_files: tuple[str, ...] = field(default_factory=tuple)

    def scored_objects(self) -> tuple[ObjectScores, ...]:
        return self.objects


@dataclass(frozen=True)
class EvaluationResult(_ObjectAverages):
    """Scores of a whole prediction set against a ground-truth set.

    Attributes:
        dataset_format: ``"davis"`` or ``"sav"``.
        videos: per-video scores, sorted by name.
        skip_first_last: whether the first and last annotated frames were left out.
    """

    dataset_format: str
    videos: tuple[VideoScores, ...]
    skip_first_last: bool = True

    @property
    def objects(self) -> tuple[ObjectScores, ...]:
        """All objects of all videos, in video order."""
        return tuple(obj for video in self.videos for obj in video.objects)

    def scored_objects(self) -> tuple[ObjectScores, ...]:
        return self.objects

    @property
    def missing_files(self) -> tuple[str, ...]:
        """All missing prediction files, relative to the prediction root."""
        return tuple(name for video in self.videos for name in video.missing_files)
