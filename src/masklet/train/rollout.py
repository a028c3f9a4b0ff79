"""`ClipRollout`: one clip through the model the way SAM 2 is trained, simulating a user.

The clip's frames are encoded in one batch; then frames are visited in the reference's
order: the initial conditioning frames first (frame 0 first), then every other frame in time
order. All K objects of the clip go through each step as one batch (they share the frame's
encoding and their memories have the same layout).

- An initial conditioning frame is decoded from its prompt without memory: the ground-truth
  mask used directly as the output (`use_mask_input`), or clicks / a box.
- Any other frame is tracked: memory attention over the clip's memory bank, multi-mask output.
- A frame chosen for correction then gets `correction_clicks` clicks, one at a time, each
  drawn from the current error (see `masklet.train.prompts`) and decoded together with all
  earlier clicks and the previous low-res logits, on the same (memory-conditioned) embedding.
  A corrected frame becomes a conditioning frame.
- The final mask of each frame is encoded into memory (through a sigmoid while training).

Every decoder call is returned as a `DecoderStep` so that the loss can be summed over them.
The memory rule and batching come from the session layer (`FrameEngine`, `OutputStore`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from masklet.model.sam2 import (
    MASK_AS_OUTPUT_BIAS,
    MASK_AS_OUTPUT_SCALE,
    FrameDecoding,
    ImageFeatures,
    SAM2Model,
)
from masklet.session.engine import FrameEngine
from masklet.session.objects import Direction, FrameOutput, OutputStore
from masklet.session.preprocess import normalize_pixels
from masklet.train.prompts import PromptOptions, PromptPlan, correction_click, use_multimask
from masklet.train.types import DecoderStep, FramePrediction, TrainClip

Points = tuple[Tensor, Tensor]  # coords (K, N, 2) float32 input pixels, labels (K, N) int32


def frame_features(features: ImageFeatures, frame_idx: int) -> ImageFeatures:
    """The encoder outputs of one frame of a batch encoded together."""
    index = slice(frame_idx, frame_idx + 1)
    stride4, stride8 = features.high_res_features
    return ImageFeatures(
        features.image_embedding[index], (stride4[index], stride8[index]), features.position
    )


def processing_order(plan: PromptPlan, num_frames: int) -> list[int]:
    """Initial conditioning frames first (in the plan's order), then the rest in time order."""
    rest = [t for t in range(num_frames) if t not in plan.init_frames]
    return [*plan.init_frames, *rest]


class ClipRollout:
    """Runs clips through a model with simulated prompts (see the module docstring).

    Args:
        model: the SAM 2 model (its `training` flag decides how memories are encoded).
        options: the prompt simulator's settings (clicks per corrected frame, ...).
    """

    def __init__(self, model: SAM2Model, options: PromptOptions) -> None:
        self.model = model
        self.options = options
        self.engine = FrameEngine(model, fill_hole_area=0)

    def _memory_rule_for_mode(self) -> None:
        # The reference attends to the pointers of future prompted frames only in training.
        self.engine.memory_rule = dataclasses.replace(
            self.engine.memory_rule, past_pointers_only=not self.model.training
        )

    def run(
        self, clip: TrainClip, plan: PromptPlan, rng: np.random.Generator
    ) -> list[FramePrediction]:
        """Roll the clip out; returns one `FramePrediction` per frame, in time order.

        `plan` holds the prompts of the initial frames and which frames get corrected;
        `rng` draws the correction clicks."""
        self._memory_rule_for_mode()
        images = normalize_pixels(clip.images.to(self.device))
        features = self.model.encode_image(images)
        masks = clip.masks.to(self.device)
        store = OutputStore(radius=clip.num_frames)
        predictions: dict[int, FramePrediction] = {}
        for frame_idx in processing_order(plan, clip.num_frames):
            prediction, output = self._frame(
                frame_features(features, frame_idx), masks[frame_idx], frame_idx, plan, store, rng
            )
            if prediction.conditioning:
                store.conditioning[frame_idx] = output
            else:
                store.store_tracked(frame_idx, output)
            predictions[frame_idx] = prediction
        return [predictions[t] for t in range(clip.num_frames)]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _frame(
        self,
        features: ImageFeatures,
        truth: Tensor,
        frame_idx: int,
        plan: PromptPlan,
        store: OutputStore,
        rng: np.random.Generator,
    ) -> tuple[FramePrediction, FrameOutput]:
        """Decode (and correct) one frame for all objects; `truth (K, S, S)` bool."""
        is_init = frame_idx in plan.init_frames
        points = plan.initial_points.get(frame_idx) if is_init else None
        if is_init and plan.use_mask_input:
            return self._mask_prompted(features, truth, frame_idx)
        if is_init:
            embedding = self.model.embedding_without_memory(features.image_embedding)
            decoded = self._decode(embedding, features, points, None, is_init)
        else:
            memory = self.engine.plan(store, frame_idx, Direction.FORWARD, store.radius)
            embedding = self.engine.conditioned_embedding(features, [memory])
            decoded = self._decode(embedding, features, None, None, is_init)
        steps = [self._step(decoded)]
        corrected = frame_idx in plan.correction_frames
        if corrected:
            points, decoded = self._correct(
                embedding, features, truth, points, decoded, is_init, rng, steps
            )
        num_clicks = 0 if points is None else int(points[1].shape[1])
        prediction = FramePrediction(frame_idx, steps, is_init or corrected, num_clicks)
        binarize = points is not None and not self.model.training
        high_res = self.model.upsample_to_input(decoded.mask_logits)
        return prediction, self._output(features, decoded, high_res, binarize)

    def _mask_prompted(
        self, features: ImageFeatures, truth: Tensor, frame_idx: int
    ) -> tuple[FramePrediction, FrameOutput]:
        """The ground-truth mask used as the output (no decoder gradient, as in the reference);
        its memory is encoded from the mask itself at full resolution."""
        mask = truth[:, None].float()  # (K, 1, S, S)
        decoded = self.model.decode_from_mask(
            features.image_embedding, features.high_res_features, mask
        )
        high_res = mask * MASK_AS_OUTPUT_SCALE + MASK_AS_OUTPUT_BIAS
        step = DecoderStep(high_res, decoded.iou_scores, decoded.object_score_logits)
        prediction = FramePrediction(frame_idx, [step], conditioning=True, num_clicks=0)
        return prediction, self._output(features, decoded, high_res, binarize=False)

    def _correct(
        self,
        embedding: Tensor,
        features: ImageFeatures,
        truth: Tensor,
        points: Points | None,
        decoded: FrameDecoding,
        is_init: bool,
        rng: np.random.Generator,
        steps: list[DecoderStep],
    ) -> tuple[Points, FrameDecoding]:
        """Add correction clicks one at a time, each decoded with all earlier clicks and the
        previous low-res logits; appends each decoder call to `steps`."""
        for _ in range(self.options.correction_clicks):
            shown = self.model.upsample_to_input(decoded.mask_logits)[:, 0] > 0  # (K, S, S)
            coords, labels = correction_click(
                truth, shown, rng, self.options, training=self.model.training
            )
            points = _append_points(points, coords.to(self.device), labels.to(self.device))
            decoded = self._decode(embedding, features, points, decoded.mask_logits, is_init)
            steps.append(self._step(decoded))
        assert points is not None
        return points, decoded

    def _decode(
        self,
        embedding: Tensor,
        features: ImageFeatures,
        points: Points | None,
        previous_logits: Tensor | None,
        is_init: bool,
    ) -> FrameDecoding:
        num_clicks = 0 if points is None else int(points[1].shape[1])
        coords, labels = (None, None) if points is None else points
        return self.model.decode_frame(
            embedding,
            features.high_res_features,
            coords,
            labels,
            previous_logits,
            use_multimask(num_clicks, is_init),
        )

    def _step(self, decoded: FrameDecoding) -> DecoderStep:
        return DecoderStep(
            self.model.upsample_to_input(decoded.multimask_logits),
            decoded.iou_scores,
            decoded.object_score_logits,
        )

    def _output(
        self, features: ImageFeatures, decoded: FrameDecoding, high_res: Tensor, binarize: bool
    ) -> FrameOutput:
        """The frame's entry in the memory bank, from its final mask `high_res (K, 1, S, S)`
        (memories kept in float32 and in the autograd graph)."""
        memory, _ = self.model.encode_memory(
            features.image_embedding, high_res, decoded.object_score_logits, binarize
        )
        return FrameOutput(
            decoded.mask_logits, decoded.object_score_logits, decoded.object_pointer, memory
        )


def _append_points(points: Points | None, coords: Tensor, labels: Tensor) -> Points:
    if points is None:
        return coords, labels
    return torch.cat([points[0], coords], dim=1), torch.cat([points[1], labels], dim=1)
