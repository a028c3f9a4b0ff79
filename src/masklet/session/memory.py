"""The memory rule: which stored frames and object pointers condition a frame.

For object `o` at frame `t` (tracking direction `d` = +1 forward, -1 reverse):
- every prompted ("conditioning") frame of `o`, temporal slot 0;
- the tracked (non-prompted) frames `t - d*k` for k = num_maskmem-1 .. 1, slot `num_maskmem - k`
  (farthest first), when they exist;
- object pointers of prompted frames on the past side of `t` (signed offset `(t - f) * d`), then
  of tracked frames `t - d*k` for k = 1 .. P-1 inside the video, P = min(num_frames, 16).
This is the reference's rule with all prompted frames used (its released configs do so).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from masklet.session.objects import FrameOutput, OutputStore


@dataclass
class MemoryPlan:
    """Memory of one object for one frame, in the order the model attends to it."""

    spatial: list[tuple[FrameOutput, int]]  # (output with memory features, temporal slot)
    pointers: list[tuple[Tensor, int]]  # (object pointer (1, 256), temporal offset)
    max_pointer_offset: int  # offsets are divided by this before their sine encoding

    @property
    def layout(self) -> tuple[int, int]:
        """(spatial frames, pointers): objects with equal layouts can be batched."""
        return len(self.spatial), len(self.pointers)


def plan_memory(
    store: OutputStore,
    frame_idx: int,
    reverse: bool,
    num_frames: int | None,
    num_maskmem: int,
    max_object_pointers: int,
    signed_offsets: bool,
) -> MemoryPlan:
    """Select the memory for `frame_idx` from `store` (see module docstring)."""
    direction = -1 if reverse else 1
    spatial: list[tuple[FrameOutput, int]] = [(out, 0) for out in store.conditioning.values()]
    for slot in range(1, num_maskmem):
        previous = store.tracked.get(frame_idx - direction * (num_maskmem - slot))
        if previous is not None:
            spatial.append((previous, slot))
    pointer_window = (
        max_object_pointers if num_frames is None else min(num_frames, max_object_pointers)
    )
    pointers: list[tuple[Tensor, int]] = []
    for cond_frame, out in store.conditioning.items():
        if (cond_frame - frame_idx) * direction <= 0:
            offset = (frame_idx - cond_frame) * direction
            pointers.append((out.object_pointer, offset if signed_offsets else abs(offset)))
    for distance in range(1, pointer_window):
        frame = frame_idx - direction * distance
        if frame < 0 or (num_frames is not None and frame >= num_frames):
            break
        tracked = store.tracked.get(frame)
        if tracked is not None:
            pointers.append((tracked.object_pointer, distance))
    return MemoryPlan(spatial, pointers, pointer_window - 1)
