"""Bad input to the video predictor: every user mistake raises a `MaskletError` naming the
problem, and the session stays usable afterwards (a valid prompt then gives exactly the
results of a fresh session).

A tiny random-weights model at 64 px on a 4-frame, 72x96 list-of-arrays video keeps it fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import masklet
from masklet.errors import InputError, MaskletError

pytestmark = pytest.mark.usefixtures("one_thread")

HEIGHT, WIDTH, NUM_FRAMES = 72, 96, 4
CLICK = {"points": np.array([[40.0, 30.0]], dtype=np.float32), "labels": np.array([1])}


def make_frames() -> list[np.ndarray]:
    """Four frames of a bright square moving right over a noisy gradient."""
    rng = np.random.default_rng(7)
    frames = []
    for index in range(NUM_FRAMES):
        ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
        image = np.stack([xs * 2, ys * 3, (xs + ys) % 255], axis=-1).astype(np.float64)
        image[20:44, 28 + 4 * index : 52 + 4 * index] = (240, 220, 30)
        image += rng.normal(0, 5, image.shape)
        frames.append(np.clip(image, 0, 255).astype(np.uint8))
    return frames


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return make_frames()


def valid_run(predictor: Any, state: Any) -> list[tuple[int, list[int], torch.Tensor]]:
    """Click object 1 on frame 0 and propagate; every returned (frame, ids, logits)."""
    frame_idx, obj_ids, logits = predictor.add_new_points_or_box(state, 0, 1, **CLICK)
    results = [(int(frame_idx), list(obj_ids), torch.as_tensor(logits).clone())]
    for frame_idx, obj_ids, logits in predictor.propagate_in_video(state):
        results.append((int(frame_idx), list(obj_ids), torch.as_tensor(logits).clone()))
    return results


def sees_the_object(results: list[tuple[int, list[int], torch.Tensor]]) -> bool:
    """Every frame has some foreground and some background (random weights often predict
    "no object" everywhere, which would make the equality checks below vacuous)."""
    return all(0.0 < float((logits > 0).float().mean()) < 1.0 for _, _, logits in results)


@pytest.fixture(scope="module")
def predictor(frames: list[np.ndarray]) -> Any:
    """A tiny random-weights predictor (64 px) whose valid run segments something."""
    for seed in range(6):
        torch.manual_seed(seed)
        candidate = masklet.build_sam2_video_predictor("sam2.1_hiera_t", image_size=64)
        if sees_the_object(valid_run(candidate, candidate.init_state(frames))):
            return candidate
    raise AssertionError("no seed in 0..5 gave a model that segments anything")


@pytest.fixture(scope="module")
def fresh_results(
    predictor: Any, frames: list[np.ndarray]
) -> list[tuple[int, list[int], torch.Tensor]]:
    return valid_run(predictor, predictor.init_state(frames))


def assert_still_usable(
    predictor: Any, state: Any, fresh: list[tuple[int, list[int], torch.Tensor]]
) -> None:
    """A valid prompt + propagation on `state` returns exactly what a fresh session does."""
    results = valid_run(predictor, state)
    assert [(f, ids) for f, ids, _ in results] == [(f, ids) for f, ids, _ in fresh]
    for (frame, _, ours), (_, _, expected) in zip(results, fresh):
        assert ours.shape == (1, 1, HEIGHT, WIDTH)
        assert torch.allclose(ours, expected, atol=1e-5, rtol=0), f"frame {frame} changed"


# ---------------------------------------------------------------- opening a video


def test_missing_video_path(predictor: Any, tmp_path: Path) -> None:
    missing = tmp_path / "no_such_video.mp4"
    with pytest.raises(MaskletError, match="no_such_video"):
        predictor.init_state(str(missing))
    with pytest.raises(MaskletError, match="no_such_folder"):
        predictor.init_state(tmp_path / "no_such_folder")


def test_empty_folder(predictor: Any, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a frame")
    with pytest.raises(MaskletError, match=r"(?i)no .*frames|no frames|empty"):
        predictor.init_state(tmp_path)


def test_zero_length_list(predictor: Any) -> None:
    with pytest.raises(MaskletError, match=r"(?i)no frames|empty|zero"):
        predictor.init_state([])


def test_folder_and_list_give_the_same_video(
    predictor: Any, frames: list[np.ndarray], tmp_path: Path, fresh_results: list[Any]
) -> None:
    """Sanity of the fixture video: PNG folder input equals the list input (lossless)."""
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"{index:05d}.png")
    assert_still_usable(predictor, predictor.init_state(tmp_path), fresh_results)


# ---------------------------------------------------------------- bad calls on an open session

BadCall = Callable[[Any, Any], object]

BAD_CALLS: dict[str, tuple[BadCall, str]] = {
    "frame past the end": (
        lambda p, s: p.add_new_points_or_box(s, NUM_FRAMES, 1, **CLICK),
        r"(?i)frame",
    ),
    "negative frame": (lambda p, s: p.add_new_points_or_box(s, -1, 1, **CLICK), r"(?i)frame"),
    "mask on a frame past the end": (
        lambda p, s: p.add_new_mask(s, NUM_FRAMES + 3, 1, np.ones((HEIGHT, WIDTH), bool)),
        r"(?i)frame",
    ),
    "propagate from a frame past the end": (
        lambda p, s: list(p.propagate_in_video(s, start_frame_idx=NUM_FRAMES)),
        r"(?i)frame|prompt",
    ),
    "click right of the frame": (
        lambda p, s: p.add_new_points_or_box(
            s, 0, 1, points=np.array([[WIDTH + 5.0, 10.0]]), labels=np.array([1])
        ),
        r"(?i)outside|out of|range|bounds",
    ),
    "click above the frame": (
        lambda p, s: p.add_new_points_or_box(
            s, 0, 1, points=np.array([[10.0, -3.0]]), labels=np.array([1])
        ),
        r"(?i)outside|out of|range|bounds",
    ),
    "normalised click beyond 1": (
        lambda p, s: p.add_new_points_or_box(
            s, 0, 1, points=np.array([[0.5, 1.5]]), labels=np.array([1]), normalize_coords=False
        ),
        r"(?i)outside|out of|range|bounds",
    ),
    "box outside the frame": (
        lambda p, s: p.add_new_points_or_box(s, 0, 1, box=np.array([10, 10, WIDTH * 2, 50])),
        r"(?i)outside|out of|range|bounds",
    ),
    "more points than labels": (
        lambda p, s: p.add_new_points_or_box(
            s, 0, 1, points=np.array([[10.0, 10.0], [20.0, 20.0]]), labels=np.array([1])
        ),
        r"(?i)label",
    ),
    "points without labels": (
        lambda p, s: p.add_new_points_or_box(s, 0, 1, points=np.array([[10.0, 10.0]])),
        r"(?i)label",
    ),
    "no prompt at all": (lambda p, s: p.add_new_points_or_box(s, 0, 1), r"(?i)point|box"),
    "empty mask": (
        lambda p, s: p.add_new_mask(s, 1, 1, np.zeros((HEIGHT, WIDTH), dtype=bool)),
        r"(?i)empty|no pixel",
    ),
    "3-D mask": (
        lambda p, s: p.add_new_mask(s, 1, 1, np.ones((2, HEIGHT, WIDTH), dtype=bool)),
        r"(?i)mask",
    ),
    "propagate with no prompts": (lambda p, s: list(p.propagate_in_video(s)), r"(?i)prompt"),
    "remove unknown object (strict)": (
        lambda p, s: p.remove_object(s, 42, strict=True),
        r"42",
    ),
    "clear prompts of an unknown object": (
        lambda p, s: p.clear_all_prompts_in_frame(s, 0, 42),
        r"42",
    ),
    "clear prompts on a frame past the end": (
        lambda p, s: p.clear_all_prompts_in_frame(s, NUM_FRAMES, 1),
        r"(?i)frame|object",
    ),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_bad_call_raises_and_leaves_session_usable(
    predictor: Any, frames: list[np.ndarray], fresh_results: list[Any], name: str
) -> None:
    call, pattern = BAD_CALLS[name]
    state = predictor.init_state(frames)
    with pytest.raises(MaskletError, match=pattern) as raised:
        call(predictor, state)
    assert str(raised.value).strip(), "the error must say what is wrong"
    assert_still_usable(predictor, state, fresh_results)


@pytest.mark.parametrize("name", ["clear prompts of an unknown object", "click right of the frame"])
def test_bad_call_after_tracking_keeps_results(
    predictor: Any, frames: list[np.ndarray], name: str
) -> None:
    """A call rejected in the middle of a tracked session neither adds an object nor changes
    anything: prompting and tracking again gives what it gives without the bad call."""
    control = predictor.init_state(frames)
    valid_run(predictor, control)
    expected = valid_run(predictor, control)
    call, pattern = BAD_CALLS[name]
    state = predictor.init_state(frames)
    valid_run(predictor, state)
    with pytest.raises(MaskletError, match=pattern):
        call(predictor, state)
    assert_still_usable(predictor, state, expected)


def test_box_with_clear_old_points_false_is_rejected(
    predictor: Any, frames: list[np.ndarray], fresh_results: list[Any]
) -> None:
    """As in the reference, a box must come first: it cannot be appended to earlier clicks."""
    state = predictor.init_state(frames)
    with pytest.raises(MaskletError, match=r"(?i)box"):
        predictor.add_new_points_or_box(
            state, 0, 1, box=np.array([10, 10, 50, 50]), clear_old_points=False
        )
    assert_still_usable(predictor, state, fresh_results)


def test_errors_are_input_errors(predictor: Any, frames: list[np.ndarray]) -> None:
    """Prompt mistakes are `InputError`s, which are also `ValueError`s for generic handlers."""
    state = predictor.init_state(frames)
    with pytest.raises(InputError):
        predictor.add_new_points_or_box(state, NUM_FRAMES, 1, **CLICK)
    with pytest.raises(ValueError):
        predictor.add_new_mask(state, 0, 1, np.zeros((HEIGHT, WIDTH), dtype=bool))
