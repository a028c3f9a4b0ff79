"""The memory rule: which stored frames and object pointers condition a frame.

For object `o` at frame `t` (tracking direction `d` = +1 forward, -1 reverse):
- its prompted ("conditioning") frames, temporal slot 0: all of them, or with a limit
  `max_conditioning_frames` the closest one before `t`, the closest at or after `t`, then the
  temporally closest others (`select_conditioning_frames`);
- the tracked (non-prompted) frames `t - d*k` for k = num_maskmem-1 .. 1, slot `num_maskmem - k`
  (farthest first), when they exist; a prompted frame left out above counts as tracked here;
- object pointers of the selected prompted frames on the past side of `t` (signed offset
  `(t - f) * d`; in training those of every selected prompted frame, as in the reference), then
  of frames `t - d*k` for k = 1 .. P-1 inside the video (tracked, or
  prompted but left out), P = min(num_frames, 16).
This is the reference's rule (its released configs use all prompted frames).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from masklet.session.objects import Direction, FrameOutput, OutputStore


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


@dataclass(frozen=True)
class MemoryRule:
    """The memory settings of a model (`SAM2Config` fields of the same meaning)."""

    num_maskmem: int = 7
    max_object_pointers: int = 16
    signed_pointer_offsets: bool = True
    max_conditioning_frames: int = -1
    #: Pointers of prompted frames only from the past side of the frame (inference). The
    #: reference trains with the pointers of every attended prompted frame, future ones too.
    past_pointers_only: bool = True


def select_conditioning_frames(
    frame_idx: int, conditioning: dict[int, FrameOutput], limit: int
) -> tuple[dict[int, FrameOutput], dict[int, FrameOutput]]:
    """Split prompted frames into (attended, left out) for tracking `frame_idx`; `limit` -1 or
    at least as many as there are: all attended, in their stored order."""
    if limit == -1 or len(conditioning) <= limit:
        return conditioning, {}
    chosen: list[int] = []
    before = [f for f in conditioning if f < frame_idx]
    at_or_after = [f for f in conditioning if f >= frame_idx]
    if before:
        chosen.append(max(before))
    if at_or_after:
        chosen.append(min(at_or_after))
    others = sorted((f for f in conditioning if f not in chosen), key=lambda f: abs(f - frame_idx))
    chosen += others[: limit - len(chosen)]
    attended = {f: conditioning[f] for f in chosen}
    left_out = {f: out for f, out in conditioning.items() if f not in attended}
    return attended, left_out


def plan_memory(
    store: OutputStore,
    frame_idx: int,
    direction: Direction,
    num_frames: int | None,
    rule: MemoryRule,
) -> MemoryPlan:
    """Select the memory for `frame_idx` from `store` (see module docstring)."""
    attended, left_out = select_conditioning_frames(
        frame_idx, store.conditioning, rule.max_conditioning_frames
    )

    def earlier(frame: int) -> FrameOutput | None:
        return store.tracked.get(frame) or left_out.get(frame)

    spatial: list[tuple[FrameOutput, int]] = [(out, 0) for out in attended.values()]
    for slot in range(1, rule.num_maskmem):
        previous = earlier(frame_idx - direction * (rule.num_maskmem - slot))
        if previous is not None:
            spatial.append((previous, slot))
    pointer_window = (
        rule.max_object_pointers
        if num_frames is None
        else min(num_frames, rule.max_object_pointers)
    )
    pointers: list[tuple[Tensor, int]] = []
    for cond_frame, out in attended.items():
        if not rule.past_pointers_only or (cond_frame - frame_idx) * direction <= 0:
            offset = (frame_idx - cond_frame) * direction
            if not rule.signed_pointer_offsets:
                offset = abs(offset)
            pointers.append((out.object_pointer, offset))
    for distance in range(1, pointer_window):
        frame = frame_idx - direction * distance
        if frame < 0 or (num_frames is not None and frame >= num_frames):
            break
        tracked = earlier(frame)
        if tracked is not None:
            pointers.append((tracked.object_pointer, distance))
    return MemoryPlan(spatial, pointers, pointer_window - 1)
