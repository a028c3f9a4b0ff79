"""The one hole/speck clean-up (`masklet.postprocess.fill_holes_and_remove_specks`) and the
`fill_holes` the video engine calls."""

from __future__ import annotations

import pytest
import torch

from masklet.postprocess import fill_holes, fill_holes_and_remove_specks


def ring_with_hole() -> torch.Tensor:
    """`(1, 1, 9, 9)` logits: a 3x3 foreground ring (area 8) around a one-pixel hole, and a
    4-pixel background region in a corner."""
    logits = torch.full((1, 1, 9, 9), -5.0)
    logits[0, 0, 3:6, 3:6] = 5.0
    logits[0, 0, 4, 4] = -5.0
    logits[0, 0, 0:2, 0:2] = 5.0  # a 4-pixel speck
    return logits


def test_holes_and_specks_are_found_on_the_incoming_logits() -> None:
    logits = ring_with_hole()
    cleaned = fill_holes_and_remove_specks(logits, max_hole_area=1, max_speck_area=8)
    # Filling the hole first would make the blob area 9 (kept); found on the incoming logits
    # the ring (8) is a speck and goes, while the filled hole (threshold + 10) stays.
    assert cleaned[0, 0, 4, 4] == 10.0
    assert (cleaned[0, 0, 3:6, 3:6] > 0).sum() == 1
    assert (cleaned[0, 0, 0:2, 0:2] == -10.0).all()
    assert (cleaned[0, 0, 7:, 7:] == -5.0).all()  # the large background is untouched
    assert logits[0, 0, 4, 4] == -5.0  # the input is not changed


def test_areas_threshold_and_fill_value() -> None:
    logits = ring_with_hole()
    assert fill_holes_and_remove_specks(logits, 0, 0) is logits
    only_specks = fill_holes_and_remove_specks(logits, 0, 4)
    assert only_specks[0, 0, 4, 4] == -5.0 and (only_specks[0, 0, 0:2, 0:2] == -10.0).all()
    assert (only_specks[0, 0, 3:6, 3:6] == logits[0, 0, 3:6, 3:6]).all()  # area 8 > 4
    shifted = fill_holes_and_remove_specks(logits, 1, 4, threshold=1.0, hole_fill_value=0.5)
    assert shifted[0, 0, 4, 4] == 0.5 and (shifted[0, 0, 0:2, 0:2] == -9.0).all()
    empty = torch.zeros(0, 1, 9, 9)
    assert fill_holes_and_remove_specks(empty, 4, 4) is empty


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fill_holes_keeps_its_signature_dtype_and_leaves_specks(dtype: torch.dtype) -> None:
    logits = ring_with_hole().to(dtype)
    filled = fill_holes(logits, max_area=1, threshold=0.0, fill_value=0.1)
    assert filled.dtype == dtype
    assert filled[0, 0, 4, 4] == torch.tensor(0.1, dtype=dtype)
    assert (filled[0, 0, 0:2, 0:2] == 5.0).all()  # specks are not fill_holes' business
    assert torch.equal(fill_holes(logits, 1)[0, 0, 4, 4], torch.tensor(10.0, dtype=dtype))
    assert fill_holes(logits, 0) is logits


def test_components_are_per_mask_and_eight_connected() -> None:
    logits = torch.full((2, 2, 6, 6), 5.0)
    logits[0, 1, 2, 2] = logits[0, 1, 3, 3] = -5.0  # a diagonal hole of area 2 in one mask
    cleaned = fill_holes_and_remove_specks(logits, max_hole_area=1, max_speck_area=0)
    assert torch.equal(cleaned, logits)  # 8-connected: one hole of area 2 > 1
    cleaned = fill_holes_and_remove_specks(logits, max_hole_area=2, max_speck_area=0)
    assert cleaned[0, 1, 2, 2] == 10.0 and cleaned[0, 1, 3, 3] == 10.0
    assert torch.equal(cleaned[1], logits[1]) and torch.equal(cleaned[0, 0], logits[0, 0])
