"""Per-object tracking state: prompts, per-frame outputs and the object's memory bank.

Coordinates of stored point prompts are xy pixels of the model input (`S x S`). Low-res
logits are `(1, 1, S/4, S/4)` float32; memory features `(1, 64, S/16, S/16)` bfloat16 (the
released models were evaluated with bf16 memories; the reference stores them so too).

Each object's outputs live in one of three places, and a frame is in at most one of them:
- pending: results of prompts added since the last step, not yet encoded into memory;
- `OutputStore.conditioning`: prompted frames (memory slot 0 for every later frame);
- `OutputStore.tracked`: everything else, bounded by eviction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum

import torch
from torch import Tensor


class Direction(IntEnum):
    """The way time runs while tracking: +1 forward, -1 in reverse."""

    FORWARD = 1
    REVERSE = -1

    @classmethod
    def of(cls, reverse: bool) -> Direction:
        return cls.REVERSE if reverse else cls.FORWARD


@dataclass
class PointPrompt:
    """Clicks (and box corners, labels 2/3) on one frame: `coords (1, N, 2)`, `labels (1, N)`."""

    coords: Tensor
    labels: Tensor


@dataclass
class MaskPrompt:
    """A mask prompt on one frame: `mask (1, 1, S, S)` float 0/1 at the model input size."""

    mask: Tensor


Prompt = PointPrompt | MaskPrompt


@dataclass
class FrameOutput:
    """What one object's decoding of one frame leaves behind."""

    low_res_logits: Tensor  # (1, 1, S/4, S/4) float32, what the user sees (after hole filling)
    object_score_logits: Tensor  # (1, 1)
    object_pointer: Tensor  # (1, 256)
    memory_features: Tensor | None = None  # (1, 64, S/16, S/16) bfloat16, None until encoded


@dataclass
class PendingOutput:
    """A prompt result not yet in memory. `new_prompt_frame`: the object had not been tracked
    on that frame, so the result becomes a conditioning frame; otherwise it corrects a tracked
    frame and replaces that frame's tracked output (the reference's rule)."""

    output: FrameOutput
    new_prompt_frame: bool


@dataclass
class OutputStore:
    """Outputs of one object in memory: `conditioning` (prompted frames) and `tracked`. A frame
    is never in both. `tracked` is bounded: storing a tracked frame evicts entries farther than
    `radius` frames from it (the memory rule only reads frames within `num_maskmem` and pointers
    within 16 frames of the frame being tracked)."""

    radius: int
    conditioning: dict[int, FrameOutput] = field(default_factory=dict)
    tracked: dict[int, FrameOutput] = field(default_factory=dict)

    def store_tracked(self, frame_idx: int, output: FrameOutput) -> None:
        self.tracked[frame_idx] = output
        stale = [f for f in self.tracked if abs(f - frame_idx) > self.radius]
        for f in stale:
            del self.tracked[f]

    def commit(self, corrections: dict[int, FrameOutput], prompted: dict[int, FrameOutput]) -> None:
        """Store encoded prompt results: corrections as tracked frames, new prompt frames as
        conditioning frames; a conditioning frame's tracked output is dropped."""
        for frame_idx, output in corrections.items():
            self.store_tracked(frame_idx, output)
        self.conditioning.update(prompted)
        for frame_idx in self.conditioning:
            self.tracked.pop(frame_idx, None)

    def downgrade(self, frame_idx: int) -> bool:
        """Make a conditioning frame an ordinary tracked one (its prompts were cleared); True
        when it was one. The output stays readable by nearby frames: nothing else is evicted
        (there are at most as many such frames as prompts)."""
        output = self.conditioning.pop(frame_idx, None)
        if output is None:
            return False
        self.tracked[frame_idx] = output
        return True

    def get(self, frame_idx: int) -> FrameOutput | None:
        return self.conditioning.get(frame_idx) or self.tracked.get(frame_idx)

    def clear(self) -> None:
        self.conditioning.clear()
        self.tracked.clear()


#: Encodes the memory of a pending output: (frame index, output) -> memory features.
MemoryEncoder = Callable[[int, FrameOutput], Tensor]


@dataclass
class ObjectTrack:
    """All state of one tracked object (client id `obj_id`)."""

    obj_id: int
    store: OutputStore
    prompts: dict[int, Prompt] = field(default_factory=dict)
    pending: dict[int, PendingOutput] = field(default_factory=dict)
    # The direction each frame was last tracked (or prompted) in; frames never tracked are
    # absent, and a prompt there starts a new conditioning frame.
    directions: dict[int, Direction] = field(default_factory=dict)

    def is_new_prompt_frame(self, frame_idx: int) -> bool:
        return frame_idx not in self.directions

    def set_points(self, frame_idx: int, prompt: PointPrompt, append: bool) -> PointPrompt:
        """Set the clicks of a frame (appended to its clicks with `append`); a mask prompt
        there is replaced. Returns the frame's whole point prompt."""
        old = self.prompts.get(frame_idx)
        if append and isinstance(old, PointPrompt):
            coords = torch.cat([old.coords, prompt.coords], dim=1)
            prompt = PointPrompt(coords, torch.cat([old.labels, prompt.labels], dim=1))
        self.prompts[frame_idx] = prompt
        return prompt

    def set_mask(self, frame_idx: int, prompt: MaskPrompt) -> None:
        self.prompts[frame_idx] = prompt

    def set_pending(self, frame_idx: int, output: FrameOutput) -> None:
        self.pending[frame_idx] = PendingOutput(output, self.is_new_prompt_frame(frame_idx))

    def has_new_prompt_pending(self, frame_idx: int) -> bool:
        pending = self.pending.get(frame_idx)
        return pending is not None and pending.new_prompt_frame

    def shown_output(self, frame_idx: int, new_prompt_frame: bool) -> FrameOutput | None:
        """The output shown for a frame: a pending result of the given kind first, then the
        stored one (the reference looks up pending results of one kind only)."""
        pending = self.pending.get(frame_idx)
        if pending is not None and pending.new_prompt_frame == new_prompt_frame:
            return pending.output
        return self.store.get(frame_idx)

    def commit_pending(self, encode: MemoryEncoder) -> None:
        """Encode the memories of pending results and move them into the store."""
        corrections: dict[int, FrameOutput] = {}
        prompted: dict[int, FrameOutput] = {}
        for frame_idx, pending in self.pending.items():
            output = pending.output
            if output.memory_features is None:
                output.memory_features = encode(frame_idx, output)
            (prompted if pending.new_prompt_frame else corrections)[frame_idx] = output
        self.pending.clear()
        self.store.commit(corrections, prompted)

    def clear_frame(self, frame_idx: int) -> None:
        """Drop the prompts and pending result of a frame; a prompted frame becomes an
        ordinary tracked frame that the next prompt there corrects as new."""
        self.prompts.pop(frame_idx, None)
        self.pending.pop(frame_idx, None)
        if self.store.downgrade(frame_idx):
            self.directions.pop(frame_idx, None)

    def forget_directions_before(self, frame_idx: int) -> None:
        for old in [f for f in self.directions if f < frame_idx]:
            del self.directions[old]


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
