"""Prompt simulation: click regions and labels, centre clicks, noisy boxes, plan rules over many
seeds, determinism, and the multi-mask rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from masklet.errors import ConfigError, InputError
from masklet.train.prompts import (
    PromptOptions,
    correction_click,
    farthest_from_boundary,
    noisy_box,
    plan_prompts,
    sample_click,
    use_multimask,
)

SIDE = 24


def rectangle(rows: slice, cols: slice, side: int = SIDE) -> torch.Tensor:
    mask = torch.zeros(side, side, dtype=torch.bool)
    mask[rows, cols] = True
    return mask


def at(mask: torch.Tensor, coords: torch.Tensor) -> bool:
    """The mask's value at an (x, y) coordinate (1, 2)."""
    x, y = (int(v) for v in coords.reshape(2))
    return bool(mask[y, x])


def test_uniform_click_lands_in_the_error_with_its_label() -> None:
    truth = rectangle(slice(2, 12), slice(2, 12))
    prediction = rectangle(slice(2, 12), slice(6, 18))  # FN: cols 2..5, FP: cols 12..17
    false_negative, false_positive = truth & ~prediction, prediction & ~truth
    labels_seen = set()
    for seed in range(200):
        coords, labels = sample_click(
            truth[None], prediction[None], np.random.default_rng(seed), "uniform"
        )
        assert coords.shape == (1, 1, 2) and coords.dtype == torch.float32
        assert labels.shape == (1, 1) and labels.dtype == torch.int32
        label = int(labels[0, 0])
        region = false_negative if label == 1 else false_positive
        assert at(region, coords[0]), (seed, coords, label)
        labels_seen.add(label)
    assert labels_seen == {0, 1}


def test_uniform_click_is_uniform_over_the_error_pixels() -> None:
    truth = rectangle(slice(0, 1), slice(0, 4), side=4)  # 4 missed pixels, nothing predicted
    counts = np.zeros(4)
    for seed in range(400):
        coords, labels = sample_click(truth[None], None, np.random.default_rng(seed), "uniform")
        assert int(labels[0, 0]) == 1 and int(coords[0, 0, 1]) == 0
        counts[int(coords[0, 0, 0])] += 1
    assert counts.min() > 70  # each about 100


def test_click_without_prediction_is_inside_the_truth() -> None:
    truth = torch.stack(
        [rectangle(slice(3, 6), slice(10, 20)), rectangle(slice(15, 16), slice(0, 3))]
    )
    for seed in range(50):
        coords, labels = sample_click(truth, None, np.random.default_rng(seed), "uniform")
        assert labels.tolist() == [[1], [1]]
        assert at(truth[0], coords[0]) and at(truth[1], coords[1])


def test_no_error_gives_a_negative_background_click() -> None:
    truth = rectangle(slice(3, 9), slice(3, 9))
    for seed in range(30):
        rng = np.random.default_rng(seed)
        coords, labels = sample_click(truth[None], truth[None], rng, "uniform")
        assert int(labels[0, 0]) == 0 and not at(truth, coords[0])
        empty = torch.zeros_like(truth)[None]
        coords, labels = sample_click(empty, None, rng, "uniform")  # empty truth, no prediction
        assert int(labels[0, 0]) == 0
        assert coords.min() >= 0 and coords.max() < SIDE
    full = torch.ones(1, SIDE, SIDE, dtype=torch.bool)  # no error and no background
    coords, labels = sample_click(full, full, np.random.default_rng(0), "uniform")
    assert coords.tolist() == [[[0.0, 0.0]]] and labels.tolist() == [[0]]


def test_correction_click_from_truth_path() -> None:
    truth = rectangle(slice(5, 10), slice(5, 10))[None]
    always = PromptOptions(prob_click_from_truth=1.0)
    never = PromptOptions(prob_click_from_truth=0.0)
    for seed in range(20):
        # The prediction is perfect: an error click would be negative in the background.
        coords, labels = correction_click(truth, truth, np.random.default_rng(seed), always, True)
        assert int(labels[0, 0]) == 1 and at(truth[0], coords[0])
        for options, training in ((always, False), (never, True)):
            rng = np.random.default_rng(seed)
            coords, labels = correction_click(truth, truth, rng, options, training)
            assert int(labels[0, 0]) == 0 and not at(truth[0], coords[0])


