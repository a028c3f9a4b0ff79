"""image_predictor_example.ipynb on masklet with only the imports changed, and (`parity`) the
same calls on the reference with the same weights; also the mask generator notebook's model
(`apply_postprocessing=False`) in an image predictor. See dropin_helpers for the set-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dropin_helpers as dropin
from dropin_helpers import IMAGE_SIZE, SCORE_TOLERANCE, assert_arrays_close, masklet_api, oracle_api
from dropin_notebooks import image_notebook, single_masks

pytestmark = pytest.mark.usefixtures("one_thread")

# The shared module fixtures (dropin_helpers).
checkpoint, images = dropin.checkpoint, dropin.images


@pytest.fixture(scope="module")
def image_ours(checkpoint: Path, images: list[np.ndarray]) -> dict[str, Any]:
    return image_notebook(masklet_api(), checkpoint, images)


@pytest.fixture(scope="module")
def single_ours(checkpoint: Path, images: list[np.ndarray]) -> list[Any]:
    return single_masks(masklet_api(), checkpoint, images[0])


def test_image_notebook_runs(image_ours: dict[str, Any], images: list[np.ndarray]) -> None:
    height, width = images[0].shape[:2]
    low_res = IMAGE_SIZE // 4
    masks, scores, logits = image_ours["one click"]
    assert masks.shape == (3, height, width) and masks.dtype == np.bool_
    assert scores.shape == (3,) and logits.shape == (3, low_res, low_res)
    assert list(scores) == sorted(scores, reverse=True)
    for name in ("two clicks and the best mask", "box", "box and a negative click"):
        masks, scores, logits = image_ours[name]
        assert masks.shape == (1, height, width) and scores.shape == (1,), name
    masks, scores, _ = image_ours["batched boxes"]
    assert masks.shape == (3, 1, height, width) and scores.shape == (3, 1)
    for a, b in zip(image_ours["one click, PIL image"], image_ours["one click"]):
        assert a.shape == b.shape
    masks_batch, _, _ = image_ours["image batch, boxes"]
    # One box: the batch axis is squeezed away, as in the reference.
    assert [m.shape for m in masks_batch] == [(2, 1, height, width), (1, height, width)]
    best = image_ours["best masks"]
    assert [m.shape for m in best] == [(2, height, width)] * 2
    assert not image_ours["model"].training


def test_apply_postprocessing_false_turns_the_fallback_off(
    single_ours: list[Any], image_ours: dict[str, Any]
) -> None:
    """Same checkpoint, same box: with post-processing (the image notebook) the unstable
    single mask is replaced by the best of three; without, it is kept."""
    with_fallback, without_fallback = image_ours["box"], single_ours[1]
    assert with_fallback[0].shape == without_fallback[0].shape
    assert (with_fallback[0] != without_fallback[0]).mean() > 0.01
    assert not np.allclose(with_fallback[1], without_fallback[1])


@pytest.mark.parity
def test_image_notebook_matches_the_reference(
    image_ours: dict[str, Any], checkpoint: Path, images: list[np.ndarray]
) -> None:
    theirs = image_notebook(oracle_api(), checkpoint, images)
    assert image_ours.keys() == theirs.keys()
    for name in image_ours:
        if name != "model":
            assert_arrays_close(image_ours[name], theirs[name], name, SCORE_TOLERANCE)


@pytest.mark.parity
def test_single_masks_without_postprocessing_match_the_reference(
    single_ours: list[Any], checkpoint: Path, images: list[np.ndarray]
) -> None:
    theirs = single_masks(oracle_api(), checkpoint, images[0])
    assert_arrays_close(single_ours, theirs, "single masks", SCORE_TOLERANCE)
