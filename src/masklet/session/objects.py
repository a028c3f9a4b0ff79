"""Per-object tracking state: prompts, per-frame outputs and the object's memory bank.

Coordinates of stored point prompts are xy pixels of the model input (`S x S`). Low-res
logits are `(1, 1, S/4, S/4)` float32; memory features `(1, 64, S/16, S/16)` bfloat16 (the
released models were evaluated with bf16 memories; the reference stores them so too).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class PointPrompt:
    """Clicks (and box corners, labels 2/3) on one frame: `coords (1, N, 2)`, `labels (1, N)`."""

    coords: Tensor
    labels: Tensor


@dataclass
class FrameOutput:
    """What one object's decoding of one frame leaves behind."""

    low_res_logits: Tensor  # (1, 1, S/4, S/4) float32, what the user sees (after hole filling)
    object_score_logits: Tensor  # (1, 1)
    object_pointer: Tensor  # (1, 256)
    memory_features: Tensor | None = None  # (1, 64, S/16, S/16) bfloat16, None until encoded


@dataclass
class OutputStore:
    """Outputs of one object, split like the reference: `conditioning` (prompted frames, used
    as memory slot 0) and `tracked` (everything else). `tracked` is bounded: entries farther than
    `radius` frames from the most recently stored frame are evicted (the memory rule only reads
    frames within `num_maskmem` and pointers within 16 frames of the frame being tracked)."""

    radius: int
    conditioning: dict[int, FrameOutput] = field(default_factory=dict)
    tracked: dict[int, FrameOutput] = field(default_factory=dict)

    def store_tracked(self, frame_idx: int, output: FrameOutput) -> None:
        self.tracked[frame_idx] = output
        stale = [f for f in self.tracked if abs(f - frame_idx) > self.radius]
        for f in stale:
            del self.tracked[f]

    def get(self, frame_idx: int) -> FrameOutput | None:
        return self.conditioning.get(frame_idx) or self.tracked.get(frame_idx)

    def clear(self) -> None:
        self.conditioning.clear()
        self.tracked.clear()


@dataclass
class ObjectTrack:
    """All state of one tracked object (client id `obj_id`)."""

    obj_id: int
    store: OutputStore
    point_prompts: dict[int, PointPrompt] = field(default_factory=dict)
    mask_prompts: dict[int, Tensor] = field(default_factory=dict)  # (1, 1, S, S) float 0/1
    # Outputs of prompts added since the last propagation, by kind ("conditioning" frames are
    # new prompt frames, "tracked" ones are corrections of frames tracked before).
    pending_conditioning: dict[int, FrameOutput] = field(default_factory=dict)
    pending_tracked: dict[int, FrameOutput] = field(default_factory=dict)
    # Frames this object has been tracked (or prompted) on -> whether that was in reverse.
    frames_tracked: dict[int, bool] = field(default_factory=dict)

    def pending(self, conditioning: bool) -> dict[int, FrameOutput]:
        return self.pending_conditioning if conditioning else self.pending_tracked

    def latest_output(self, frame_idx: int, conditioning: bool) -> FrameOutput | None:
        """The output shown for this frame: a pending prompt result first, then stored ones."""
        pending = self.pending(conditioning).get(frame_idx)
        return pending if pending is not None else self.store.get(frame_idx)

    def input_frames(self) -> set[int]:
        return set(self.point_prompts) | set(self.mask_prompts)

    def clear_prompts_and_outputs(self) -> None:
        self.point_prompts.clear()
        self.mask_prompts.clear()
        self.pending_conditioning.clear()
        self.pending_tracked.clear()
        self.frames_tracked.clear()
        self.store.clear()


class ObjectRegistry:
    """Ordered objects by client id; the order is the batch order of outputs."""

    def __init__(self, radius: int) -> None:
        self._objects: dict[int, ObjectTrack] = {}
        self._radius = radius

    def __len__(self) -> int:
        return len(self._objects)

    def __iter__(self) -> Iterator[ObjectTrack]:
        return iter(list(self._objects.values()))

    @property
    def ids(self) -> list[int]:
        return list(self._objects)

    def get(self, obj_id: int) -> ObjectTrack | None:
        return self._objects.get(obj_id)

    def get_or_create(self, obj_id: int) -> ObjectTrack:
        track = self._objects.get(obj_id)
        if track is None:
            track = ObjectTrack(obj_id, OutputStore(self._radius))
            self._objects[obj_id] = track
        return track

    def remove(self, obj_id: int) -> None:
        del self._objects[obj_id]

    def clear(self) -> None:
        self._objects.clear()
