"""Parity of `SAM2AutomaticMaskGenerator` with the reference (sam2==1.1.0) on shared weights.

Random weights give near-zero mask logits, so every mask would fail the stability filter. The
oracle's hypernetwork output layers are scaled by 40 before the weights are saved (both sides
load that file), and thresholds are set so that a handful of distinct masks survive. Masks are
matched one-to-one in output order: IoU >= 0.99 (they are in fact identical), equal boxes,
points and crop boxes, scores within 1e-4.

`min_mask_region_area > 0` makes the reference call its CUDA connected-components extension,
which does not exist on CPU (it then silently skips the clean-up). The test gives it a
test-only `sam2._C` with a plain breadth-first 8-connected labelling written here, so both
sides really clean masks.
"""

from __future__ import annotations

import sys
import types
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import masklet
from conftest import PARITY_IMAGE_SIZE
from masklet.io.rle import rle_to_mask
from oracle import build_oracle, install_torchvision_stand_in, oracle_image_predictor

pytestmark = pytest.mark.parity
SCORE_TOLERANCE = 1e-4
HYPERNETWORK_SCALE = 40.0
BASE = dict(
    points_per_side=8,
    pred_iou_thresh=0.0,
    stability_score_thresh=0.3,
    stability_score_offset=0.5,
    mask_threshold=4.0,
    box_nms_thresh=0.95,
)


class Models:
    def __init__(self, directory: Path) -> None:
        self.oracle = build_oracle("sam2.1_hiera_t", PARITY_IMAGE_SIZE)
        with torch.no_grad():
            for mlp in self.oracle.sam_mask_decoder.output_hypernetworks_mlps:
                mlp.layers[-1].weight.mul_(HYPERNETWORK_SCALE)
                mlp.layers[-1].bias.mul_(HYPERNETWORK_SCALE)
        path = directory / "automatic_scaled_hypernetworks.pt"
        torch.save({"model": self.oracle.state_dict()}, path)
        self.ours = masklet.build_sam2(
            "sam2.1_hiera_t", checkpoint=path, image_size=PARITY_IMAGE_SIZE
        )


@pytest.fixture(scope="module")
def models(checkpoint_dir: Path) -> Models:
    return Models(checkpoint_dir)


def _oracle_generator(model: torch.nn.Module, **options: Any) -> Any:
    install_torchvision_stand_in()
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

    generator = SAM2AutomaticMaskGenerator(model, **options)
    generator.predictor._bb_feat_sizes = oracle_image_predictor(model)._bb_feat_sizes
    return generator


def _as_mask(segmentation: Any) -> np.ndarray:
    return segmentation if isinstance(segmentation, np.ndarray) else rle_to_mask(segmentation)


def compare(models: Models, image: np.ndarray, **options: Any) -> int:
    """Run both generators with `BASE` updated by `options`; assert parity; return the count."""
    settings = {**BASE, **options}
    with torch.no_grad():
        ours = masklet.SAM2AutomaticMaskGenerator(models.ours, **settings).generate(image)
        theirs = _oracle_generator(models.oracle, **settings).generate(image)
    assert len(ours) == len(theirs) > 0
    worst = 0.0
    for mine, reference in zip(ours, theirs):
        assert mine.keys() == reference.keys()
        a, b = _as_mask(mine["segmentation"]), _as_mask(reference["segmentation"])
        assert a.shape == b.shape == image.shape[:2]
        assert (a & b).sum() / max((a | b).sum(), 1) >= 0.99
        if isinstance(reference["segmentation"], dict):
            assert type(mine["segmentation"]["counts"]) is type(reference["segmentation"]["counts"])
            assert mine["segmentation"] == reference["segmentation"]
        for key in ("predicted_iou", "stability_score"):
            worst = max(worst, abs(mine[key] - reference[key]))
            assert abs(mine[key] - reference[key]) <= SCORE_TOLERANCE, key
        for key in ("area", "bbox", "point_coords", "crop_box"):
            assert mine[key] == reference[key], key
    print(f"automatic parity {options}: {len(ours)} masks matched, max score diff {worst:.2e}")
    return len(ours)


def test_whole_image(models: Models, photo: np.ndarray) -> None:
    assert compare(models, photo) >= 5


def test_predicted_iou_filter_and_single_mask(models: Models, photo: np.ndarray) -> None:
    compare(models, photo, pred_iou_thresh=0.52)
    compare(models, photo, multimask_output=False, stability_score_thresh=0.1)


def test_crop_layer(models: Models, photo: np.ndarray) -> None:
    count = compare(models, photo, crop_n_layers=1)
    assert count >= 3


@pytest.mark.slow  # crop layers are covered by test_crop_layer; this variant adds ~25 s
def test_crop_layer_with_fewer_points(models: Models, photo: np.ndarray) -> None:
    compare(models, photo, crop_n_layers=1, crop_n_points_downscale_factor=2, mask_threshold=2.0)


def test_mask_to_mask_refinement(models: Models, photo: np.ndarray) -> None:
    compare(models, photo, use_m2m=True, points_per_batch=50)


@pytest.mark.parametrize("output_mode", ["uncompressed_rle", "coco_rle"])
def test_output_modes(models: Models, photo: np.ndarray, output_mode: str) -> None:
    compare(models, photo, output_mode=output_mode)


def test_explicit_point_grid(models: Models, photo: np.ndarray) -> None:
    grid = np.random.default_rng(3).uniform(0.05, 0.95, size=(40, 2))
    compare(models, photo, points_per_side=None, point_grids=[grid])


def _label_components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected components of one `(H, W)` bool mask by breadth-first search; returns the
    label and the component area of each pixel (0 on background)."""
    height, width = mask.shape
    labels = np.zeros((height, width), dtype=np.int32)
    areas = np.zeros((height, width), dtype=np.int32)
    next_label = 0
    for start in zip(*np.nonzero(mask)):
        if labels[start]:
            continue
        next_label += 1
        labels[start] = next_label
        members = [start]
        queue = deque([start])
        while queue:
            y, x = queue.popleft()
            for ny in range(max(y - 1, 0), min(y + 2, height)):
                for nx in range(max(x - 1, 0), min(x + 2, width)):
                    if mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = next_label
                        members.append((ny, nx))
                        queue.append((ny, nx))
        rows, cols = zip(*members)
        areas[rows, cols] = len(members)
    return labels, areas


def _connected_components_stand_in(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    results = [_label_components(item[0].numpy().astype(bool)) for item in mask]
    labels = torch.from_numpy(np.stack([r[0] for r in results]))[:, None]
    areas = torch.from_numpy(np.stack([r[1] for r in results]))[:, None]
    return labels, areas


def test_min_mask_region_area(
    models: Models, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    extension = types.ModuleType("sam2._C")
    extension.get_connected_componnets = _connected_components_stand_in  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sam2._C", extension)
    options = dict(points_per_side=4, min_mask_region_area=25, stability_score_thresh=0.2)
    with_cleanup = compare(models, photo, **options)
    assert with_cleanup > 0
    with torch.no_grad():
        plain = masklet.SAM2AutomaticMaskGenerator(
            models.ours, **{**BASE, **options, "min_mask_region_area": 0}
        ).generate(photo)
        cleaned = masklet.SAM2AutomaticMaskGenerator(models.ours, **{**BASE, **options}).generate(
            photo
        )
    # The clean-up changes at least one result (otherwise this test would prove nothing).
    assert [m["area"] for m in plain] != [m["area"] for m in cleaned]
