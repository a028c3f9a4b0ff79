"""Training losses of SAM 2 (facts of the reference recipe): focal and dice on the masks, an L1
loss on the IoU head, and binary cross-entropy on the object score.

Conventions: `K` objects, `M` masks per decoder call, logits `(K, M, H, W)` at the input size,
targets bool or {0, 1} float of the same shape. Every loss is computed in float32 (inputs under
bf16 autocast are cast up). Per-object values are divided by the number of objects of the batch
and summed, as in the reference, so a batch's loss is a mean over its objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from masklet.errors import ConfigError
from masklet.train.types import DecoderStep, FramePrediction

FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0
DICE_SMOOTHING = 1.0


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms in the total (`[loss]`); defaults are the reference's."""

    mask: float = 20.0
    """Sigmoid focal loss on the masks."""
    dice: float = 1.0
    """Dice loss on the masks."""
    iou: float = 1.0
    """L1 loss of the IoU head against each mask's actual IoU."""
    object_score: float = 1.0
    """Binary cross-entropy of the object-presence logit."""

    def __post_init__(self) -> None:
        for name in ("mask", "dice", "iou", "object_score"):
            if getattr(self, name) < 0:
                raise ConfigError(f"[loss] {name} must be >= 0, got {getattr(self, name)}")


@dataclass
class LossTerms:
    """Unweighted loss terms and their weighted `total` (all 0-dim float32 tensors in the
    autograd graph); terms of several steps, frames or clips add up with `+`."""

    mask: Tensor
    dice: Tensor
    iou: Tensor
    object_score: Tensor
    total: Tensor

    def __add__(self, other: LossTerms) -> LossTerms:
        return LossTerms(
            self.mask + other.mask,
            self.dice + other.dice,
            self.iou + other.iou,
            self.object_score + other.object_score,
            self.total + other.total,
        )

    def detached(self) -> dict[str, float]:
        """The terms as plain floats for logging (one device synchronisation)."""
        names = ("mask", "dice", "iou", "object_score", "total")
        values = torch.stack([getattr(self, name).detach().float() for name in names]).tolist()
        return dict(zip(names, values))


def sigmoid_focal_loss(
    logits: Tensor, targets: Tensor, alpha: float = FOCAL_ALPHA, gamma: float = FOCAL_GAMMA
) -> Tensor:
    """Focal loss (RetinaNet) of `logits (K, M, H, W)` against `targets` (same shape, bool or
    {0, 1}), averaged over the pixels: `(K, M)`. `alpha < 0` turns the class weighting off."""
    logits = logits.float()
    targets = targets.float()
    probability = logits.sigmoid()
    cross_entropy = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    probability_of_truth = probability * targets + (1 - probability) * (1 - targets)
    loss = cross_entropy * (1 - probability_of_truth) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.flatten(2).mean(dim=-1)


def dice_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """`1 - (2 sum(p t) + 1) / (sum(p) + sum(t) + 1)` with `p = sigmoid(logits)`, over the pixels
    of each mask: `logits (K, M, H, W)`, `targets` same shape -> `(K, M)`."""
    probability = logits.float().sigmoid().flatten(2)
    targets = targets.float().flatten(2)
    numerator = 2 * (probability * targets).sum(dim=-1)
    denominator = probability.sum(dim=-1) + targets.sum(dim=-1)
    return 1 - (numerator + DICE_SMOOTHING) / (denominator + DICE_SMOOTHING)


def iou_prediction_loss(logits: Tensor, targets: Tensor, predicted_iou: Tensor) -> Tensor:
    """`|predicted_iou - IoU(logits > 0, targets)|` per mask: `logits (K, M, H, W)`, `targets`
    same shape, `predicted_iou (K, M)` -> `(K, M)`. The actual IoU carries no gradient; an
    empty union counts as IoU 0 (union clamped to 1 pixel, as in the reference)."""
    predicted_masks = logits.flatten(2) > 0
    target_masks = targets.flatten(2) > 0
    intersection = (predicted_masks & target_masks).sum(dim=-1).float()
    union = (predicted_masks | target_masks).sum(dim=-1).float()
    actual_iou = intersection / union.clamp(min=1.0)
    return (predicted_iou.float() - actual_iou).abs()


