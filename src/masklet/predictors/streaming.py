"""`StreamingTracker`: track objects in a live stream, one `step(frame)` call per frame.

Frames are pushed by the caller (camera, generator, network); only the last few are kept.
Prompts may be added for the current frame at any time; results come back immediately.
Memory stays bounded however long the stream runs: each object keeps its prompted frames and
the outputs of the last `max(num_maskmem, 16)` frames. The offline `SAM2VideoPredictor` runs the
same per-frame step (`track_frame`).

Example::

    tracker = StreamingTracker(masklet.build_sam2("sam2.1_hiera_t", checkpoint=...))
    for index, frame in enumerate(camera):
        result = tracker.step(frame)              # logits of every object on this frame
        if index == 0:
            tracker.add_points(1, [[320, 240]], [1])
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from masklet.errors import InputError
from masklet.io.frames import FrameSource, as_rgb_frame
from masklet.model.sam2 import SAM2Model
from masklet.predictors.video import SAM2VideoPredictor
from masklet.session.state import VideoState


class PushedFrames(FrameSource):
    """A live source fed by `push`; keeps the last `history` frames for random access."""

    def __init__(self, history: int = 2) -> None:
        self._frames: deque[tuple[int, np.ndarray]] = deque(maxlen=history)
        self._count = 0

    @property
    def num_frames(self) -> None:
        return None

    @property
    def height(self) -> int:
        return int(self._latest()[1].shape[0])

    @property
    def width(self) -> int:
        return int(self._latest()[1].shape[1])

    def _latest(self) -> tuple[int, np.ndarray]:
        if not self._frames:
            raise InputError("no frame has been pushed yet")
        return self._frames[-1]

    def push(self, frame: Any) -> int:
        """Append a frame (H x W x 3 uint8 RGB); returns its index."""
        array = as_rgb_frame(frame, what="frame")
        if self._frames and array.shape != self._frames[-1][1].shape:
            raise InputError(
                f"frame {self._count} has shape {array.shape}, the stream started with "
                f"{self._frames[-1][1].shape}"
            )
        self._frames.append((self._count, array))
        self._count += 1
        return self._count - 1

    def get(self, index: int) -> np.ndarray:
        for stored_index, frame in self._frames:
            if stored_index == index:
                return frame
        raise InputError(f"frame {index} is no longer kept by the stream (only recent frames)")


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


class StreamingTracker:
    """Frame-by-frame tracking of many objects in a stream of unknown length.

    Args:
        model: the SAM 2 model.
        fill_hole_area, non_overlap_masks: as in `SAM2VideoPredictor`.
    """

    def __init__(
        self, model: SAM2Model, fill_hole_area: int = 8, non_overlap_masks: bool = False
    ) -> None:
        self.predictor = SAM2VideoPredictor(model, fill_hole_area, non_overlap_masks)
        self.frames = PushedFrames()
        self._state: VideoState | None = None
        self._current = -1

    @property
    def frame_idx(self) -> int:
        """Index of the current (last stepped) frame; -1 before the first step."""
        return self._current

    def _require_state(self) -> VideoState:
        if self._state is None:
            raise InputError("call step(frame) with the first frame before adding prompts")
        return self._state

    @torch.inference_mode()
    def step(self, frame: Any) -> StepResult:
        """Track all prompted objects on the next frame and return their masks."""
        index = self.frames.push(frame)
        if self._state is None:
            self._state = self.predictor.init_state(self.frames)
        state = self._state
        self._current = index
        if len(state.objects) == 0:
            empty = self.predictor.empty_masks(state)
            return StepResult(index, [], empty)
        self.predictor.commit_prompts(state)
        logits = self.predictor.track_frame(state, index, reverse=False)
        self.predictor.forget_before(state, index)
        return StepResult(index, state.obj_ids, logits)

    def add_points(
        self,
        obj_id: int,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        clear_old_points: bool = True,
    ) -> StepResult:
        """Clicks (xy pixels, labels 1/0) and/or a box for `obj_id` on the current frame."""
        state = self._require_state()
        frame_idx, obj_ids, logits = self.predictor.add_new_points_or_box(
            state, self._current, obj_id, points, labels, clear_old_points, True, box
        )
        return StepResult(frame_idx, obj_ids, logits)

    def add_mask(self, obj_id: int, mask: Any) -> StepResult:
        """A binary (H, W) mask for `obj_id` on the current frame."""
        state = self._require_state()
        frame_idx, obj_ids, logits = self.predictor.add_new_mask(state, self._current, obj_id, mask)
        return StepResult(frame_idx, obj_ids, logits)

    def remove_object(self, obj_id: int) -> list[int]:
        """Stop tracking `obj_id`; returns the remaining ids."""
        state = self._require_state()
        if state.objects.get(obj_id) is None:
            raise InputError(f"unknown object id {obj_id}; known ids: {state.objects.ids}")
        state.objects.remove(obj_id)
        return state.obj_ids

    @property
    def obj_ids(self) -> list[int]:
        return [] if self._state is None else self._state.obj_ids
