"""Mask formats: DAVIS indexed PNGs, SA-V per-object PNGs and SA-V JSON (COCO RLE:
tests/test_io_rle.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from masklet.errors import InputError
from masklet.io import (
    empty_rle,
    labels_to_masks,
    list_object_pngs,
    masklet_stats,
    masks_to_labels,
    object_png_path,
    read_indexed_png,
    read_object_pngs,
    read_sav_json,
    sav_annotation_from_masks,
    voc_palette,
    write_indexed_png,
    write_object_pngs,
    write_sav_json,
)

# -- DAVIS indexed PNGs -------------------------------------------------------------------------


def test_voc_palette() -> None:
    palette = voc_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    assert palette[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert palette[255].tolist() == [224, 224, 192]


@st.composite
def labels_and_palette(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    num_colors = draw(st.integers(1, 256))
    shape = draw(st.tuples(st.integers(1, 16), st.integers(1, 16)))
    labels = draw(arrays(np.uint8, shape, elements=st.integers(0, num_colors - 1)))
    palette = draw(arrays(np.uint8, (num_colors, 3)))
    return labels, palette


@settings(max_examples=60, deadline=None)
@given(case=labels_and_palette())
def test_indexed_png_round_trip_keeps_palette(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[np.ndarray, np.ndarray]
) -> None:
    labels, palette = case
    path = tmp_path_factory.mktemp("png") / "00000.png"
    write_indexed_png(path, labels, palette)
    read_labels, read_palette = read_indexed_png(path)
    np.testing.assert_array_equal(read_labels, labels)
    assert read_palette is not None
    np.testing.assert_array_equal(read_palette[: len(palette)], palette)
    assert not read_palette[len(palette) :].any()  # anything PIL pads is unused black


def test_indexed_png_default_palette_and_modes(tmp_path: Path) -> None:
    labels = np.array([[0, 1, 2], [255, 3, 0]], dtype=np.uint8)
    write_indexed_png(tmp_path / "a" / "00000.png", labels)
    read_labels, palette = read_indexed_png(tmp_path / "a" / "00000.png")
    np.testing.assert_array_equal(read_labels, labels)
    np.testing.assert_array_equal(palette, voc_palette())
    Image.fromarray(labels, mode="L").save(tmp_path / "gray.png")
    gray_labels, gray_palette = read_indexed_png(tmp_path / "gray.png")
    np.testing.assert_array_equal(gray_labels, labels)
    assert gray_palette is None
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(InputError, match="RGB image"):
        read_indexed_png(tmp_path / "rgb.png")
    with pytest.raises(InputError, match=r"0\.\.255"):
        write_indexed_png(tmp_path / "bad.png", np.full((2, 2), 300))
    with pytest.raises(InputError, match=r"mask PNG not found: .*missing\.png"):
        read_indexed_png(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"cannot read mask PNG .*junk\.png: not an image"):
        read_indexed_png(tmp_path / "junk.png")


def test_labels_to_masks_and_back() -> None:
    labels = np.array([[0, 1, 1], [2, 255, 5]], dtype=np.uint8)
    masks = labels_to_masks(labels)
    assert sorted(masks) == [1, 2, 5]  # 0 background and 255 void are not objects
    assert masks[1].tolist() == [[False, True, True], [False, False, False]]
    assert sorted(labels_to_masks(labels, obj_ids=[1, 7])) == [1, 7]
    assert not labels_to_masks(labels, obj_ids=[7])[7].any()
    merged = masks_to_labels(masks)
    np.testing.assert_array_equal(merged, np.where(labels == 255, 0, labels))


def test_masks_to_labels_overlap_smallest_id_wins() -> None:
    first = np.array([[1, 1, 0]], bool)
    second = np.array([[0, 1, 1]], bool)
    assert masks_to_labels({3: second, 2: first}).tolist() == [[2, 2, 3]]
    assert masks_to_labels({}, shape=(1, 2)).tolist() == [[0, 0]]
    with pytest.raises(InputError, match=r"1\.\.254"):
        masks_to_labels({255: first})
    with pytest.raises(InputError, match="shape"):
        masks_to_labels({1: first, 2: np.zeros((2, 2), bool)})


# -- SA-V per-object PNGs -----------------------------------------------------------------------


def test_object_pngs_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = {f: {o: rng.random((6, 9)) > 0.5 for o in (0, 1, 12)} for f in (0, 4, 8)}
    for frame_idx, masks in frames.items():
        write_object_pngs(tmp_path / "sav_000001", frame_idx, masks)
    assert object_png_path(tmp_path, 12, 4) == tmp_path / "012" / "00004.png"
    assert (tmp_path / "sav_000001" / "012" / "00008.png").is_file()
    assert list_object_pngs(tmp_path / "sav_000001") == {0: [0, 4, 8], 1: [0, 4, 8], 12: [0, 4, 8]}
    for frame_idx, masks in frames.items():
        read = read_object_pngs(tmp_path / "sav_000001", frame_idx)
        assert sorted(read) == [0, 1, 12]
        for obj_id, mask in masks.items():
            np.testing.assert_array_equal(read[obj_id], mask)
    with Image.open(tmp_path / "sav_000001" / "001" / "00000.png") as image:
        assert image.mode == "P" and set(np.unique(np.array(image))) <= {0, 1}
    assert read_object_pngs(tmp_path / "sav_000001", 2) == {}
    with pytest.raises(InputError, match="no <obj:03d>"):
        list_object_pngs(tmp_path)


# -- SA-V JSON ----------------------------------------------------------------------------------

SAV_KEYS = {
    "video_id",
    "video_duration",
    "video_frame_count",
    "video_height",
    "video_width",
    "video_resolution",
    "video_environment",
    "video_split",
    "masklet",
    "masklet_id",
    "masklet_size_rel",
    "masklet_size_abs",
    "masklet_size_bucket",
    "masklet_visibility_changes",
    "masklet_first_appeared_frame",
    "masklet_frame_count",
    "masklet_edited_frame_count",
    "masklet_type",
    "masklet_stability_score",
    "masklet_num",
}


def box_mask(top: int, left: int, size: int, shape: tuple[int, int] = (40, 50)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + size, left : left + size] = True
    return mask


def test_sav_json_round_trip_and_stats(tmp_path: Path) -> None:
    frames = [
        {0: box_mask(0, 0, 10)},  # object 3 not yet visible
        {0: box_mask(2, 2, 10), 3: box_mask(20, 20, 4)},
        {0: box_mask(4, 4, 20), 3: np.zeros((40, 50), bool)},  # object 3 disappears
        {0: box_mask(4, 4, 20), 3: box_mask(21, 21, 6)},  # ... and reappears
    ]
    annotation = sav_annotation_from_masks(
        "sav_000042", frames, 40, 50, video_environment="Indoor", video_split="train"
    )
    assert annotation.masklet_id == [0, 3]
    assert annotation.video_frame_count == 13 and annotation.frame_indices() == [0, 4, 8, 12]
    path = tmp_path / "sav_000042_manual.json"
    write_sav_json(path, annotation)
    data = json.loads(path.read_text())
    assert set(data) == SAV_KEYS
    assert data["masklet_num"] == 2 and data["video_resolution"] == 2000.0
    assert data["masklet_first_appeared_frame"] == [0.0, 1.0]
    assert data["masklet_visibility_changes"] == [0, 2]
    assert data["masklet_frame_count"] == [4, 4]
    assert data["masklet_size_abs"] == pytest.approx([(100 + 100 + 400 + 400) / 4, (16 + 36) / 2])
    assert data["masklet_size_rel"][0] == pytest.approx(250 / 2000)
    assert data["masklet_size_bucket"] == ["small", "small"]
    assert data["masklet_type"] == ["manual", "manual"]
    assert data["masklet_stability_score"] == [None, None]
    assert data["video_duration"] == pytest.approx(13 / 24)
    assert all(isinstance(rle["counts"], str) for row in data["masklet"] for rle in row)
    assert data["masklet"][0][1] == empty_rle(40, 50)  # dense: absent object, empty RLE
    read = read_sav_json(path)
    assert (read.video_id, read.video_height, read.video_width) == ("sav_000042", 40, 50)
    assert read.video_environment == "Indoor" and read.masklet_id == [0, 3]
    for k, frame in enumerate(frames):
        masks = read.masks_at(k)
        for obj_id in (0, 3):
            expected = frame.get(obj_id, np.zeros((40, 50), bool))
            np.testing.assert_array_equal(masks[obj_id], expected)
    assert masklet_stats(read)["masklet_size_abs"] == data["masklet_size_abs"]


def test_sav_json_size_buckets_extra_keys_and_errors(tmp_path: Path) -> None:
    shape = (200, 200)
    frames = [{1: box_mask(0, 0, 40, shape), 2: box_mask(0, 0, 100, shape)}]
    annotation = sav_annotation_from_masks("v", frames, 200, 200)
    annotation.extra["note"] = "kept"
    write_sav_json(tmp_path / "v.json", annotation)
    data = json.loads((tmp_path / "v.json").read_text())
    assert data["masklet_size_bucket"] == ["medium", "large"]
    assert read_sav_json(tmp_path / "v.json").extra == {"note": "kept"}
    with pytest.raises(InputError, match="not found"):
        read_sav_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"video_id": "x"}))
    with pytest.raises(InputError, match="missing video_height"):
        read_sav_json(tmp_path / "bad.json")
    with pytest.raises(InputError, match=r"expected \(200, 200\)"):
        sav_annotation_from_masks("v", [{1: np.zeros((3, 3), bool)}], 200, 200)
    with pytest.raises(InputError, match=r"0\.\.0"):
        annotation.masks_at(1)
