"""The one prompt validator (`masklet.predictors.prompts`): labels, outside-image messages and
the mapping to model-input pixels, shared by the image predictor, the video functions and the
command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from masklet.build import build_sam2
from masklet.cli.prompt_spec import check_prompt, parse_prompt_spec
from masklet.cli.segment import parse_points
from masklet.errors import InputError
from masklet.predictors.image import SAM2ImagePredictor
from masklet.predictors.prompts import (
    CLICK_LABELS,
    POINT_LABELS,
    check_inside,
    check_labels,
    point_prompt,
    prepare_prompts,
)

CPU = torch.device("cpu")
IMAGE_HW = (80, 96)  # H, W


def image_prompts(points: list[list[float]], labels: list[int], box: list[float] | None = None):
    return prepare_prompts(np.array(points), np.array(labels), box, None, IMAGE_HW, 64, True, CPU)


def video_prompt(points: list[list[float]] | None, labels: list[int] | None, box=None):
    return point_prompt(points, labels, box, IMAGE_HW, 64, True, CPU)


def test_one_label_rule_for_image_and_video() -> None:
    assert POINT_LABELS == (1, 0, 2, 3, -1) and CLICK_LABELS == (1, 0)
    labels = [1, 0, 2, 3, -1]
    points = [[10.0, 10.0]] * len(labels)
    assert image_prompts(points, labels).labels.tolist() == [labels]
    assert video_prompt(points, labels).labels.tolist() == [labels]
    for call in (
        lambda: image_prompts([[1, 1], [2, 2]], [1, 4]),
        lambda: video_prompt([[1, 1]], [7]),
    ):
        with pytest.raises(InputError) as error:
            call()
        message = str(error.value)
        assert "must be 1 (foreground), 0 (background), 2 (box top-left corner)" in message
        assert "or -1 (padding point); got " in message
    with pytest.raises(InputError, match=r"point_labels must be .*; got 4, 9$"):
        image_prompts([[1, 1], [2, 2], [3, 3]], [9, 1, 4])


def test_check_labels_names_the_allowed_set() -> None:
    check_labels(np.array([[1, 0, 1]]), "labels", CLICK_LABELS)
    with pytest.raises(
        InputError, match=r"^LABEL must be 1 \(foreground\) or 0 \(background\); got 2$"
    ):
        check_labels(2, "LABEL", CLICK_LABELS)
    with pytest.raises(InputError, match=r"got 0.5"):
        check_labels([0.5], "labels")


def test_outside_messages_name_the_point_and_the_image() -> None:
    check_inside(np.array([[0.0, 0.0], [96.0, 80.0]]), IMAGE_HW)  # the edges are inside
    with pytest.raises(InputError, match=r"^point \(97, 10\) is outside the 96x80 image "):
        check_inside(np.array([[5.0, 5.0], [97.0, 10.0]]), IMAGE_HW)
    with pytest.raises(InputError, match=r"^box corner \(3, -1\) is outside the 96x80 frame"):
        check_inside(
            np.array([3.0, -1.0, 5.0, 5.0]), IMAGE_HW, what="box corner", frame_name="frame"
        )
    with pytest.raises(InputError, match=r"\(0.5, 1.5\) is outside the image: .*fractions"):
        check_inside(np.array([[0.5, 1.5]]), IMAGE_HW, in_pixels=False)
    check_inside(np.array([[0.5, 1.0]]), IMAGE_HW, in_pixels=False)


def test_every_prompt_path_uses_the_one_check() -> None:
    cases = [
        (lambda: image_prompts([[97.0, 10.0]], [1]), "point (97, 10) is outside the 96x80 image"),
        (lambda: image_prompts([[9.0, 9.0]], [1], [0, 0, 99, 9]), "box corner (99, 9) is outside"),
        (lambda: video_prompt([[97.0, 10.0]], [1]), "point (97, 10) is outside the 96x80 video"),
        (
            lambda: video_prompt(None, None, [0, 0, 9, 81]),
            "box corner (9, 81) is outside the 96x80",
        ),
        (
            lambda: check_prompt(parse_prompt_spec("point=97:10"), None, *IMAGE_HW),
            "--prompt 'point=97:10': point (97, 10) is outside the 96x80 frame",
        ),
        (
            lambda: check_prompt(parse_prompt_spec("box=1:1:120:9"), None, *IMAGE_HW),
            "box corner (120, 9) is outside the 96x80 frame",
        ),
        (lambda: parse_points(["1,2,3"]), "--point '1,2,3': LABEL must be 1 (foreground) or 0"),
        (lambda: parse_prompt_spec("point=1:2:2"), "label must be 1 (foreground) or 0"),
    ]
    for call, message in cases:
        with pytest.raises(InputError) as error:
            call()
        assert message in str(error.value), str(error.value)


def test_video_prompt_maps_box_first_then_clicks_to_model_pixels() -> None:
    prompt = video_prompt([[48.0, 20.0]], [0], box=[0.0, 40.0, 96.0, 80.0])
    assert prompt.coords.dtype == torch.float32 and prompt.labels.dtype == torch.int32
    assert prompt.coords.tolist() == [[[0.0, 32.0], [64.0, 64.0], [32.0, 16.0]]]
    assert prompt.labels.tolist() == [[2, 3, 0]]
    fractions = point_prompt([[0.5, 0.25]], [1], None, IMAGE_HW, 64, False, CPU)
    assert fractions.coords.tolist() == [[[32.0, 16.0]]]
    same = image_prompts([[48.0, 20.0]], [0], [0.0, 40.0, 96.0, 80.0])
    assert torch.equal(same.coords, prompt.coords) and torch.equal(same.labels, prompt.labels)


def test_video_prompt_shape_errors() -> None:
    with pytest.raises(InputError, match="together"):
        video_prompt([[1.0, 1.0]], None)
    with pytest.raises(InputError, match=r"give points \(with labels\) or a box"):
        video_prompt(None, None)
    with pytest.raises(InputError, match=r"\(x, y\) pairs"):
        video_prompt([1.0, 2.0, 3.0], [1])
    with pytest.raises(InputError, match="2 points but 1 labels"):
        video_prompt([[1.0, 1.0], [2.0, 2.0]], [1])
    with pytest.raises(InputError, match="NaN"):
        video_prompt([[np.nan, 1.0]], [1])
    with pytest.raises(InputError, match="got 3 values"):
        video_prompt(None, None, [1.0, 2.0, 3.0])


def test_image_predictor_decodes_model_input_prompts_like_predict(
    random_checkpoint: Path,
) -> None:
    predictor = SAM2ImagePredictor(build_sam2(checkpoint=random_checkpoint, image_size=64))
    image = np.random.default_rng(0).integers(0, 255, (80, 96, 3), dtype=np.uint8)
    predictor.set_image(image)
    points, labels = np.array([[[20.0, 30.0]], [[60.0, 50.0]]]), np.ones((2, 1))
    prompts = predictor.model_input_prompts(points, labels)
    low_res, iou = predictor.decode_low_res(prompts, multimask_output=True)
    assert low_res.shape == (2, 3, 16, 16) and iou.shape == (2, 3)
    masks, iou_predict, clamped = predictor.predict(points, labels, return_logits=True)
    assert np.allclose(iou_predict, iou.float().numpy())
    assert np.allclose(clamped, low_res.float().clamp(-32, 32).numpy())
    assert masks.shape == (2, 3, 80, 96)
    with pytest.raises(InputError, match="outside the 96x80 image"):
        predictor.model_input_prompts(np.array([[100.0, 1.0]]), np.array([1]))
