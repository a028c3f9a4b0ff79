"""The memory rule and the bounded output store (no model needed)."""

from __future__ import annotations

import torch

from masklet.session.memory import plan_memory
from masklet.session.objects import FrameOutput, OutputStore


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
    plan = plan_memory(
        store,
        10,
        reverse=False,
        num_frames=40,
        num_maskmem=7,
        max_object_pointers=16,
        signed_offsets=True,
    )
    slots = [(int(o.object_pointer[0, 0]), slot) for o, slot in plan.spatial]
    assert slots == [(0, 0), (30, 0), (4, 1), (5, 2), (6, 3), (7, 4), (8, 5), (9, 6)]
    pointers = [(int(p[0, 0]), offset) for p, offset in plan.pointers]
    assert pointers == [(0, 10)] + [(10 - d, d) for d in range(1, 10)]
    assert plan.max_pointer_offset == 15 and plan.layout == (8, 10)


def test_reverse_rule_and_short_video() -> None:
    store = OutputStore(radius=16)
    store.conditioning[5] = output(5)
    store.store_tracked(4, output(4))
    plan = plan_memory(
        store,
        3,
        reverse=True,
        num_frames=6,
        num_maskmem=7,
        max_object_pointers=16,
        signed_offsets=True,
    )
    assert [slot for _, slot in plan.spatial] == [0, 6]
    assert [(int(p[0, 0]), off) for p, off in plan.pointers] == [(5, 2), (4, 1)]
    assert plan.max_pointer_offset == 5  # min(num_frames, 16) - 1
    unsigned = plan_memory(
        store,
        3,
        reverse=True,
        num_frames=6,
        num_maskmem=7,
        max_object_pointers=16,
        signed_offsets=False,
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
