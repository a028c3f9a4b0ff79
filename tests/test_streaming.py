"""Streaming tracker: same results as the offline predictor, bounded state, live sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import masklet
from masklet.errors import InputError
from masklet.io import ArraySource
from masklet.session import PointPrompt, VideoSession

SIZE = 64


def make_video(count: int, height: int = 96, width: int = 112) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    background = (rng.random((height, width, 3)) * 120).astype(np.uint8)
    frames = []
    for index in range(count):
        frame = background.copy()
        frame[20 + index % 30 : 50 + index % 30, 10 + index : 40 + index] = (230, 40, 40)
        frame[60:90, 70 - index % 20 : 100 - index % 20] = (40, 220, 60)
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def model() -> masklet.model.sam2.SAM2Model:
    torch.manual_seed(0)
    return masklet.build_sam2("sam2.1_hiera_t", image_size=SIZE)


def test_streaming_matches_offline(model: masklet.model.sam2.SAM2Model) -> None:
    # A stream has no known length; it is treated like a video of >= 16 frames (the object
    # pointer window), so compare with a video of 18 frames.
    frames = make_video(18)
    offline = masklet.SAM2VideoPredictor(model, fill_hole_area=8)
    state = offline.init_state(frames)
    offline.add_new_points_or_box(state, 0, 1, points=[[25, 35]], labels=[1])
    offline.add_new_points_or_box(state, 0, 2, box=[70, 60, 100, 90])
    expected = [logits for _, _, logits in offline.propagate_in_video(state)]

    tracker = masklet.StreamingTracker(model, fill_hole_area=8)
    first = tracker.step(frames[0])
    assert first.obj_ids == [] and first.logits.shape == (0, 1, 96, 112)
    tracker.add_points(1, [[25, 35]], [1])
    prompted = tracker.add_points(2, box=[70, 60, 100, 90])
    results = [prompted.logits] + [tracker.step(frame).logits for frame in frames[1:]]
    for index, (ours, reference) in enumerate(zip(results, expected)):
        assert torch.equal(ours, reference), index
    assert tracker.obj_ids == [1, 2] and tracker.frame_idx == 17


def test_streaming_state_stays_bounded(model: masklet.model.sam2.SAM2Model) -> None:
    tracker = masklet.StreamingTracker(model)
    frames = make_video(24)
    tracker.step(frames[0])
    tracker.add_points(1, [[25, 35]], [1])
    for frame in frames[1:]:
        tracker.step(frame)
    state = tracker.session
    track = state.objects.get(1)
    assert track is not None
    radius = track.store.radius
    assert len(track.store.tracked) <= radius + 1
    assert len(track.directions) <= radius + 2
    assert len(state.features) <= 2
    with pytest.raises(InputError, match="no longer kept"):
        state.image_features(0)
    with pytest.raises(InputError, match="no longer kept"):
        state.add_points(0, 1, click_prompt())


def click_prompt() -> PointPrompt:
    """One foreground click in model-input pixels."""
    return PointPrompt(torch.tensor([[[20.0, 20.0]]]), torch.tensor([[1]], dtype=torch.int32))


def test_session_steps_by_index_and_by_frame(model: masklet.model.sam2.SAM2Model) -> None:
    """The session's one step: by frame index over a video, by frame for a stream; the
    streaming tracker and the offline predictor are loops over it."""
    frames = make_video(5)
    with torch.inference_mode():
        offline = VideoSession(model, ArraySource(frames))
        live = VideoSession(model)
        assert live.step(frames[0]).obj_ids == []
        for session in (offline, live):
            session.add_points(0, 4, click_prompt())
        by_index = [offline.step(index).logits for index in range(1, 5)]
        by_frame = [live.step(frame).logits for frame in frames[1:]]
    for ours, reference in zip(by_frame, by_index):
        assert torch.equal(ours, reference)
    assert live.latest_frame_idx == 4 and offline.latest_frame_idx == 4
    with pytest.raises(InputError, match="reads its video"):
        offline.step(frames[0])
    with pytest.raises(InputError, match="out of range"):
        offline.step(5)


def test_streaming_from_a_generator_and_late_objects(model: masklet.model.sam2.SAM2Model) -> None:
    tracker = masklet.StreamingTracker(model)
    outputs = []
    for index, frame in enumerate(iter(make_video(6))):
        result = tracker.step(frame)
        if index == 2:
            tracker.add_mask(7, np.pad(np.ones((20, 20), bool), ((60, 16), (70, 22))))
        outputs.append(result)
    assert [len(r.obj_ids) for r in outputs] == [0, 0, 0, 1, 1, 1]
    assert outputs[-1].masks.shape == (1, 1, 96, 112)
    assert tracker.remove_object(7) == []


def test_streaming_bad_input(model: masklet.model.sam2.SAM2Model) -> None:
    tracker = masklet.StreamingTracker(model)
    with pytest.raises(InputError, match="first frame"):
        tracker.add_points(1, [[1, 1]], [1])
    tracker.step(make_video(1)[0])
    with pytest.raises(InputError, match="outside the 112x96 video frame"):
        tracker.add_points(1, [[500, 1]], [1])
    with pytest.raises(InputError, match="shape"):
        tracker.step(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InputError, match="unknown object id"):
        tracker.remove_object(3)
    with pytest.raises(InputError, match="box must come before"):
        tracker.add_points(1, box=[1, 1, 9, 9], clear_old_points=False)
    assert tracker.add_points(1, [[20, 30]], [1]).logits.shape == (1, 1, 96, 112)


def test_idle_stream_encodes_nothing_until_a_prompt(
    model: masklet.model.sam2.SAM2Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[int] = []
    original = model.encode_image

    def counting(images: torch.Tensor) -> object:
        encoded.append(1)
        return original(images)

    monkeypatch.setattr(model, "encode_image", counting)
    tracker = masklet.StreamingTracker(model)
    frames = make_video(4)
    for frame in frames[:3]:
        tracker.step(frame)
    assert encoded == []
    tracker.add_points(1, [[25, 35]], [1])  # frame 2, encoded now
    tracker.step(frames[3])
    assert len(encoded) == 2


def test_failed_prompt_changes_nothing_and_cleared_object_tracks_on(
    model: masklet.model.sam2.SAM2Model,
) -> None:
    frames = make_video(6)
    with torch.inference_mode():
        live = VideoSession(model)
        live.step(frames[0])
        live.add_points(0, 1, click_prompt())
        live.step(frames[1])
        live.step(frames[2])
        with pytest.raises(InputError, match="no longer kept"):
            live.add_points(0, 2, click_prompt())
        assert live.obj_ids == [1] and live.step(frames[3]).obj_ids == [1]
    predictor = masklet.SAM2VideoPredictor(model)
    state = predictor.init_state(frames)
    predictor.add_new_points_or_box(state, 0, 1, points=[[25, 35]], labels=[1])
    predictor.add_new_points_or_box(state, 0, 2, box=[70, 60, 100, 90])
    yielded = []
    for frame_idx, obj_ids, _ in predictor.propagate_in_video(state):
        yielded.append((frame_idx, obj_ids))
        if frame_idx == 2:  # object 2 loses its only prompt: it tracks on from memory
            predictor.clear_all_prompts_in_frame(state, 0, 2)
    assert yielded == [(frame, [1, 2]) for frame in range(6)]
    predictor.non_overlap_masks = True
    assert predictor.options.non_overlap_masks and predictor.non_overlap_masks
