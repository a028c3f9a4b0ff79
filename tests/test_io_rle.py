"""COCO RLE (`masklet.io.rle`): compressed and uncompressed forms, single masks and batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as coco_mask

from masklet.errors import InputError
from masklet.io.rle import (
    compress_rle,
    empty_rle,
    mask_to_rle,
    mask_to_uncompressed_rle,
    masks_to_uncompressed_rles,
    pad_rle,
    rle_area,
    rle_to_mask,
)

bool_masks = arrays(
    dtype=np.bool_,
    shape=st.tuples(st.integers(1, 24), st.integers(1, 24)),
)


@settings(max_examples=150, deadline=None)
@given(mask=bool_masks)
def test_rle_round_trip(mask: np.ndarray) -> None:
    rle = mask_to_rle(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == list(mask.shape)
    restored = rle_to_mask(json.loads(json.dumps(rle)))
    assert restored.dtype == np.bool_
    np.testing.assert_array_equal(restored, mask)
    np.testing.assert_array_equal(rle_to_mask(mask_to_rle(mask.T)), mask.T)  # non-contiguous
    assert rle_area(rle) == int(mask.sum())


@settings(max_examples=150, deadline=None)
@given(mask=bool_masks)
def test_uncompressed_rle_round_trip_and_agrees_with_pycocotools(mask: np.ndarray) -> None:
    rle = mask_to_uncompressed_rle(mask)
    assert sum(rle["counts"]) == mask.size
    np.testing.assert_array_equal(rle_to_mask(rle), mask)
    assert rle_area(rle) == int(mask.sum())
    compressed = coco_mask.frPyObjects(rle, *rle["size"])
    np.testing.assert_array_equal(rle_to_mask(compressed), mask)
    assert compressed["counts"].decode() == mask_to_rle(mask)["counts"]


def test_rle_runs_are_column_major() -> None:
    mask = np.array([[1, 0, 0], [1, 1, 0]], dtype=bool)  # columns: (1,1), (0,1), (0,0)
    assert mask_to_uncompressed_rle(mask)["counts"] == [0, 2, 1, 1, 2]
    np.testing.assert_array_equal(rle_to_mask({"size": [2, 3], "counts": [0, 2, 1, 1, 2]}), mask)
    assert rle_to_mask({"size": [2, 3], "counts": mask_to_rle(mask)["counts"].encode()}).sum() == 3


def test_empty_rle_matches_sav_files() -> None:
    # The empty 848x480 RLE as it appears in SA-V's sav_000001_manual.json.
    assert empty_rle(848, 480) == {"size": [848, 480], "counts": "P`]<"}
    assert not rle_to_mask({"size": [848, 480], "counts": "P`]<"}).any()


def test_rle_errors() -> None:
    with pytest.raises(InputError, match=r"\(H, W\)"):
        mask_to_rle(np.zeros((2, 3, 4), bool))
    with pytest.raises(InputError, match="sum to 5"):
        rle_to_mask({"size": [2, 3], "counts": [2, 3]})
    with pytest.raises(InputError, match="'size' and 'counts'"):
        rle_to_mask({"counts": "P`]<"})


def test_empty_masks() -> None:
    assert mask_to_uncompressed_rle(np.zeros((0, 3), bool)) == {"size": [0, 3], "counts": [0]}
    assert rle_to_mask(empty_rle(0, 3)).shape == (0, 3)
    assert masks_to_uncompressed_rles(torch.zeros(0, 4, 5, dtype=torch.bool)) == []


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_batched_uncompressed_rles(height: int, width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    masks = rng.random((3, height, width)) < rng.random()
    masks[0] = True
    rles = masks_to_uncompressed_rles(torch.from_numpy(masks))
    for mask, rle in zip(masks, rles, strict=True):
        assert rle == mask_to_uncompressed_rle(mask)  # one encoding, batched or not
        np.testing.assert_array_equal(rle_to_mask(rle), mask)
        assert rle_area(rle) == int(mask.sum())
        compressed = compress_rle(rle)
        assert compressed == mask_to_rle(mask)  # same string as encoding the mask
        np.testing.assert_array_equal(rle_to_mask(compressed), mask)
    assert rles[0]["counts"][0] == 0  # starts with an empty background run


def test_compress_rle_takes_every_form() -> None:
    mask = np.array([[1, 0, 0], [1, 1, 0]], dtype=bool)
    compressed = mask_to_rle(mask)
    assert compress_rle(compressed) == compressed
    as_bytes = {"size": (2, 3), "counts": compressed["counts"].encode()}
    assert compress_rle(as_bytes) == compressed
    assert compress_rle({"size": [2, 3], "counts": (0, 2, 1, 1, 2)}) == compressed
    with pytest.raises(InputError, match="sum to 5"):
        compress_rle({"size": [2, 3], "counts": [2, 3]})
    with pytest.raises(InputError, match="must be str, bytes or a list"):
        compress_rle({"size": [2, 3], "counts": 7})


def test_pad_rle_places_crop() -> None:
    crop = np.zeros((4, 5), dtype=bool)
    crop[1:3, 2:4] = True
    rle = masks_to_uncompressed_rles(torch.from_numpy(crop)[None])[0]
    padded = pad_rle(rle, (3, 2, 8, 6), (10, 12))
    assert isinstance(padded["counts"], list) and padded["size"] == [10, 12]
    expected = np.zeros((10, 12), dtype=bool)
    expected[2:6, 3:8] = crop
    np.testing.assert_array_equal(rle_to_mask(padded), expected)
    assert pad_rle(rle, (0, 0, 5, 4), (4, 5)) is rle  # the whole image: unchanged
