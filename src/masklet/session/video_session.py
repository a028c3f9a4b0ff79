"""`VideoSession`: the state of tracking objects through one video or stream, with methods.

The session owns its objects (prompts, pending prompt results, memory banks), a bounded cache
of image encodings and the per-frame engine. Everything that changes tracking goes through a
named method, so its invariants hold: a frame's output is pending, conditioning or tracked,
never two of these; tracked outputs are evicted beyond the memory window; results shown for a
frame are the ones memory will use.

One step per frame: `step(frame_idx)` for a video read through its `FrameProvider`, or
`step(frame)` with the next frame of a live stream (an `(H, W, 3)` uint8 RGB array). Prompts
(`add_points`, `add_mask`) and edits (`clear_frame`, `remove_object`, `reset`) may come
between steps; `step` first encodes the memories of new prompt results. The session does not
switch autograd off: predictors run it under `torch.inference_mode`, training with gradients.

Results are `StepResult`s: logits `(num_objects, 1, H, W)` float32 at the video's resolution,
objects in the order they were first prompted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from masklet.errors import InputError
from masklet.lru import LRUCache
from masklet.model.sam2 import NO_OBJECT_SCORE, ImageFeatures, SAM2Model
from masklet.postprocess import non_overlapping
from masklet.session.engine import FrameEngine
from masklet.session.objects import (
    Direction,
    FrameOutput,
    MaskPrompt,
    ObjectRegistry,
    ObjectTrack,
    PointPrompt,
    Prompt,
)
from masklet.session.preprocess import preprocess_image


class FrameProvider(Protocol):
    """What a session reads frames from (every `masklet.io.FrameSource` is one)."""

    @property
    def num_frames(self) -> int | None:
        """Number of frames; None for a live source of unknown length."""

    def get(self, index: int) -> np.ndarray:
        """Frame `index` as an `(H, W, 3)` uint8 RGB array."""


@dataclass(frozen=True)
class SessionOptions:
    """How a session shows and remembers results.

    Attributes:
        fill_hole_area: fill background holes up to this many low-res pixels in shown masks
            (the official video setting is 8).
        non_overlap_masks: at each pixel keep only the highest-scoring object in results.
        feature_cache_size: image encodings kept (frames), least recently used evicted.
        binarize_prompted_masks: prompted frames enter memory as their mask thresholded at 0
            (what the user sees; the official setting) instead of through a sigmoid; never
            while the model is in train mode (as in the reference).
    """

    fill_hole_area: int = 8
    non_overlap_masks: bool = False
    feature_cache_size: int = 2
    binarize_prompted_masks: bool = True

    def binarizes(self, training: bool) -> bool:
        """Whether prompted masks enter memory binarised, for a model in train mode or not."""
        return self.binarize_prompted_masks and not training


@dataclass
class StepResult:
    """Masks of all objects on one frame."""

    frame_idx: int
    obj_ids: list[int]
    logits: Tensor  # (num_objects, 1, H, W) float32 at the frame's resolution

    @property
    def masks(self) -> Tensor:
        """Boolean masks `(num_objects, 1, H, W)`."""
        return self.logits > 0


class VideoSession:
    """Tracking state of one video or live stream (see the module docstring).

    Args:
        model: the SAM 2 model.
        frames: where frames come from; None for a stream whose frames are passed to `step`.
        options: display and memory settings.
    """

    def __init__(
        self,
        model: SAM2Model,
        frames: FrameProvider | None = None,
        options: SessionOptions | None = None,
    ) -> None:
        self.model = model
        self.frames = frames
        self.options = options or SessionOptions()
        self.engine = FrameEngine(model, self.options.fill_hole_area)
        config = model.config
        # Frames farther than this from the one being tracked are never read by the memory rule.
        self._memory_radius = max(config.max_object_pointers, config.num_maskmem)
        self.objects = ObjectRegistry(self._memory_radius)
        self.features: LRUCache[int, ImageFeatures] = LRUCache(
            max(1, self.options.feature_cache_size)
        )
        self.num_frames = None if frames is None else frames.num_frames
        if self.num_frames == 0:
            raise InputError("the video has no frames")
        self._video_hw: tuple[int, int] | None = None
        if frames is not None:
            first = frames.get(0)
            self._video_hw = (int(first.shape[0]), int(first.shape[1]))
        self.latest_frame_idx = -1  # the last frame passed to `step`
        # A stream's current frame, kept until it is encoded (only when an object needs it).
        self._latest_frame: np.ndarray | None = None

    # ------------------------------------------------------------------ facts
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def obj_ids(self) -> list[int]:
        return self.objects.ids

    @property
    def video_hw(self) -> tuple[int, int]:
        """(height, width) of the frames; known once the first frame is there."""
        if self._video_hw is None:
            raise InputError("call step(frame) with the first frame of the stream first")
        return self._video_hw

    @property
    def video_height(self) -> int:
        return self.video_hw[0]

    @property
    def video_width(self) -> int:
        return self.video_hw[1]

    def check_frame(self, frame_idx: int) -> None:
        """`InputError` unless `frame_idx` is a frame index of this video."""
        if not isinstance(frame_idx, int) or isinstance(frame_idx, bool):
            raise InputError(f"frame_idx must be an int, got {frame_idx!r}")
        if frame_idx < 0 or (self.num_frames is not None and frame_idx >= self.num_frames):
            raise InputError(
                f"frame_idx {frame_idx} is out of range: the video has "
                f"{self.num_frames} frames (0..{(self.num_frames or 1) - 1})"
            )

    def image_features(self, frame_idx: int) -> ImageFeatures:
        """The image encoding of a frame (cached; a stream keeps only its recent frames)."""
        features = self.features.get(frame_idx)
        if features is not None:
            return features
        if self.frames is not None:
            return self._encode(frame_idx, self.frames.get(frame_idx))
        if frame_idx == self.latest_frame_idx and self._latest_frame is not None:
            return self._encode(frame_idx, self._latest_frame)
        raise InputError(
            f"frame {frame_idx} is no longer kept by the stream (only recent frames; "
            f"the current frame is {self.latest_frame_idx})"
        )

    def _encode(self, frame_idx: int, frame: np.ndarray) -> ImageFeatures:
        image = preprocess_image(frame, self.model.image_size, self.device)[None]
        features = self.model.encode_image(image)
        self.features.put(frame_idx, features)
        return features

    # ------------------------------------------------------------------ prompts
    def add_points(
        self, frame_idx: int, obj_id: int, prompt: PointPrompt, clear_old_points: bool = True
    ) -> StepResult:
        """Clicks/box corners in model-input pixels for `obj_id` on `frame_idx` (added to the
        frame's clicks unless `clear_old_points`); returns the frame's masks."""
        self.check_frame(frame_idx)
        features = self.image_features(frame_idx)  # may raise: nothing is changed before
        track = self.objects.get_or_create(obj_id)
        merged = track.set_points(frame_idx, prompt, append=not clear_old_points)
        return self._decode_prompt(track, frame_idx, merged, features)

    def add_mask(self, frame_idx: int, obj_id: int, prompt: MaskPrompt) -> StepResult:
        """A mask prompt for `obj_id` on `frame_idx` (it replaces the frame's clicks)."""
        self.check_frame(frame_idx)
        features = self.image_features(frame_idx)
        track = self.objects.get_or_create(obj_id)
        track.set_mask(frame_idx, prompt)
        return self._decode_prompt(track, frame_idx, prompt, features)

    def _decode_prompt(
        self, track: ObjectTrack, frame_idx: int, prompt: Prompt, features: ImageFeatures
    ) -> StepResult:
        new_prompt_frame = track.is_new_prompt_frame(frame_idx)
        memory, previous = None, None
        if isinstance(prompt, PointPrompt):
            shown = track.shown_output(frame_idx, new_prompt_frame)
            previous = None if shown is None else shown.low_res_logits
            if not new_prompt_frame:
                direction = track.directions[frame_idx]
                memory = self.engine.plan(track.store, frame_idx, direction, self.num_frames)
        output = self.engine.decode_prompted(features, prompt, memory, previous)
        track.set_pending(frame_idx, output)
        return self._frame_result(frame_idx, new_prompt_frame)

    # ------------------------------------------------------------------ edits
    def clear_frame(self, frame_idx: int, obj_id: int) -> None:
        """Remove the prompts of `obj_id` on `frame_idx`; its result there becomes an ordinary
        tracked result."""
        self.check_frame(frame_idx)
        self.existing_object(obj_id).clear_frame(frame_idx)

    def remove_object(self, obj_id: int) -> list[int]:
        """Forget an object; returns the frames it had prompts on (none when it was the last
        object: the session is then reset)."""
        track = self.existing_object(obj_id)
        if len(self.objects) == 1:
            self.reset()
            return []
        self.objects.remove(obj_id)
        return sorted(track.prompts)

    def reset(self) -> None:
        """Forget all objects, prompts and results (frames and encodings stay)."""
        self.objects.clear()

    def existing_object(self, obj_id: int) -> ObjectTrack:
        track = self.objects.get(obj_id)
        if track is None:
            raise InputError(f"unknown object id {obj_id}; known ids: {self.obj_ids}")
        return track

    # ------------------------------------------------------------------ tracking
    def commit_prompts(self) -> None:
        """Encode the memories of new prompt results and store them; `InputError` when there
        is no object or an object has no prompted frame (checked before a propagation)."""
        self._commit_pending()
        for track in self.objects:
            if not track.store.conditioning:
                raise InputError(f"object {track.obj_id} has no prompt on any frame; add one first")

    def _commit_pending(self) -> None:
        if len(self.objects) == 0:
            raise InputError("no object has a prompt yet: add points, a box or a mask first")
        for track in self.objects:
            track.commit_pending(self._encode_prompt_memory)

    def _encode_prompt_memory(self, frame_idx: int, output: FrameOutput) -> Tensor:
        return self.engine.encode_memory(
            self.image_features(frame_idx),
            output.low_res_logits,
            output.object_score_logits,
            binarize=self.options.binarizes(self.model.training),
        )

    def first_prompted_frame(self) -> int:
        """The earliest prompted frame of any object (prompts committed)."""
        frames = [f for track in self.objects for f in track.store.conditioning]
        if not frames:
            raise InputError("no object has a prompt yet: add points, a box or a mask first")
        return min(frames)

    def step(self, frame: int | np.ndarray, reverse: bool = False) -> StepResult:
        """Track every object on one frame and return all objects' masks there.

        `frame`: a frame index of the session's video, or the next frame of a live stream as
        an `(H, W, 3)` uint8 RGB array (it gets index `latest_frame_idx + 1`). `reverse`: time
        runs backwards (the memory of frame t comes from t+1, t+2, ...). Prompted frames
        return their prompt result; a stream without objects returns no masks."""
        if isinstance(frame, np.ndarray):
            frame_idx = self._push(frame)
            if len(self.objects) == 0:
                return StepResult(frame_idx, [], self._empty_logits())
        else:
            frame_idx = frame
            self.check_frame(frame_idx)
        # Only what is pending: an object whose prompts were cleared meanwhile tracks on from
        # its recent frames (the propagation that started checked that all had prompts).
        self._commit_pending()
        logits = self._track(frame_idx, Direction.of(reverse))
        self.latest_frame_idx = frame_idx
        if self.num_frames is None:
            self._forget_before(frame_idx)
        return StepResult(frame_idx, self.obj_ids, self._present(logits))

    def _push(self, frame: np.ndarray) -> int:
        if self.frames is not None:
            raise InputError("this session reads its video's frames: call step(frame_idx)")
        frame_idx = self.latest_frame_idx + 1
        frame_hw = (int(frame.shape[0]), int(frame.shape[1]))
        if self._video_hw is None:
            self._video_hw = frame_hw
        elif frame_hw != self._video_hw:
            raise InputError(
                f"frame {frame_idx} has shape {frame.shape}, the stream started with "
                f"{(*self._video_hw, 3)}"
            )
        self._latest_frame = frame
        self.latest_frame_idx = frame_idx
        return frame_idx

    def _track(self, frame_idx: int, direction: Direction) -> Tensor:
        """Low-res logits `(num_objects, 1, S/4, S/4)` of every object on a frame: prompted
        ones from their prompt, the others tracked in one batch per memory layout."""
        tracks = list(self.objects)
        logits: list[Tensor | None] = [None] * len(tracks)
        to_track = []
        for index, track in enumerate(tracks):
            prompted = track.store.conditioning.get(frame_idx)
            if prompted is not None:
                logits[index] = prompted.low_res_logits
            else:
                to_track.append(index)
        if to_track:
            stores = [tracks[i].store for i in to_track]
            features = self.image_features(frame_idx)
            outputs = self.engine.track(features, stores, frame_idx, direction, self.num_frames)
            for index, output in zip(to_track, outputs):
                tracks[index].store.store_tracked(frame_idx, output)
                logits[index] = output.low_res_logits
        for track in tracks:
            track.directions[frame_idx] = direction
        return torch.cat([value for value in logits if value is not None])

    def _forget_before(self, frame_idx: int) -> None:
        """Streams: forget the directions of frames too old to matter (bounded state)."""
        horizon = frame_idx - self._memory_radius
        for track in self.objects:
            track.forget_directions_before(horizon)

    # ------------------------------------------------------------------ results
    def masks(self, frame_idx: int) -> StepResult:
        """The masks shown now for a frame: new prompt results, else stored results, else
        NO_OBJECT_SCORE logits for objects without a result there."""
        self.check_frame(frame_idx)
        new_prompt_frame = any(t.has_new_prompt_pending(frame_idx) for t in self.objects)
        return self._frame_result(frame_idx, new_prompt_frame)

    def _frame_result(self, frame_idx: int, new_prompt_frame: bool) -> StepResult:
        height, width = self.video_hw
        logits = torch.full(
            (len(self.objects), 1, height, width), NO_OBJECT_SCORE, device=self.device
        )
        for index, track in enumerate(self.objects):
            output = track.shown_output(frame_idx, new_prompt_frame)
            if output is not None:
                logits[index : index + 1] = self._to_video_resolution(output.low_res_logits)
        return StepResult(frame_idx, self.obj_ids, self._without_overlaps(logits))

    def _present(self, low_res_logits: Tensor) -> Tensor:
        return self._without_overlaps(self._to_video_resolution(low_res_logits))

    def _without_overlaps(self, logits: Tensor) -> Tensor:
        """`non_overlapping` when the options ask for it (video-resolution logits)."""
        return non_overlapping(logits) if self.options.non_overlap_masks else logits

    def _to_video_resolution(self, logits: Tensor) -> Tensor:
        return F.interpolate(logits, size=self.video_hw, mode="bilinear", align_corners=False)

    def _empty_logits(self) -> Tensor:
        return torch.empty((0, 1, *self.video_hw), device=self.device)
