"""Losses against closed-form values on tiny tensors, min-loss mask selection and its gradients,
absent objects, normalisation, and sums over steps and frames.

Logits 0, ln 3 and -ln 3 give probabilities 1/2, 3/4 and 1/4, so every expected value below is
a short expression in ln 2 and ln(4/3)."""

from __future__ import annotations

import math

import pytest
import torch

from masklet.errors import ConfigError
from masklet.train.losses import (
    LossTerms,
    LossWeights,
    clip_loss,
    dice_loss,
    iou_prediction_loss,
    object_score_loss,
    sigmoid_focal_loss,
    step_loss,
)
from masklet.train.types import DecoderStep, FramePrediction

LN2, LN3, LN4_3 = math.log(2), math.log(3), math.log(4 / 3)


def close(actual: torch.Tensor, expected: list[float] | float) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected), rtol=1e-5, atol=1e-6)


def test_sigmoid_focal_loss() -> None:
    logits = torch.tensor([[0.0, 0.0, LN3], [-LN3, -LN3, -LN3]]).reshape(1, 2, 1, 3)
    targets = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]).reshape(1, 2, 1, 3)
    # alpha_t * (1 - p_t)^2 * -ln(p_t) per pixel, averaged over the 3 pixels.
    first = (0.25 * 0.25 * LN2 + 0.75 * 0.25 * LN2 + 0.25 / 16 * LN4_3) / 3
    second = (2 * 0.25 * 9 / 16 * math.log(4) + 0.75 / 16 * LN4_3) / 3
    close(sigmoid_focal_loss(logits, targets), [[first, second]])
    close(sigmoid_focal_loss(logits, targets.bool()), [[first, second]])
    # alpha < 0 and gamma 0: plain binary cross-entropy.
    plain = sigmoid_focal_loss(logits, targets, alpha=-1.0, gamma=0.0)
    close(plain, [[(2 * LN2 + LN4_3) / 3, (2 * math.log(4) + LN4_3) / 3]])


