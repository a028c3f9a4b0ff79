"""Validation during training: J&F on held-out synthetic videos.

The videos are made by `masklet.bench` from the evaluation split of the photos
(`PhotoLibrary.split("eval")`), which the training sources never use, with a seed of their
own. Each object gets its ground-truth mask on frame 0; the model then tracks it through the
video with the inference path (`VideoSession`, no autograd, eval mode), and J&F is scored on
every frame but the first and the last (semi-supervised VOS, DESIGN §6).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from masklet.bench import PhotoLibrary, SyntheticVideo, SyntheticVideoConfig, make_synthetic_video
from masklet.eval.metrics import boundary_f_measure, region_similarity
from masklet.io import ArraySource
from masklet.model.sam2 import SAM2Model
from masklet.session import MaskPrompt, SessionOptions, VideoSession

#: Seed of the validation videos (distinct from any training seed a config is likely to use).
VALIDATION_SEED = 900_001


@dataclass(frozen=True)
class ValidationResult:
    """Mean J, F and J&F over the objects of all validation videos."""

    j: float
    f: float
    j_and_f: float


def make_validation_videos(
    photos: str | None, count: int, num_frames: int, width: int = 320, height: int = 180
) -> list[SyntheticVideo]:
    """`count` held-out videos from the evaluation photo split (deterministic)."""
    library = PhotoLibrary.from_folder(photos or None).split("eval")
    config = SyntheticVideoConfig(width=width, height=height, num_frames=max(num_frames, 8))
    return [make_synthetic_video(library, config, VALIDATION_SEED, i) for i in range(count)]


def object_masks(video: SyntheticVideo) -> dict[int, list[np.ndarray]]:
    ids = sorted(int(v) for v in np.unique(video.labels[0]) if v != 0)
    return {obj_id: [labels == obj_id for labels in video.labels] for obj_id in ids}


def resized_mask(mask: np.ndarray, size: int) -> torch.Tensor:
    """A mask prompt at the model's input size: `(H, W)` bool -> `(1, 1, size, size)` float
    0/1 (nearest)."""
    tensor = torch.from_numpy(mask).float()[None, None]
    resized = torch.nn.functional.interpolate(tensor, size=(size, size), mode="nearest")
    return (resized > 0.5).float()


Tracks = dict[int, list[np.ndarray]]
#: Prompts the objects of a video on frame 0: `(session, true masks, model input size)`.
Prompter = Callable[[VideoSession, Tracks, int], None]


def prompt_with_masks(session: VideoSession, truth: Tracks, size: int) -> None:
    """Each object gets its true mask of frame 0."""
    for obj_id, masks in truth.items():
        session.add_mask(0, obj_id, MaskPrompt(resized_mask(masks[0], size).to(session.device)))


@dataclass(frozen=True)
class TrackedVideo:
    """What tracking a video gave: `masks {obj_id: T x (H, W) bool}` and the object score
    logits `{obj_id: T}` of the tracked frames (+inf on prompted frames)."""

    masks: Tracks
    object_scores: dict[int, list[float]]


def track_video(
    model: SAM2Model,
    video: SyntheticVideo,
    prompt: Prompter = prompt_with_masks,
    prompted_frame_only: bool = False,
) -> TrackedVideo:
    """Prompt the objects of frame 0 with `prompt` and track them through the video.

    `prompted_frame_only`: memory attention gets only the prompted frame (no tracked frames'
    memories or object pointers), to measure what memory is worth."""
    truth = object_masks(video)
    session = VideoSession(model, ArraySource(list(video.frames)), SessionOptions())
    if prompted_frame_only:
        rule = session.engine.memory_rule
        session.engine.memory_rule = replace(rule, num_maskmem=1, max_object_pointers=1)
    prompt(session, truth, model.image_size)
    masks: Tracks = {obj_id: [] for obj_id in truth}
    scores: dict[int, list[float]] = {obj_id: [] for obj_id in truth}
    for frame_idx in range(len(video.frames)):
        result = session.step(frame_idx)
        for row, obj_id in enumerate(result.obj_ids):
            masks[obj_id].append(result.masks[row, 0].cpu().numpy())
            output = session.existing_object(obj_id).store.tracked.get(frame_idx)
            score = float("inf") if output is None else float(output.object_score_logits)
            scores[obj_id].append(score)
    return TrackedVideo(masks, scores)


def score_video(
    predicted: dict[int, list[np.ndarray]], truth: dict[int, list[np.ndarray]]
) -> list[tuple[float, float]]:
    """(mean J, mean F) per object over frames 1 .. T-2."""
    scores = []
    for obj_id, true_masks in truth.items():
        frames = range(1, len(true_masks) - 1)
        j = [region_similarity(predicted[obj_id][t], true_masks[t]) for t in frames]
        f = [boundary_f_measure(predicted[obj_id][t], true_masks[t]) for t in frames]
        scores.append((float(np.mean(j)), float(np.mean(f))))
    return scores


def validate(model: SAM2Model, videos: Sequence[SyntheticVideo]) -> ValidationResult:
    """J&F of `model` on `videos` (the model is put in eval mode and back)."""
    was_training = model.training
    model.eval()
    scores: list[tuple[float, float]] = []
    try:
        with torch.inference_mode():
            for video in videos:
                scores += score_video(track_video(model, video).masks, object_masks(video))
    finally:
        model.train(was_training)
    j = float(np.mean([s[0] for s in scores])) if scores else float("nan")
    f = float(np.mean([s[1] for s in scores])) if scores else float("nan")
    return ValidationResult(j, f, (j + f) / 2)
