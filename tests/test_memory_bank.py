"""The memory rule and the bounded output store (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from masklet.session.memory import MemoryRule, plan_memory, select_conditioning_frames
from masklet.session.objects import Direction, FrameOutput, OutputStore


def output(tag: float) -> FrameOutput:
    return FrameOutput(
        torch.zeros(1, 1, 4, 4),
        torch.ones(1, 1),
        torch.full((1, 8), tag),
        torch.zeros(1, 2, 1, 1, dtype=torch.bfloat16),
    )


def test_forward_rule_slots_and_pointers() -> None:
    store = OutputStore(radius=16)
    store.conditioning[0] = output(0)
    store.conditioning[30] = output(30)  # a future prompt: memory yes, pointer no
    for frame in range(1, 10):
        store.store_tracked(frame, output(frame))
    plan = plan_memory(store, 10, Direction.of(False), 40, MemoryRule(signed_pointer_offsets=True))
    slots = [(int(o.object_pointer[0, 0]), slot) for o, slot in plan.spatial]
    assert slots == [(0, 0), (30, 0), (4, 1), (5, 2), (6, 3), (7, 4), (8, 5), (9, 6)]
    pointers = [(int(p[0, 0]), offset) for p, offset in plan.pointers]
    assert pointers == [(0, 10)] + [(10 - d, d) for d in range(1, 10)]
    assert plan.max_pointer_offset == 15 and plan.layout == (8, 10)


def test_reverse_rule_and_short_video() -> None:
    store = OutputStore(radius=16)
    store.conditioning[5] = output(5)
    store.store_tracked(4, output(4))
    plan = plan_memory(store, 3, Direction.of(True), 6, MemoryRule(signed_pointer_offsets=True))
    assert [slot for _, slot in plan.spatial] == [0, 6]
    assert [(int(p[0, 0]), off) for p, off in plan.pointers] == [(5, 2), (4, 1)]
    assert plan.max_pointer_offset == 5  # min(num_frames, 16) - 1
    unsigned = plan_memory(
        store, 3, Direction.of(True), 6, MemoryRule(signed_pointer_offsets=False)
    )
    assert [off for _, off in unsigned.pointers] == [2, 1]


def test_store_evicts_far_frames_only() -> None:
    store = OutputStore(radius=3)
    for frame in range(10):
        store.store_tracked(frame, output(frame))
    assert sorted(store.tracked) == [6, 7, 8, 9]
    store.conditioning[0] = output(0)
    store.store_tracked(20, output(20))
    assert sorted(store.tracked) == [20] and 0 in store.conditioning


def test_conditioning_frame_selection_order_and_left_out_frames() -> None:
    """With a limit of 2: closest before, closest at or after; a left-out prompted frame
    still serves as a recent frame and as a pointer."""
    store = OutputStore(radius=16)
    for frame in (0, 8, 11, 20):
        store.conditioning[frame] = output(frame)
    attended, left_out = select_conditioning_frames(12, store.conditioning, 2)
    assert list(attended) == [11, 20] and list(left_out) == [0, 8]
    attended, _ = select_conditioning_frames(12, store.conditioning, 3)
    assert list(attended) == [11, 20, 8]
    assert select_conditioning_frames(12, store.conditioning, -1)[0] is store.conditioning
    plan = plan_memory(store, 12, Direction.FORWARD, 40, MemoryRule(max_conditioning_frames=2))
    slots = [(int(o.object_pointer[0, 0]), slot) for o, slot in plan.spatial]
    assert slots == [(11, 0), (20, 0), (8, 3)]  # frame 8 = 12 - 4: slot 7 - 4
    assert [(int(p[0, 0]), offset) for p, offset in plan.pointers] == [(11, 1), (8, 4), (0, 12)]


@pytest.mark.parity
def test_conditioning_frame_selection_matches_reference() -> None:
    from sam2.modeling.sam2_utils import select_closest_cond_frames

    rng = np.random.default_rng(0)
    for _ in range(200):
        frames = [int(f) for f in rng.choice(60, size=int(rng.integers(1, 9)), replace=False)]
        conditioning = {f: output(f) for f in frames}
        frame_idx, limit = int(rng.integers(0, 60)), int(rng.choice([-1, 2, 3, 4]))
        ours = select_conditioning_frames(frame_idx, conditioning, limit)
        theirs = select_closest_cond_frames(frame_idx, conditioning, limit)
        assert [list(part) for part in ours] == [list(part) for part in theirs]


def test_store_commit_and_downgrade_keep_one_place_per_frame() -> None:
    store = OutputStore(radius=3)
    for frame in range(5):
        store.store_tracked(frame, output(frame))
    store.commit(corrections={4: output(40)}, prompted={2: output(20)})
    assert sorted(store.conditioning) == [2] and sorted(store.tracked) == [1, 3, 4]
    assert int(store.tracked[4].object_pointer[0, 0]) == 40
    assert store.downgrade(2) and not store.downgrade(2)
    assert not store.conditioning and sorted(store.tracked) == [1, 2, 3, 4]
