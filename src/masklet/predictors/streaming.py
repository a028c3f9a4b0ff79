"""`StreamingTracker`: track objects in a live stream, one `step(frame)` call per frame.

Frames are pushed by the caller (camera, generator, network). Only the current frame is kept,
encoded when an object needs it (an idle stream runs no encoder), and the image encodings of
the last two frames. Prompts may be added for the current
frame at any time; results come back immediately. Memory stays bounded however long the stream
runs: each object keeps its prompted frames and the outputs of the last `max(num_maskmem, 16)`
frames. This is `masklet.session.VideoSession.step` with frame checks, under inference mode;
the offline `SAM2VideoPredictor` runs the same step.

Example::

    tracker = StreamingTracker(masklet.build_sam2("sam2.1_hiera_t", checkpoint=...))
    for index, frame in enumerate(camera):
        result = tracker.step(frame)              # logits of every object on this frame
        if index == 0:
            tracker.add_points(1, [[320, 240]], [1])
"""

from __future__ import annotations

from typing import Any

import torch

from masklet.errors import InputError
from masklet.io.frames import as_rgb_frame
from masklet.model.sam2 import SAM2Model
from masklet.predictors.prompts import check_box_first, mask_prompt, point_prompt
from masklet.runtime import keep_freed_memory_for
from masklet.session.objects import MaskPrompt
from masklet.session.video_session import SessionOptions, StepResult, VideoSession

__all__ = ["StepResult", "StreamingTracker"]


class StreamingTracker:
    """Frame-by-frame tracking of many objects in a stream of unknown length.

    Args:
        model: the SAM 2 model.
        fill_hole_area, non_overlap_masks: as in `SAM2VideoPredictor`.
    """

    def __init__(
        self, model: SAM2Model, fill_hole_area: int = 8, non_overlap_masks: bool = False
    ) -> None:
        keep_freed_memory_for(model)
        self.session = VideoSession(model, None, SessionOptions(fill_hole_area, non_overlap_masks))

    @property
    def frame_idx(self) -> int:
        """Index of the current (last stepped) frame; -1 before the first step."""
        return self.session.latest_frame_idx

    @property
    def obj_ids(self) -> list[int]:
        return self.session.obj_ids

    @torch.inference_mode()
    def step(self, frame: Any) -> StepResult:
        """Track all prompted objects on the next frame (H x W x 3 uint8 RGB array or PIL
        image) and return their masks."""
        return self.session.step(as_rgb_frame(frame, what=f"frame {self.frame_idx + 1}"))

    @torch.inference_mode()
    def add_points(
        self,
        obj_id: int,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        clear_old_points: bool = True,
    ) -> StepResult:
        """Clicks (xy pixels, labels 1/0) and/or a box for `obj_id` on the current frame."""
        frame_idx = self._current_frame()
        check_box_first(box, clear_old_points)
        session = self.session
        image_size, device = session.model.image_size, session.device
        prompt = point_prompt(points, labels, box, session.video_hw, image_size, True, device)
        return session.add_points(frame_idx, obj_id, prompt, clear_old_points)

    @torch.inference_mode()
    def add_mask(self, obj_id: int, mask: Any) -> StepResult:
        """A binary (H, W) mask for `obj_id` on the current frame."""
        frame_idx = self._current_frame()
        session = self.session
        prompt = MaskPrompt(mask_prompt(mask, session.model.image_size, session.device))
        return session.add_mask(frame_idx, obj_id, prompt)

    def remove_object(self, obj_id: int) -> list[int]:
        """Stop tracking `obj_id`; returns the remaining ids."""
        self.session.remove_object(obj_id)
        return self.obj_ids

    def _current_frame(self) -> int:
        if self.frame_idx < 0:
            raise InputError("call step(frame) with the first frame before adding prompts")
        return self.frame_idx
