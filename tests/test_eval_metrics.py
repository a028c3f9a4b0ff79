"""J and F on hand-computed cases, empty masks, void pixels, and properties (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from masklet.errors import InputError
from masklet.eval.aggregate import decay_bins, frame_statistics
from masklet.eval.metrics import (
    boundary_f_measure,
    boundary_map,
    boundary_precision_recall,
    boundary_tolerance,
    dilate_disk,
    region_similarity,
)


def square(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


# ---- J ---------------------------------------------------------------------------------


def test_region_similarity_hand_computed() -> None:
    # pred: 2x2 block (4 px), gt: 2x3 block (6 px) containing it -> |M∩G| = 4, |M∪G| = 6.
    pred = square((4, 4), slice(0, 2), slice(0, 2))
    gt = square((4, 4), slice(0, 2), slice(0, 3))
    assert region_similarity(pred, gt) == pytest.approx(4 / 6)
    # Shift pred one column right: intersection cols 1-2 (4 px), union cols 0-2 + col 3 -> 8.
    shifted = square((4, 4), slice(0, 2), slice(1, 4))
    assert region_similarity(shifted, gt) == pytest.approx(4 / 8)


def test_region_similarity_empty_cases() -> None:
    empty = np.zeros((3, 3), dtype=bool)
    full = np.ones((3, 3), dtype=bool)
    assert region_similarity(empty, empty) == 1.0
    assert region_similarity(empty, full) == 0.0
    assert region_similarity(full, empty) == 0.0


def test_region_similarity_ignores_void() -> None:
    # gt: cols 0-2, pred: cols 0-1; with col 2 void both are {cols 0-1} -> J = 1.
    pred = square((4, 4), slice(0, 2), slice(0, 2))
    gt = square((4, 4), slice(0, 2), slice(0, 3))
    void = square((4, 4), slice(None), slice(2, 3))
    assert region_similarity(pred, gt, void) == 1.0
    # Everything void: the union is empty -> 1 whatever the masks.
    assert region_similarity(pred, ~gt, np.ones((4, 4), bool)) == 1.0


def test_metrics_reject_shape_mismatch_and_wrong_rank() -> None:
    with pytest.raises(InputError, match="shape"):
        region_similarity(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(InputError, match="2-D"):
        boundary_f_measure(np.zeros((3, 3, 1)), np.zeros((3, 3, 1)))


# ---- boundaries and dilation ------------------------------------------------------------


def test_boundary_map_of_a_square_follows_seg2bmap() -> None:
    # 2x2 square at rows 1-2, cols 1-2 of a 5x5 image. A pixel is a boundary pixel when it
    # differs from its right, bottom or bottom-right neighbour: outside on the top/left
    # (row 0 cols 0-2, col 0 rows 1-2), inside on the bottom/right ((1,2), (2,1), (2,2)).
    mask = square((5, 5), slice(1, 3), slice(1, 3))
    expected = np.array(
        [
            [1, 1, 1, 0, 0],
            [1, 0, 1, 0, 0],
            [1, 1, 1, 0, 0],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(boundary_map(mask), expected)


def test_image_border_is_not_a_boundary() -> None:
    assert not boundary_map(np.ones((3, 3), bool)).any()
    # Only the last row set: row 1 differs from its bottom neighbours; the last row does not
    # differ from its right neighbours, and the bottom-right pixel is never a boundary.
    mask = square((3, 3), slice(2, 3), slice(None))
    np.testing.assert_array_equal(boundary_map(mask), square((3, 3), slice(1, 2), slice(None)))


def test_boundary_tolerance_radius() -> None:
    assert boundary_tolerance(480, 854) == 8  # ceil(0.008 * 979.66) = ceil(7.84)
    assert boundary_tolerance(160, 240) == 3  # ceil(0.008 * 288.44) = ceil(2.31)
    assert boundary_tolerance(5, 5) == 1  # ceil(0.008 * 7.07)


def brute_force_dilation(mask: np.ndarray, radius: int) -> np.ndarray:
    out = np.zeros_like(mask)
    height, width = mask.shape
    for y, x in zip(*np.nonzero(mask), strict=True):
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                inside = 0 <= y + dy < height and 0 <= x + dx < width
                if dy * dy + dx * dx <= radius * radius and inside:
                    out[y + dy, x + dx] = True
    return out


@settings(max_examples=60, deadline=None)
@given(
    mask=arrays(bool, st.tuples(st.integers(1, 16), st.integers(1, 16))),
    radius=st.integers(0, 5),
)
def test_dilate_disk_matches_brute_force(mask: np.ndarray, radius: int) -> None:
    np.testing.assert_array_equal(dilate_disk(mask, radius), brute_force_dilation(mask, radius))


def test_disk_shape_radius_two() -> None:
    single = square((5, 5), slice(2, 3), slice(2, 3))
    expected = np.array(
        [
            [0, 0, 1, 0, 0],
            [0, 1, 1, 1, 0],
            [1, 1, 1, 1, 1],
            [0, 1, 1, 1, 0],
            [0, 0, 1, 0, 0],
        ],
        dtype=bool,
    )  # dy^2 + dx^2 <= 4: (±1, ±1) is in, (±1, ±2) is not.
    np.testing.assert_array_equal(dilate_disk(single, 2), expected)


# ---- F ---------------------------------------------------------------------------------


def test_boundary_f_hand_computed() -> None:
    # 5x5 frame -> tolerance radius 1 (a plus-shaped disk).
    # gt: square rows 1-2 cols 1-2; boundary (8 px): row 0 cols 0-2, (1,0), (1,2), row 2 cols 0-2.
    # pred: square rows 1-2 cols 3-4 (touches the right border); boundary (7 px):
    # (0,2) (0,3) (0,4) (1,2) (2,2) (2,3) (2,4).
    # Precision: pred pixels within 1 (4-neighbourhood) of the gt boundary: all but (0,4)
    # and (2,4) -> 5/7. Recall: gt pixels within 1 of the pred boundary: all but (0,0),
    # (1,0), (2,0) -> 5/8. F = 2 * (5/7) * (5/8) / (5/7 + 5/8) = 2/3.
    gt = square((5, 5), slice(1, 3), slice(1, 3))
    pred = square((5, 5), slice(1, 3), slice(3, 5))
    precision, recall = boundary_precision_recall(pred, gt)
    assert precision == pytest.approx(5 / 7)
    assert recall == pytest.approx(5 / 8)
    assert boundary_f_measure(pred, gt) == pytest.approx(2 / 3)
    assert region_similarity(pred, gt) == 0.0


def test_boundary_f_within_tolerance_is_one() -> None:
    # Shifting the square by one column moves every boundary pixel by exactly 1 <= radius.
    gt = square((5, 5), slice(1, 3), slice(1, 3))
    pred = square((5, 5), slice(1, 3), slice(2, 4))
    assert boundary_f_measure(pred, gt) == 1.0
    assert region_similarity(pred, gt) == pytest.approx(2 / 6)


def test_boundary_f_empty_cases() -> None:
    empty = np.zeros((6, 6), dtype=bool)
    blob = square((6, 6), slice(2, 4), slice(2, 4))
    assert boundary_precision_recall(empty, blob) == (1.0, 0.0)
    assert boundary_precision_recall(blob, empty) == (0.0, 1.0)
    assert boundary_precision_recall(empty, empty) == (1.0, 1.0)
    assert boundary_f_measure(empty, blob) == 0.0
    assert boundary_f_measure(blob, empty) == 0.0
    assert boundary_f_measure(empty, empty) == 1.0
    # A mask filling the frame has no boundary (borders do not count), as in DAVIS.
    full = np.ones((6, 6), dtype=bool)
    assert boundary_f_measure(full, full) == 1.0
    assert boundary_f_measure(full, blob) == 0.0


def test_boundary_f_ignores_void() -> None:
    # A false-positive blob far away hurts precision unless it lies in the void region.
    gt = square((40, 40), slice(5, 15), slice(5, 15))
    pred = gt | square((40, 40), slice(25, 35), slice(25, 35))
    void = square((40, 40), slice(22, 38), slice(22, 38))
    assert boundary_f_measure(pred, gt) < 0.9
    assert boundary_f_measure(pred, gt, void) == 1.0


# ---- properties ------------------------------------------------------------------------

mask_pairs = st.tuples(st.integers(1, 24), st.integers(1, 24)).flatmap(
    lambda shape: st.tuples(arrays(bool, shape), arrays(bool, shape), arrays(bool, shape))
)


@settings(max_examples=80, deadline=None)
@given(masks=mask_pairs)
def test_scores_are_in_unit_interval_and_symmetric(
    masks: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    pred, gt, void = masks
    for void_mask in (None, void):
        j = region_similarity(pred, gt, void_mask)
        f = boundary_f_measure(pred, gt, void_mask)
        assert 0.0 <= j <= 1.0
        assert 0.0 <= f <= 1.0
        assert j == region_similarity(gt, pred, void_mask)
        assert f == pytest.approx(boundary_f_measure(gt, pred, void_mask))


@settings(max_examples=50, deadline=None)
@given(masks=mask_pairs)
def test_identical_masks_score_one(masks: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    mask, _, void = masks
    assert region_similarity(mask, mask) == 1.0
    assert boundary_f_measure(mask, mask) == 1.0
    assert region_similarity(mask, mask, void) == 1.0
    assert boundary_f_measure(mask, mask, void) == 1.0


@settings(max_examples=50, deadline=None)
@given(
    size=st.integers(1, 8),
    left=st.tuples(st.integers(1, 10), st.integers(1, 30)),
    right=st.tuples(st.integers(28, 38), st.integers(1, 30)),
)
def test_disjoint_far_apart_masks_score_zero(
    size: int, left: tuple[int, int], right: tuple[int, int]
) -> None:
    # 40x48 frame -> tolerance 1 px; the squares are >= 10 px apart horizontally.
    shape = (40, 48)
    pred = square(shape, slice(left[1], left[1] + size), slice(left[0], left[0] + size))
    gt = square(shape, slice(right[1], right[1] + size), slice(right[0], right[0] + size))
    assert boundary_tolerance(*shape) == 1
    assert region_similarity(pred, gt) == 0.0
    assert boundary_f_measure(pred, gt) == 0.0


# ---- aggregation -----------------------------------------------------------------------


def test_frame_statistics_mean_recall_decay() -> None:
    # 8 frames: DAVIS bins are positions 0-2, 2-4, 4-5, 5-7 (edges round(linspace(1, 8, 5)) - 1).
    assert decay_bins(8) == [(0, 2), (2, 4), (4, 5), (5, 7)]
    values = [1.0, 1.0, 1.0, 0.6, 0.4, 0.0, 0.0, 0.0]
    stats = frame_statistics(values)
    assert stats.mean == pytest.approx(4.0 / 8)
    assert stats.recall == pytest.approx(4 / 8)  # 1, 1, 1, 0.6 are > 0.5
    assert stats.decay == pytest.approx(1.0 - 0.0)  # mean(v[0:3]) - mean(v[5:8])
    rising = frame_statistics([0.0, 0.2, 0.4, 0.6, 0.8])  # bins 0-1 ... 3-4
    assert rising.decay == pytest.approx(0.1 - 0.7)
    assert math.isnan(frame_statistics([]).mean)
