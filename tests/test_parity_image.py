"""Parity of the image path with the reference (sam2==1.1.0) on shared random weights.

Protocol (DESIGN §4): the oracle is built with random weights, saved as an official-format
checkpoint, loaded into masklet through `build_sam2(..., checkpoint=...)`; both run fp32 on CPU.
Target: max |diff| <= 1e-4 on logits and scores. Every compared mask must be non-trivial
(between 1% and 99% of the image) on the reference side, and the masks of different prompts in
a batch must differ: otherwise agreement could be an accident.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import masklet
from conftest import PARITY_IMAGE_SIZE
from masklet.session.preprocess import preprocess_image
from oracle import build_oracle, oracle_checkpoint, oracle_image_predictor

pytestmark = pytest.mark.parity
TOLERANCE = 1e-4
MIN_FOREGROUND, MAX_FOREGROUND = 0.01, 0.99
WORST: dict[str, float] = {}
PRESETS = ["sam2.1_hiera_t", "sam2.1_hiera_b+", "sam2_hiera_s"]


class Pair:
    """masklet and oracle predictors sharing one set of weights, with one image set."""

    def __init__(self, preset: str, directory: Path, image: np.ndarray) -> None:
        self.oracle_model = build_oracle(preset, PARITY_IMAGE_SIZE)
        path = oracle_checkpoint(preset, PARITY_IMAGE_SIZE, str(directory))
        self.model = masklet.build_sam2(preset, checkpoint=path, image_size=PARITY_IMAGE_SIZE)
        self.ours = masklet.SAM2ImagePredictor(self.model)
        self.theirs = oracle_image_predictor(self.oracle_model)
        self.ours.set_image(image)
        self.theirs.set_image(image)  # type: ignore[attr-defined]

    def compare(self, require_non_trivial: bool = True, **prompt: object) -> None:
        ours = self.ours.predict(**prompt, return_logits=True)  # type: ignore[arg-type]
        theirs = self.theirs.predict(**prompt, return_logits=True)  # type: ignore[attr-defined]
        for name, a, b in zip(("masks", "iou", "low_res"), ours, theirs):
            assert a.shape == b.shape, name
            difference = float(np.abs(a - b).max())
            WORST[name] = max(WORST.get(name, 0.0), difference)
            assert difference <= TOLERANCE, (name, difference)
        if require_non_trivial:
            assert_non_trivial(theirs[0])
        binary = self.ours.predict(**prompt)[0]  # type: ignore[arg-type]
        assert binary.dtype == np.bool_


class ShippedPair(Pair):
    """masklet and the reference on masklet_nano's shipped weights (the reference built from
    its own config plus `reference_build_arguments`), with one image set."""

    def __init__(self, image: np.ndarray) -> None:
        from oracle import build_oracle_with_shipped_weights

        self.oracle_model = build_oracle_with_shipped_weights()
        self.model = masklet.build_sam2("masklet_nano")
        self.ours = masklet.SAM2ImagePredictor(self.model)
        self.theirs = oracle_image_predictor(self.oracle_model)
        self.ours.set_image(image)
        self.theirs.set_image(image)  # type: ignore[attr-defined]


def assert_non_trivial(logits: np.ndarray) -> None:
    """Each mask of `(..., H, W)` logits covers 1-99% of the image, and the masks of different
    prompts (the leading axis of a batch) differ by more than the tolerance."""
    masks = logits.reshape(-1, *logits.shape[-2:])
    shares = (masks > 0).mean(axis=(1, 2))
    assert ((shares >= MIN_FOREGROUND) & (shares <= MAX_FOREGROUND)).all(), shares
    if logits.ndim == 4:
        for first, second in itertools.pairwise(logits):
            assert np.abs(first - second).max() > TOLERANCE, "two prompts gave the same masks"


@pytest.fixture(scope="module", autouse=True)
def report_worst_differences() -> Iterator[None]:
    yield
    print("image parity worst |diff|:", {name: f"{value:.2e}" for name, value in WORST.items()})


@pytest.fixture(scope="module", params=PRESETS)
def pair(request: pytest.FixtureRequest, checkpoint_dir: Path, photo: np.ndarray) -> Pair:
    return Pair(request.param, checkpoint_dir, photo)


def test_backbone_features_match(pair: Pair, photo: np.ndarray) -> None:
    image = preprocess_image(photo, PARITY_IMAGE_SIZE)[None]
    with torch.no_grad():
        theirs = pair.oracle_model.forward_image(image)
        ours = pair.model.encode_image(image)
    ours_levels = [*ours.high_res_features, ours.image_embedding]
    for a, b in zip(ours_levels, theirs["backbone_fpn"]):
        assert (a - b).abs().max() <= TOLERANCE
    assert (ours.position - theirs["vision_pos_enc"][-1]).abs().max() <= TOLERANCE


def test_image_embedding_matches(pair: Pair) -> None:
    ours = pair.ours.get_image_embedding()
    theirs = pair.theirs.get_image_embedding()  # type: ignore[attr-defined]
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max() <= TOLERANCE


@pytest.mark.parametrize("multimask", [True, False])
def test_point_prompts(pair: Pair, multimask: bool) -> None:
    pair.compare(
        point_coords=np.array([[120.0, 90.0]]),
        point_labels=np.array([1]),
        multimask_output=multimask,
    )
    pair.compare(
        point_coords=np.array([[120.0, 90.0], [30.5, 160.0], [200, 20]]),
        point_labels=np.array([1, 0, 1]),
        multimask_output=multimask,
    )


def test_box_prompt(pair: Pair) -> None:
    pair.compare(box=np.array([70.0, 50.0, 170.0, 130.0]), multimask_output=False)
    pair.compare(
        box=np.array([70.0, 50.0, 170.0, 130.0]),
        point_coords=np.array([[100.0, 80.0]]),
        point_labels=np.array([0]),
        multimask_output=True,
    )


def test_mask_input(pair: Pair) -> None:
    _, scores, low_res = pair.ours.predict(
        point_coords=np.array([[120.0, 90.0]]), point_labels=np.array([1])
    )
    best = low_res[np.argmax(scores)][None]
    pair.compare(
        point_coords=np.array([[120.0, 90.0], [60, 60]]),
        point_labels=np.array([1, 1]),
        mask_input=best,
        multimask_output=False,
    )
    pair.compare(mask_input=best, multimask_output=True)


def test_batch_of_prompts(pair: Pair) -> None:
    boxes = np.array([[10, 10, 100, 100], [70, 50, 170, 130], [0, 0, 240, 180]], dtype=np.float32)
    pair.compare(box=boxes, multimask_output=True)
    points = np.array([[[50, 50]], [[120, 90]], [[200, 150]]], dtype=np.float32)
    pair.compare(point_coords=points, point_labels=np.ones((3, 1)), multimask_output=False)


def test_normalized_coordinates(pair: Pair) -> None:
    pair.compare(
        point_coords=np.array([[0.5, 0.5]]), point_labels=np.array([1]), normalize_coords=False
    )


def test_shipped_nano_weights_match_reference(photo: np.ndarray) -> None:
    """masklet_nano's shipped weights give the same masks in masklet and in the reference:
    clicks, box. Once the shipped weights are trained their masks must also be non-trivial."""
    from oracle import shipped_is_trained

    pair = ShippedPair(photo)
    trained = shipped_is_trained()
    pair.compare(trained, point_coords=np.array([[120.0, 90.0]]), point_labels=np.array([1]))
    clicks = np.array([[120.0, 90.0], [30.0, 30.0]])
    pair.compare(trained, point_coords=clicks, point_labels=np.array([1, 0]))
    pair.compare(trained, box=np.array([70.0, 50.0, 170.0, 130.0]), multimask_output=False)