def object_score_loss(object_logits: Tensor, present: Tensor) -> Tensor:
    """Binary cross-entropy with logits of `object_logits (K, 1)` against `present (K, 1)`
    (bool or {0, 1}): `(K,)`."""
    loss = F.binary_cross_entropy_with_logits(
        object_logits.float(), present.float(), reduction="none"
    )
    return loss.mean(dim=-1)


def step_loss(
    step: DecoderStep, targets: Tensor, weights: LossWeights, num_objects: float
) -> LossTerms:
    """Loss terms of one decoder call for the K objects of a frame.

    Of M > 1 masks only the one with the lowest `weights.mask * focal + weights.dice * dice`
    (per object) is back-propagated for focal and dice; the IoU loss is the mean over all M.
    Mask, dice and IoU losses count only for objects present in `targets`; the object score
    loss always. Each per-object value is divided by `num_objects` and summed over objects.

    Args:
        step: the decoder's outputs, `multimask_logits (K, M, S, S)`.
        targets: `(K, S, S)` bool ground truth of the frame.
        num_objects: objects in the whole batch (> 0).
    """
    if num_objects <= 0:
        raise ValueError(f"num_objects must be > 0, got {num_objects}")
    logits = step.multimask_logits
    if targets.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"targets {tuple(targets.shape)} do not match {tuple(logits.shape)}")
    target_masks = targets[:, None].expand_as(logits)
    focal = sigmoid_focal_loss(logits, target_masks)  # (K, M)
    dice = dice_loss(logits, target_masks)
    iou = iou_prediction_loss(logits, target_masks, step.iou_scores)
    if logits.shape[1] > 1:
        combined = focal * weights.mask + dice * weights.dice
        best = combined.argmin(dim=1, keepdim=True)  # (K, 1)
        focal, dice = focal.gather(1, best), dice.gather(1, best)
        iou = iou.mean(dim=1, keepdim=True)
    present = targets.flatten(1).any(dim=1)  # (K,)
    presence = present.float()
    mask_term = (focal[:, 0] * presence).sum() / num_objects
    dice_term = (dice[:, 0] * presence).sum() / num_objects
    iou_term = (iou[:, 0] * presence).sum() / num_objects
    object_term = object_score_loss(step.object_score_logits, present[:, None]).sum() / num_objects
    return _weighted(mask_term, dice_term, iou_term, object_term, weights)


def clip_loss(
    predictions: Sequence[FramePrediction],
    masks: Tensor,
    weights: LossWeights,
    num_objects: float,
) -> LossTerms:
    """`step_loss` summed over every decoder call of every frame of a clip.

    Args:
        predictions: the clip's frames (any order), each with at least one step.
        masks: `(T, K, S, S)` bool ground truth, indexed by `FramePrediction.frame_idx`.
        num_objects: objects in the whole batch (> 0).
    """
    total: LossTerms | None = None
    for prediction in predictions:
        targets = masks[prediction.frame_idx]
        for step in prediction.steps:
            terms = step_loss(step, targets, weights, num_objects)
            total = terms if total is None else total + terms
    if total is None:
        raise ValueError("clip_loss needs at least one frame with a decoder step")
    return total


def _weighted(
    mask: Tensor, dice: Tensor, iou: Tensor, object_score: Tensor, weights: LossWeights
) -> LossTerms:
    """The terms with their weighted sum; a zero weight leaves its term out of the total (so a
    non-finite unused term cannot spoil it), as the reference does."""
    pairs = ((mask, weights.mask), (dice, weights.dice), (iou, weights.iou))
    total = torch.zeros((), dtype=torch.float32, device=mask.device)
    for term, weight in (*pairs, (object_score, weights.object_score)):
        if weight != 0:
            total = total + term * weight
    return LossTerms(mask, dice, iou, object_score, total)
