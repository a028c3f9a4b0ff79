"""`TrainingStep`: the loss of a batch of clips, as one module call (so that DDP can wrap it).

For each clip: plan its prompts (`plan_prompts`), roll it out through the model with simulated
corrections (`ClipRollout`), and sum the losses over frames and decoder calls (`clip_loss`).
Losses are divided by `num_objects`, the number of objects per process in the whole step (all
micro-batches, averaged over processes), so that averaging gradients over processes and
summing over micro-batches gives the gradient of the whole global batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from masklet.model.sam2 import SAM2Model
from masklet.train.losses import LossTerms, LossWeights, clip_loss
from masklet.train.prompts import PromptOptions, plan_prompts
from masklet.train.rollout import ClipRollout
from masklet.train.types import TrainClip

#: Keys of the dict a `TrainingStep` returns (0-dim tensors; "total" is back-propagated).
LOSS_KEYS = ("total", "mask", "dice", "iou", "object_score")


class TrainingStep(nn.Module):
    """Wraps the model; `forward(clips, rngs, num_objects)` -> `{key: 0-dim loss}` (LOSS_KEYS).

    Args:
        model: the SAM 2 model being trained (registered as a submodule: DDP syncs its
            gradients).
        prompts: the prompt simulator's settings.
        weights: the loss weights.
    """

    def __init__(self, model: SAM2Model, prompts: PromptOptions, weights: LossWeights) -> None:
        super().__init__()
        self.model = model
        self.prompts = prompts
        self.weights = weights
        self.rollout = ClipRollout(model, prompts)

    def forward(
        self,
        clips: Sequence[TrainClip],
        rngs: Sequence[np.random.Generator],
        num_objects: float,
    ) -> dict[str, Tensor]:
        """`rngs`: one generator per clip (its prompts and clicks); `num_objects` >= 1."""
        total: LossTerms | None = None
        for clip, rng in zip(clips, rngs, strict=True):
            terms = self.clip_terms(clip, rng, num_objects)
            total = terms if total is None else total + terms
        assert total is not None, "a training step needs at least one clip"
        return {
            "total": total.total,
            "mask": total.mask,
            "dice": total.dice,
            "iou": total.iou,
            "object_score": total.object_score,
        }

    def clip_terms(
        self, clip: TrainClip, rng: np.random.Generator, num_objects: float
    ) -> LossTerms:
        """Loss terms of one clip (prompts planned and clicks drawn with `rng`).

        torch's generator (dropout in memory attention) is reseeded from `rng` for each clip:
        what a clip draws depends on the clip alone, not on which process or micro-batch
        runs it, nor on what ran before a resume."""
        torch.manual_seed(int(rng.integers(2**62)))
        plan = plan_prompts(clip.masks, rng, self.prompts)
        predictions = self.rollout.run(clip, plan, rng)
        return clip_loss(predictions, clip.masks.to(self.rollout.device), self.weights, num_objects)