def test_center_click_is_the_centre_of_a_rectangle() -> None:
    truth = rectangle(slice(4, 9), slice(10, 15))  # rows 4..8, cols 10..14: centre (12, 6)
    coords, labels = sample_click(truth[None], None, np.random.default_rng(0), "center")
    assert coords.tolist() == [[[12.0, 6.0]]] and labels.tolist() == [[1]]
    # A 5 x 7 rectangle: a ridge of equally far pixels (cols 12..14 of row 6), the first wins.
    wide = rectangle(slice(4, 9), slice(10, 17))
    coords, _ = sample_click(wide[None], None, np.random.default_rng(0), "center")
    assert coords.tolist() == [[[12.0, 6.0]]]
    # The image border is a boundary: a full 9 x 9 error has its centre at (4, 4).
    full = torch.ones(1, 9, 9, dtype=torch.bool)
    coords, _ = sample_click(full, None, np.random.default_rng(0), "center")
    assert coords.tolist() == [[[4.0, 4.0]]]


def test_center_click_larger_region_wins() -> None:
    truth = rectangle(slice(1, 4), slice(1, 4))  # 3 x 3 missed object
    false_positive = rectangle(slice(10, 21), slice(10, 21))  # 11 x 11 predicted background
    coords, labels = sample_click(
        truth[None], (false_positive)[None], np.random.default_rng(0), "center"
    )
    assert coords.tolist() == [[[15.0, 15.0]]] and labels.tolist() == [[0]]
    big_truth = rectangle(slice(2, 15), slice(2, 15))
    small_false_positive = rectangle(slice(18, 21), slice(18, 21))
    objects = torch.stack([truth, big_truth])
    predictions = torch.stack([false_positive, small_false_positive])
    coords, labels = sample_click(objects, predictions, np.random.default_rng(0), "center")
    assert coords.tolist() == [[[15.0, 15.0]], [[8.0, 8.0]]] and labels.tolist() == [[0], [1]]
    # No error at all: the reference's negative click at (0, 0).
    coords, labels = sample_click(truth[None], truth[None], np.random.default_rng(0), "center")
    assert coords.tolist() == [[[0.0, 0.0]]] and labels.tolist() == [[0]]


def brute_force_squared_distances(region: torch.Tensor) -> torch.Tensor:
    """Squared distance of every pixel of `region (H, W)` to the nearest False pixel of the
    region padded by a False ring (0 off the region)."""
    height, width = region.shape
    padded = torch.nn.functional.pad(region, (1, 1, 1, 1), value=False)
    ys, xs = torch.nonzero(~padded, as_tuple=True)
    grid_y, grid_x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    squared = (grid_y[..., None] + 1 - ys) ** 2 + (grid_x[..., None] + 1 - xs) ** 2
    return squared.amin(dim=-1)


def test_farthest_pixel_matches_a_brute_force_distance_transform() -> None:
    generator = torch.Generator().manual_seed(0)
    density = torch.tensor([0.5, 0.8, 0.95, 1.0, 0.0])[:, None, None]
    regions = torch.rand(5, 13, 17, generator=generator) < density
    regions[2, :, 9] = False  # a wall splitting a region
    best, index = farthest_from_boundary(regions)
    for b in range(5):
        expected = brute_force_squared_distances(regions[b]).flatten()
        assert int(best[b]) == int(expected.max()), b
        assert int(index[b]) == int(torch.nonzero(expected == expected.max())[0]), b


def test_noisy_box_bounds() -> None:
    truth = torch.stack(
        [rectangle(slice(5, 16), slice(3, 9)), rectangle(slice(0, 24), slice(0, 24))]
    )
    true_boxes = torch.tensor([[3.0, 5.0, 8.0, 15.0], [0.0, 0.0, 23.0, 23.0]])
    sides = torch.tensor([[5.0, 10.0], [23.0, 23.0]])
    for noise, noise_max in ((0.1, 20.0), (0.5, 2.0)):
        limit = torch.minimum(sides * noise, torch.tensor(noise_max)).repeat(1, 2)  # (K, 4)
        for seed in range(100):
            coords, labels = noisy_box(truth, np.random.default_rng(seed), noise, noise_max)
            assert coords.shape == (2, 2, 2) and coords.dtype == torch.float32
            assert labels.tolist() == [[2, 3], [2, 3]]
            box = coords.reshape(2, 4)
            assert ((box - true_boxes).abs() <= limit + 1e-5).all(), (seed, box)
            assert (box >= 0).all() and (box <= SIDE - 1).all()
            assert (box[:, :2] <= box[:, 2:]).all()
    coords, _ = noisy_box(truth, np.random.default_rng(0), 0.0, 20.0)
    assert coords.reshape(2, 4).tolist() == true_boxes.tolist()


