"""automatic_mask_generator_example.ipynb on masklet with only the imports changed, and
(`parity`) the same calls on the reference with the same (sharp, confident) weights. See
dropin_helpers for the set-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dropin_helpers as dropin
from automatic_records import compare_record
from dropin_helpers import masklet_api, oracle_api, oracle_extension
from dropin_notebooks import automatic_notebook
from masklet.build_settings import STABILITY_FALLBACK_OFF

pytestmark = pytest.mark.usefixtures("one_thread")

# The shared module fixtures (dropin_helpers).
checkpoint = dropin.checkpoint
confident_checkpoint = dropin.confident_checkpoint
images = dropin.images


@pytest.fixture(scope="module")
def automatic_ours(
    confident_checkpoint: Path, images: list[np.ndarray]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    return automatic_notebook(masklet_api(), confident_checkpoint, images[0])


def test_automatic_notebook_runs(
    automatic_ours: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
    images: list[np.ndarray],
) -> None:
    masks, masks2, sam2 = automatic_ours
    assert len(masks) > 0 and len(masks2) > 0, "the confident random model yields masks"
    expected = {
        "segmentation",
        "area",
        "bbox",
        "predicted_iou",
        "point_coords",
        "stability_score",
        "crop_box",
    }
    assert masks[0].keys() == expected
    for ann in masks2:
        assert ann["segmentation"].shape == images[0].shape[:2]
        assert ann["area"] == int(ann["segmentation"].sum())
    # apply_postprocessing=False: no dynamic multi-mask fallback (the reference's meaning).
    assert sam2.config.dynamic_multimask_stability_thresh == STABILITY_FALLBACK_OFF


def _assert_same_annotations(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    """Record by record within the bounds of `automatic_records.compare_record`."""
    assert len(ours) == len(theirs) > 0
    for mine, reference in zip(ours, theirs):
        compare_record(mine, reference, reference["segmentation"].shape)


@pytest.mark.parity
def test_automatic_notebook_matches_the_reference(
    automatic_ours: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
    confident_checkpoint: Path,
    images: list[np.ndarray],
) -> None:
    with oracle_extension():
        masks, masks2, _ = automatic_notebook(oracle_api(), confident_checkpoint, images[0])
    _assert_same_annotations(automatic_ours[0], masks)
    _assert_same_annotations(automatic_ours[1], masks2)