def test_dice_loss() -> None:
    logits = torch.tensor([[0.0] * 4, [LN3, LN3, -LN3, -LN3], [-100.0] * 4]).reshape(1, 3, 2, 2)
    targets = torch.tensor([[1.0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]).reshape(1, 3, 2, 2)
    # 1 - (2 * sum(p t) + 1) / (sum(p) + sum(t) + 1): (2 + 1) / 5, (3 + 1) / 5, 1 / 1.
    close(dice_loss(logits, targets), [[0.4, 0.2, 0.0]])


def test_iou_prediction_loss() -> None:
    logits = torch.tensor([[1.0, -1, 1, -1], [-1, -1, -1, -1], [0, 0, 0, 0]]).reshape(1, 3, 1, 4)
    targets = torch.tensor([[1.0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]).reshape(1, 3, 1, 4)
    predicted = torch.tensor([[0.5, 0.2, 0.3]], requires_grad=True)
    # Actual IoUs 1/3, 0 (empty union), 0 (logit 0 is not foreground).
    loss = iou_prediction_loss(logits, targets, predicted)
    close(loss, [[1 / 6, 0.2, 0.3]])
    loss.sum().backward()
    assert predicted.grad is not None
    close(predicted.grad, [[1.0, 1.0, 1.0]])


def test_object_score_loss() -> None:
    logits = torch.tensor([[0.0], [LN3], [-LN3]])
    present = torch.tensor([[True], [False], [False]])
    close(object_score_loss(logits, present), [LN2, math.log(4), LN4_3])


def three_mask_step() -> tuple[DecoderStep, torch.Tensor]:
    """K = 2 objects, M = 3 masks on a 2 x 2 frame. Object 0's truth is the top row and its
    mask 1 matches it (p = 3/4 on it, 1/4 off); object 1's truth is the bottom row, matched by
    mask 2. Mask 0 is logit 0 everywhere."""
    top = torch.tensor([[LN3, LN3], [-LN3, -LN3]])
    logits = torch.stack([torch.zeros(2, 2), top, -top])[None].repeat(2, 1, 1, 1)
    targets = torch.tensor([[[1, 1], [0, 0]], [[0, 0], [1, 1]]], dtype=torch.bool)
    iou_scores = torch.tensor([[0.5, 0.5, 0.5], [0.1, 0.9, 0.6]])
    object_logits = torch.tensor([[0.0], [LN3]])
    step = DecoderStep(
        logits.requires_grad_(), iou_scores.requires_grad_(), object_logits.requires_grad_()
    )
    return step, targets


def test_step_loss_selects_the_best_mask() -> None:
    step, targets = three_mask_step()
    terms = step_loss(step, targets, LossWeights(), num_objects=2.0)
    # Selected masks: focal (2 * 0.25 + 2 * 0.75) / 16 * ln(4/3) / 4 = ln(4/3) / 32, dice 0.2.
    close(terms.mask, LN4_3 / 32)
    close(terms.dice, 0.2)
    # Actual IoUs: object 0 (0, 1, 0), object 1 (0, 0, 1); L1 means 0.5 and 1.4 / 3.
    close(terms.iou, (0.5 + 1.4 / 3) / 2)
    close(terms.object_score, (LN2 + LN4_3) / 2)
    expected_total = 20 * LN4_3 / 32 + 0.2 + (0.5 + 1.4 / 3) / 2 + (LN2 + LN4_3) / 2
    close(terms.total, expected_total)
    assert all(value.dim() == 0 for value in (terms.mask, terms.dice, terms.iou, terms.total))


def test_gradients_reach_only_the_selected_masks() -> None:
    step, targets = three_mask_step()
    terms = step_loss(step, targets, LossWeights(), num_objects=2.0)
    terms.total.backward()
    gradient = step.multimask_logits.grad
    assert gradient is not None
    per_mask = gradient.abs().flatten(2).sum(-1)  # (K, M)
    assert per_mask[0, 1] > 0 and per_mask[1, 2] > 0
    assert per_mask[0, 0] == 0 and per_mask[0, 2] == 0
    assert per_mask[1, 0] == 0 and per_mask[1, 1] == 0
    # The IoU loss reaches every mask's score: d|s - iou| / ds / (M * num_objects).
    assert step.iou_scores.grad is not None
    close(step.iou_scores.grad, [[1 / 6, -1 / 6, 1 / 6], [1 / 6, 1 / 6, -1 / 6]])


def test_selection_uses_the_weights() -> None:
    """Truth: the top-left pixel of 2 x 2. Mask A (p = 1/4 everywhere) has the lower focal loss,
    mask B (p = 1 on the object, 1/2 elsewhere) the lower dice loss."""
    soft = torch.full((2, 2), -LN3)
    sure = torch.tensor([[100.0, 0.0], [0.0, 0.0]])
    step = DecoderStep(torch.stack([soft, sure])[None], torch.ones(1, 2), torch.zeros(1, 1))
    targets = torch.tensor([[[1, 0], [0, 0]]], dtype=torch.bool)
    focal_soft = (0.25 * 9 / 16 * math.log(4) + 3 * 0.75 / 16 * LN4_3) / 4  # ~0.059
    focal_sure = 3 * 0.75 * 0.25 * LN2 / 4  # ~0.097
    dice_soft, dice_sure = 1 - 1.5 / 3, 1 - 3 / 4.5
    for weights, focal, dice in (
        (LossWeights(), focal_soft, dice_soft),  # 20 * 0.059 + 0.5 < 20 * 0.097 + 0.33
        (LossWeights(dice=0.0), focal_soft, dice_soft),
        (LossWeights(mask=0.0), focal_sure, dice_sure),
    ):
        terms = step_loss(step, targets, weights, num_objects=1.0)
        close(terms.mask, focal)
        close(terms.dice, dice)


def test_absent_objects_get_no_mask_losses() -> None:
    top = torch.tensor([[LN3, LN3], [-LN3, -LN3]])
    logits = torch.stack([top, torch.randn(2, 2)])[:, None].requires_grad_()  # (2, 1, 2, 2)
    targets = torch.tensor([[[1, 1], [0, 0]], [[0, 0], [0, 0]]], dtype=torch.bool)
    step = DecoderStep(logits, torch.tensor([[0.5], [0.7]]), torch.tensor([[0.0], [LN3]]))
    terms = step_loss(step, targets, LossWeights(), num_objects=2.0)
    close(terms.mask, LN4_3 / 32 / 2)
    close(terms.dice, 0.2 / 2)
    close(terms.iou, 0.5 / 2)  # predicted 0.5, actual 1
    close(terms.object_score, (LN2 + math.log(4)) / 2)  # object 1 absent: BCE(ln 3, 0) = ln 4
    terms.total.backward()
    assert logits.grad is not None
    assert logits.grad[1].abs().sum() == 0 and logits.grad[0].abs().sum() > 0


def test_normalisation_by_the_number_of_objects() -> None:
    step, targets = three_mask_step()
    two = step_loss(step, targets, LossWeights(), num_objects=2.0).detached()
    four = step_loss(step, targets, LossWeights(), num_objects=4.0).detached()
    for name in two:
        assert four[name] == pytest.approx(two[name] / 2)
    with pytest.raises(ValueError, match="num_objects"):
        step_loss(step, targets, LossWeights(), num_objects=0.0)


def test_clip_loss_sums_over_steps_and_frames() -> None:
    step, targets = three_mask_step()
    single = step_loss(step, targets, LossWeights(), num_objects=2.0).detached()
    other_step = DecoderStep(
        step.multimask_logits[:, :1], step.iou_scores[:, :1], step.object_score_logits
    )
    # Frame 1 holds the truth; frame 0 is all background (mask losses zero there).
    masks = torch.stack([torch.zeros_like(targets), targets])
    predictions = [
        FramePrediction(1, [step, step], conditioning=True, num_clicks=1),
        FramePrediction(0, [other_step], conditioning=False, num_clicks=0),
    ]
    terms = clip_loss(predictions, masks, LossWeights(), num_objects=2.0)
    background = step_loss(other_step, masks[0], LossWeights(), num_objects=2.0).detached()
    assert background["mask"] == 0 and background["dice"] == 0 and background["iou"] == 0
    # Object score on frame 0: both absent, BCE(0, 0) = ln 2 and BCE(ln 3, 0) = ln 4.
    assert background["object_score"] == pytest.approx((LN2 + math.log(4)) / 2)
    logged = terms.detached()
    for name in logged:
        assert logged[name] == pytest.approx(2 * single[name] + background[name], rel=1e-5)
    with pytest.raises(ValueError):
        clip_loss([], masks, LossWeights(), num_objects=2.0)


def test_loss_terms_add_and_detach() -> None:
    first = LossTerms(*(torch.tensor(float(i)) for i in range(5)))
    second = LossTerms(*(torch.tensor(10.0 * i) for i in range(5)))
    assert (first + second).detached() == {
        "mask": 0.0,
        "dice": 11.0,
        "iou": 22.0,
        "object_score": 33.0,
        "total": 44.0,
    }


def test_bfloat16_inputs_give_float32_losses() -> None:
    step, targets = three_mask_step()
    half = DecoderStep(
        step.multimask_logits.detach().bfloat16(),
        step.iou_scores.detach().bfloat16(),
        step.object_score_logits.detach().bfloat16(),
    )
    terms = step_loss(half, targets, LossWeights(), num_objects=2.0)
    assert terms.total.dtype == torch.float32
    reference = step_loss(step, targets, LossWeights(), num_objects=2.0)
    torch.testing.assert_close(terms.total, reference.total.detach(), rtol=2e-2, atol=2e-2)


def test_weights_validation_names_the_field() -> None:
    with pytest.raises(ConfigError, match="dice"):
        LossWeights(dice=-1.0)