def test_noisy_box_of_an_empty_mask_is_inverted_like_the_reference() -> None:
    empty = torch.zeros(1, SIDE, SIDE, dtype=torch.bool)
    for seed in range(20):
        coords, _ = noisy_box(empty, np.random.default_rng(seed), 0.1, 20.0)
        (x0, y0), (x1, y1) = coords[0].tolist()
        # Bounds (W, H)-(-1, -1), jittered by up to 0.1 * 25 px and clamped to the image.
        assert x0 >= SIDE - 2.5 and y0 >= SIDE - 2.5 and x1 <= 1.5 and y1 <= 1.5


def clip_masks(num_frames: int, num_objects: int = 2) -> torch.Tensor:
    masks = torch.zeros(num_frames, num_objects, SIDE, SIDE, dtype=torch.bool)
    for t in range(num_frames):
        masks[t, 0, 4 + t : 12 + t, 3:10] = True
        masks[t, 1, 15:20, 10 + t : 14 + t] = True
    return masks


def test_plan_rules_over_many_seeds() -> None:
    masks = clip_masks(8)
    seen = {"mask": 0, "click": 0, "box": 0, "two_init": 0, "extra_correction": 0}
    for seed in range(300):
        plan = plan_prompts(masks, np.random.default_rng(seed), PromptOptions())
        init, corrections = plan.init_frames, plan.correction_frames
        assert init[0] == 0 and 1 <= len(init) <= 2 and len(set(init)) == len(init)
        assert all(0 <= t < 8 for t in (*init, *corrections))
        if plan.use_mask_input:
            seen["mask"] += 1
            assert corrections == () and plan.initial_points == {}
            continue
        assert corrections[: len(init)] == init and len(corrections) <= 2
        assert len(set(corrections)) == len(corrections)
        assert set(plan.initial_points) == set(init)
        for t, (coords, labels) in plan.initial_points.items():
            if labels.shape[1] == 2:
                seen["box"] += 1
                assert labels.tolist() == [[2, 3], [2, 3]] and coords.shape == (2, 2, 2)
            else:
                seen["click"] += 1
                assert labels.tolist() == [[1], [1]] and coords.shape == (2, 1, 2)
                assert at(masks[t, 0], coords[0]) and at(masks[t, 1], coords[1])
        seen["two_init"] += len(init) == 2
        seen["extra_correction"] += len(corrections) > len(init)
    assert all(count > 20 for count in seen.values()), seen


def test_single_image_always_gets_clicks() -> None:
    masks = clip_masks(1)
    for seed in range(50):
        plan = plan_prompts(masks, np.random.default_rng(seed), PromptOptions(prob_points=0.0))
        assert not plan.use_mask_input
        assert plan.init_frames == (0,) and plan.correction_frames == (0,)
        assert set(plan.initial_points) == {0}


def test_two_frame_clip() -> None:
    for seed in range(30):
        plan = plan_prompts(
            clip_masks(2), np.random.default_rng(seed), PromptOptions(prob_points=1.0)
        )
        assert set(plan.init_frames) <= {0, 1} and set(plan.correction_frames) <= {0, 1}


def test_plan_is_deterministic_given_the_rng() -> None:
    masks = clip_masks(8)
    for seed in range(20):
        first = plan_prompts(masks, np.random.default_rng(seed), PromptOptions())
        second = plan_prompts(masks, np.random.default_rng(seed), PromptOptions())
        assert (first.use_mask_input, first.init_frames, first.correction_frames) == (
            second.use_mask_input,
            second.init_frames,
            second.correction_frames,
        )
        assert first.initial_points.keys() == second.initial_points.keys()
        for t, (coords, labels) in first.initial_points.items():
            assert torch.equal(coords, second.initial_points[t][0])
            assert torch.equal(labels, second.initial_points[t][1])


def test_use_multimask() -> None:
    for is_init in (True, False):
        assert use_multimask(0, is_init) and use_multimask(1, is_init)
        assert not use_multimask(2, is_init) and not use_multimask(8, is_init)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prob_points", 1.5),
        ("prob_box", -0.1),
        ("prob_click_from_truth", 2.0),
        ("max_init_conditioning_frames", 0),
        ("max_correction_frames", 1),
        ("correction_clicks", -1),
        ("box_noise", 0.6),
        ("box_noise_max", -1.0),
        ("click_method", "random"),
    ],
)
def test_options_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        PromptOptions(**{field: value})  # type: ignore[arg-type]


def test_bad_masks_are_input_errors() -> None:
    with pytest.raises(InputError):
        plan_prompts(torch.zeros(2, 1, 4, 4), np.random.default_rng(0), PromptOptions())
    with pytest.raises(InputError):
        sample_click(
            torch.zeros(1, 4, 4, dtype=torch.bool),
            torch.zeros(1, 4, 5, dtype=torch.bool),
            np.random.default_rng(0),
            "uniform",
        )
