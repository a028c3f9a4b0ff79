"""Unit tests of the automatic mask generator's building blocks (no oracle needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import masklet
import masklet.cli
from masklet.amg import (
    batched_nms,
    build_layer_point_grids,
    build_point_grid,
    generate_crop_boxes,
    masks_to_boxes,
    remove_small_regions,
    stability_score,
)
from masklet.amg.boxes import is_box_near_crop_edge
from masklet.cli import main
from masklet.config import PRESETS
from masklet.errors import ConfigError
from masklet.model.sam2 import SAM2Model


def greedy_nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> list[int]:
    """Textbook one-box-at-a-time NMS (same tie order as `torch.sort`). The IoU is divided in
    float32, the boxes' dtype, and compared with the threshold in float64, as torchvision's
    kernel does: 12 / 40 rounds to 0.30000001 in float32, which suppresses at threshold 0.3."""
    order = torch.sort(scores, descending=True).indices.tolist()
    kept: list[int] = []
    for i in order:
        ok = True
        for j in kept:
            lt = torch.maximum(boxes[i, :2], boxes[j, :2])
            rb = torch.minimum(boxes[i, 2:], boxes[j, 2:])
            inter = float((rb - lt).clamp(min=0).prod())
            area_i = float((boxes[i, 2:] - boxes[i, :2]).prod())
            area_j = float((boxes[j, 2:] - boxes[j, :2]).prod())
            union = area_i + area_j - inter
            iou = float(np.float32(inter) / np.float32(union)) if union > 0 else 0.0
            if iou > threshold:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


def test_nms_empty_input() -> None:
    keep = batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5)
    assert keep.dtype == torch.int64 and keep.shape == (0,)


def test_nms_identical_boxes_keep_the_best() -> None:
    boxes = torch.tensor([[0.0, 0, 10, 10]] * 3)
    keep = batched_nms(boxes, torch.tensor([0.2, 0.9, 0.5]), torch.zeros(3, dtype=torch.int64), 0.7)
    assert keep.tolist() == [1]


def test_nms_one_class_threshold_is_strict() -> None:
    # IoU of these two is exactly 0.5: "above the threshold" suppresses only above 0.5.
    boxes = torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 5], [50.0, 50, 60, 60]])
    scores = torch.tensor([0.9, 0.8, 0.1])
    categories = torch.zeros(3, dtype=torch.int64)
    assert batched_nms(boxes, scores, categories, 0.5).tolist() == [0, 1, 2]
    assert batched_nms(boxes, scores, categories, 0.49).tolist() == [0, 2]


def test_nms_categories_never_suppress_each_other() -> None:
    boxes = torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 10], [1.0, 1, 10, 10]])
    scores = torch.tensor([0.5, 0.9, 0.7])
    keep = batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5)
    # Box 1 (class 1) overlaps both others fully but suppresses neither; box 2 suppresses 0.
    assert keep.tolist() == [1, 2]


def test_nms_zero_area_boxes_do_not_suppress() -> None:
    boxes = torch.zeros(2, 4)
    keep = batched_nms(boxes, torch.tensor([0.5, 0.4]), torch.zeros(2, dtype=torch.int64), 0.1)
    assert keep.tolist() == [0, 1]


def test_nms_score_ties_follow_torch_sort() -> None:
    boxes = torch.tensor([[0.0, 0, 10, 10], [1.0, 1, 11, 11], [2.0, 2, 12, 12], [30.0, 0, 40, 9]])
    scores = torch.full((4,), 0.25)
    keep = batched_nms(boxes, scores, torch.zeros(4, dtype=torch.int64), 0.5)
    assert keep.tolist() == greedy_nms(boxes, scores, 0.5)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(0, 2**31 - 1),
    st.sampled_from([0.3, 0.5, 0.7, 0.95]),
    st.booleans(),
)
def test_nms_matches_textbook_greedy(count: int, seed: int, threshold: float, ties: bool) -> None:
    generator = torch.Generator().manual_seed(seed)
    corners = torch.randint(0, 30, (count, 2), generator=generator).float()
    sizes = torch.randint(0, 15, (count, 2), generator=generator).float()
    boxes = torch.cat([corners, corners + sizes], dim=1)
    if ties:
        scores = torch.randint(0, 3, (count,), generator=generator).float()
    else:
        scores = torch.rand(count, generator=generator)
    keep = batched_nms(boxes, scores, torch.zeros(count, dtype=torch.int64), threshold)
    assert keep.tolist() == greedy_nms(boxes, scores, threshold)


def test_nms_many_classes_equal_per_class_runs() -> None:
    generator = torch.Generator().manual_seed(1)
    corners = torch.randint(0, 50, (60, 2), generator=generator).float()
    boxes = torch.cat([corners, corners + 20], dim=1)
    scores = torch.rand(60, generator=generator)
    categories = torch.randint(0, 4, (60,), generator=generator)
    keep = set(batched_nms(boxes, scores, categories, 0.3).tolist())
    expected: set[int] = set()
    for category in range(4):
        members = torch.nonzero(categories == category).flatten()
        kept = greedy_nms(boxes[members], scores[members], 0.3)
        expected |= {int(members[i]) for i in kept}
    assert keep == expected


def test_point_grid() -> None:
    grid = build_point_grid(2)
    np.testing.assert_allclose(grid, [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]])
    assert build_point_grid(32).shape == (1024, 2)
    layers = build_layer_point_grids(16, 2, 2)
    assert [len(g) for g in layers] == [256, 64, 16]


def test_crop_boxes() -> None:
    boxes, layers = generate_crop_boxes((100, 200), 1, 0.5)
    # overlap = int(0.5 * 100 * 2 / 2) = 50; crop sides ceil((50 + 200) / 2), ceil(150 / 2).
    assert boxes == [
        (0, 0, 200, 100),
        (0, 0, 125, 75),
        (0, 25, 125, 100),
        (75, 0, 200, 75),
        (75, 25, 200, 100),
    ]
    assert layers == [0, 1, 1, 1, 1]
    boxes, layers = generate_crop_boxes((64, 64), 2, 512 / 1500)
    assert len(boxes) == 1 + 4 + 16 and layers.count(2) == 16
    assert all(0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64 for x0, y0, x1, y1 in boxes)


def test_masks_to_boxes_and_empty_mask() -> None:
    masks = torch.zeros(3, 5, 7, dtype=torch.bool)
    masks[0, 1:3, 2:6] = True
    masks[1, 4, 0] = True
    boxes = masks_to_boxes(masks)
    assert boxes.tolist() == [[2, 1, 5, 2], [0, 4, 0, 4], [0, 0, 0, 0]]
    assert masks_to_boxes(torch.zeros(0, 5, 7, dtype=torch.bool)).shape == (0, 4)


def test_box_near_crop_edge() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [30, 30, 40, 40], [60, 30, 99, 40]])
    near = is_box_near_crop_edge(boxes, (100, 0, 200, 100), (0, 0, 200, 100))
    # Box 0 touches the crop's left edge (x=100 in the image): inside the image, so near.
    # Box 2's right edge touches the crop's (and image's) right edge: not counted.
    assert near.tolist() == [True, False, False]


def test_stability_score() -> None:
    logits = torch.full((2, 4, 4), -5.0)
    logits[0, :2] = 5.0  # 8 pixels above +1
    logits[0, 2] = 0.5  # 4 more above -1
    scores = stability_score(logits, 0.0, 1.0)
    assert scores[0].item() == pytest.approx(8 / 12)
    assert torch.isnan(scores[1])


def test_remove_small_regions_holes_and_islands() -> None:
    mask = np.zeros((12, 12), dtype=bool)
    mask[1:9, 1:9] = True
    mask[4, 4] = False  # 1-pixel hole
    mask[10, 10] = True  # 1-pixel island, diagonal to nothing
    filled, changed = remove_small_regions(mask, 2, "holes")
    assert changed and filled[4, 4] and filled[10, 10]
    cleaned, changed = remove_small_regions(filled, 2, "islands")
    assert changed and not cleaned[10, 10] and cleaned[1:9, 1:9].all()
    same, changed = remove_small_regions(cleaned, 2, "islands")
    assert not changed and (same == cleaned).all()
    # Diagonal neighbours are connected (8-connectivity): a 2-pixel diagonal island has area 2.
    diagonal = np.zeros((6, 6), dtype=bool)
    diagonal[1, 1] = diagonal[2, 2] = True
    diagonal[4, 4] = True
    kept, _ = remove_small_regions(diagonal, 2, "islands")
    assert kept[1, 1] and kept[2, 2] and not kept[4, 4]
    # All islands small: the largest stays.
    only, _ = remove_small_regions(diagonal, 5, "islands")
    assert only[1, 1] and only[2, 2] and not only[4, 4]


def test_generator_rejects_bad_settings() -> None:
    model = SAM2Model(PRESETS["sam2.1_hiera_t"])
    with pytest.raises(ConfigError):
        masklet.SAM2AutomaticMaskGenerator(model, points_per_side=None)
    with pytest.raises(ConfigError):
        masklet.SAM2AutomaticMaskGenerator(model, output_mode="png")
    with pytest.raises(ConfigError):
        masklet.SAM2AutomaticMaskGenerator(
            model, points_per_side=None, point_grids=[build_point_grid(2)], crop_n_layers=1
        )


def test_generate_records_are_well_formed() -> None:
    torch.manual_seed(0)
    model = masklet.build_sam2("sam2.1_hiera_t", image_size=128).eval()
    with torch.no_grad():
        for module in model.sam_mask_decoder.output_hypernetworks_mlps:
            module.layers[-1].weight.mul_(40.0)
    generator = masklet.SAM2AutomaticMaskGenerator(
        model,
        points_per_side=4,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
        box_nms_thresh=1.0,
        output_mode="binary_mask",
    )
    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    records = generator.generate(image)
    assert records, "no masks"
    for record in records:
        mask = record["segmentation"]
        assert mask.shape == (40, 60) and mask.dtype == np.bool_
        assert record["area"] == int(mask.sum())
        x, y, w, h = record["bbox"]
        if record["area"]:
            ys, xs = np.nonzero(mask)
            assert (x, y, x + w, y + h) == (xs.min(), ys.min(), xs.max(), ys.max())
        assert record["crop_box"] == [0.0, 0.0, 60.0, 40.0]
        assert len(record["point_coords"]) == 1


@pytest.fixture(autouse=True)
def auto_command_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """`masklet auto` is listed in `masklet.cli.COMMAND_MODULES`; add it here if not yet."""
    if "masklet.cli.auto" not in masklet.cli.COMMAND_MODULES:
        modules = (*masklet.cli.COMMAND_MODULES, "masklet.cli.auto")
        monkeypatch.setattr(masklet.cli, "COMMAND_MODULES", modules)


@pytest.mark.parametrize("label_png", [False, True])
def test_cli_auto_writes_masks_overlay_and_json(tmp_path: Path, label_png: bool) -> None:
    torch.manual_seed(0)
    model = SAM2Model(PRESETS["sam2.1_hiera_t"])
    with torch.no_grad():
        for module in model.sam_mask_decoder.output_hypernetworks_mlps:
            module.layers[-1].weight.mul_(40.0)
    checkpoint = tmp_path / "random.pt"
    torch.save({"model": model.state_dict()}, checkpoint)
    image_path = tmp_path / "photo.png"
    image = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(image).save(image_path)
    out = tmp_path / "out"
    arguments = [
        "auto", str(image_path), "--out", str(out), "--checkpoint", str(checkpoint),
        "--image-size", "128", "--dtype", "float32", "--points-per-side", "4",
        "--pred-iou-thresh", "0", "--stability-score-thresh", "0", "--box-nms-thresh", "1.0",
    ]  # fmt: skip
    assert main([*arguments, *(["--label-png"] if label_png else [])]) == 0
    summary = json.loads((out / "masks.json").read_text())
    masks = summary["masks"]
    assert masks and summary["settings"]["points_per_side"] == 4
    assert np.asarray(Image.open(out / "overlay.png")).shape == (48, 64, 3)
    if label_png:
        labels = np.asarray(Image.open(out / "labels.png"))
        assert labels.shape == (48, 64) and labels.max() <= len(masks)
        assert masks[0]["area"] == 0 or (labels == 1).any()
    else:
        for record in masks:
            mask = np.asarray(Image.open(out / record["file"])) > 0
            assert mask.shape == (48, 64) and int(mask.sum()) == record["area"]


def test_cli_auto_missing_image(tmp_path: Path) -> None:
    checkpoint = tmp_path / "random.pt"
    checkpoint.write_bytes(b"")
    code = main(["auto", str(tmp_path / "nope.png"), "--out", str(tmp_path), "--checkpoint",
                 str(checkpoint)])  # fmt: skip
    assert code == 2
