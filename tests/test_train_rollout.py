"""ClipRollout: the training path through the model agrees with the inference path, and
corrections add the clicks and decoder calls the recipe asks for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from masklet.io import ArraySource
from masklet.session import MaskPrompt, SessionOptions, VideoSession
from masklet.train.data import AugmentOptions, DavisSource, TrainingData
from masklet.train.prompts import PromptOptions, PromptPlan
from masklet.train.rollout import ClipRollout, processing_order
from masklet.train.types import TrainClip
from test_train_loop import tiny_model

DAVIS = Path(__file__).parent / "data" / "synthetic_davis"
#: Tracked-frame logits of the two paths. The session stores memories in bf16 (as the
#: reference's inference does), the rollout in fp32 (as its training does): observed up to
#: 3.3e-3 on logits of about 0.35; reading the memory of the wrong frames gives over 1e-2.
LOGIT_TOLERANCE = 5e-3
#: A random model barely reads its memory: its memory cross-attention is scaled up so that
#: the memory drives the tracked masks.
MEMORY_GAIN = 30.0


def a_clip(num_frames: int = 6) -> TrainClip:
    data = TrainingData(
        [(DavisSource(DAVIS), 1.0)], 64, num_frames, 2, 0.0, AugmentOptions(enabled=False), seed=0
    )
    return data.sample(0)


def chosen_logits(step_multimask: torch.Tensor, iou_scores: torch.Tensor) -> torch.Tensor:
    """The mask inference would show: the best predicted IoU among the outputs `(K, S, S)`."""
    best = (
        iou_scores.argmax(-1)
        if step_multimask.shape[1] > 1
        else torch.zeros_like(iou_scores[:, 0], dtype=torch.long)
    )
    return step_multimask[torch.arange(step_multimask.shape[0]), best]


def test_eval_mode_rollout_tracks_like_a_video_session() -> None:
    """Same model, same masks on frame 0, no corrections: the rollout's tracked frames are
    the masks `VideoSession` (the parity-tested inference path) gives."""
    model = tiny_model().eval()
    with torch.no_grad():
        for layer in model.memory_attention.layers:
            layer.cross_attn_image.out_proj.weight.mul_(MEMORY_GAIN)
    clip = a_clip()
    assert clip.num_objects == 2
    with torch.inference_mode():
        plan = PromptPlan(use_mask_input=True, init_frames=(0,), correction_frames=())
        rolled = ClipRollout(model, PromptOptions()).run(clip, plan, np.random.default_rng(0))
        frames = [image.permute(1, 2, 0).numpy() for image in clip.images]
        session = VideoSession(model, ArraySource(frames), SessionOptions())
        for k in range(clip.num_objects):
            session.add_mask(0, k + 1, MaskPrompt(clip.masks[0, k][None, None].float()))
        for t in range(1, clip.num_frames):
            tracked = session.step(t).logits[:, 0]
            step = rolled[t].steps[-1]
            assert not rolled[t].conditioning and len(rolled[t].steps) == 1
            ours = chosen_logits(step.multimask_logits, step.iou_scores)
            assert float((tracked - ours).abs().max()) < LOGIT_TOLERANCE, t


def test_corrected_frames_get_every_click_and_become_conditioning() -> None:
    model = tiny_model()
    clip = a_clip(num_frames=4)
    options = PromptOptions(correction_clicks=3)
    click = (torch.tensor([[[20.0, 30.0]], [[40.0, 10.0]]]), torch.ones(2, 1, dtype=torch.int32))
    plan = PromptPlan(False, init_frames=(0,), correction_frames=(0, 2), initial_points={0: click})
    rolled = ClipRollout(model, options).run(clip, plan, np.random.default_rng(1))
    assert [p.frame_idx for p in rolled] == [0, 1, 2, 3]
    assert [len(p.steps) for p in rolled] == [4, 1, 4, 1]
    assert [p.conditioning for p in rolled] == [True, False, True, False]
    assert [p.num_clicks for p in rolled] == [4, 0, 3, 0]
    for prediction in rolled:
        for step in prediction.steps:
            assert step.multimask_logits.shape[0] == 2
            assert step.multimask_logits.shape[-2:] == (64, 64)
            assert step.multimask_logits.requires_grad


def test_initial_frames_are_visited_first() -> None:
    plan = PromptPlan(True, init_frames=(0, 3), correction_frames=())
    assert processing_order(plan, 5) == [0, 3, 1, 2, 4]
