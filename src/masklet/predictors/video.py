"""`SAM2VideoPredictor`: the reference's video API as a thin loop over `VideoSession`.

Same method names, arguments and return values as the reference's per-object predictor, so
user code ports by changing the import. The `inference_state` it hands out is a
`masklet.session.VideoSession`, whose own methods can be called directly too. Returned logits
are `(num_objects, 1, H, W)` float32 at the video's resolution, objects in the order they were
first prompted. Methods run under `torch.inference_mode`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from masklet.errors import InputError
from masklet.io.sources import open_frame_source
from masklet.model.sam2 import SAM2Model
from masklet.predictors.pretrained import load_pretrained
from masklet.predictors.prompts import check_box_first, mask_prompt, point_prompt
from masklet.runtime import keep_freed_memory_for
from masklet.session.objects import MaskPrompt
from masklet.session.video_session import SessionOptions, StepResult, VideoSession

PromptResult = tuple[int, list[int], Tensor]


class SAM2VideoPredictor:
    """Prompt objects on any frame and track them through a video.

    Args:
        model: the SAM 2 model (eval mode).
        fill_hole_area: fill background holes up to this many low-res pixels in outputs
            (the official video setting is 8; works on CPU too).
        non_overlap_masks: at each pixel keep only the highest-scoring object in outputs.
        feature_cache_size: image encodings kept (frames), least recently used evicted.
        binarize_mask_from_pts_for_mem_enc: prompted frames enter memory as their mask
            thresholded at 0 (what the user sees; the official video setting) instead of
            through a sigmoid. The reference's name; off in train mode, as there.
    """

    def __init__(
        self,
        model: SAM2Model,
        fill_hole_area: int = 8,
        non_overlap_masks: bool = False,
        feature_cache_size: int = 2,
        binarize_mask_from_pts_for_mem_enc: bool = True,
    ) -> None:
        self.model = model
        keep_freed_memory_for(model)
        self.options = SessionOptions(
            fill_hole_area,
            non_overlap_masks,
            feature_cache_size,
            binarize_mask_from_pts_for_mem_enc,
        )

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs: Any) -> SAM2VideoPredictor:
        """The predictor on the official checkpoint `model_id` names (e.g.
        `"facebook/sam2.1-hiera-tiny"`), from masklet's weights cache (downloaded on first
        use). `kwargs` are `masklet.build_sam2_video_predictor`'s keywords."""
        return load_pretrained(cls, model_id, kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def image_size(self) -> int:
        return self.model.image_size

    # The reference's settings, as attributes: changing one applies to sessions opened after.
    @property
    def fill_hole_area(self) -> int:
        return self.options.fill_hole_area

    @fill_hole_area.setter
    def fill_hole_area(self, value: int) -> None:
        self.options = replace(self.options, fill_hole_area=value)

    @property
    def non_overlap_masks(self) -> bool:
        return self.options.non_overlap_masks

    @non_overlap_masks.setter
    def non_overlap_masks(self, value: bool) -> None:
        self.options = replace(self.options, non_overlap_masks=value)

    @property
    def feature_cache_size(self) -> int:
        return self.options.feature_cache_size

    @feature_cache_size.setter
    def feature_cache_size(self, value: int) -> None:
        self.options = replace(self.options, feature_cache_size=value)

    @property
    def binarize_mask_from_pts_for_mem_enc(self) -> bool:
        return self.options.binarize_prompted_masks

    @binarize_mask_from_pts_for_mem_enc.setter
    def binarize_mask_from_pts_for_mem_enc(self, value: bool) -> None:
        self.options = replace(self.options, binarize_prompted_masks=value)

    # ------------------------------------------------------------------ session
    @torch.inference_mode()
    def init_state(
        self,
        video_path: Any,
        offload_video_to_cpu: bool = False,
        offload_state_to_cpu: bool = False,
        async_loading_frames: bool = False,
    ) -> VideoSession:
        """Open a video (file, folder of frames, list of HxWx3 uint8 arrays, iterator) lazily.

        Frames are decoded on demand; the `offload_*`/`async_*` flags of the reference are
        accepted for compatibility and have nothing to do here.
        """
        del offload_video_to_cpu, offload_state_to_cpu, async_loading_frames
        source = open_frame_source(video_path)
        if source.num_frames == 0:
            raise InputError(f"the video has no frames: {video_path!r}")
        session = VideoSession(self.model, source, self.options)
        session.image_features(0)
        return session

    @torch.inference_mode()
    def reset_state(self, inference_state: VideoSession) -> None:
        """Forget all objects, prompts and results (the video stays open)."""
        inference_state.reset()

    # ------------------------------------------------------------------ prompts
    @torch.inference_mode()
    def add_new_points_or_box(
        self,
        inference_state: VideoSession,
        frame_idx: int,
        obj_id: int,
        points: Any = None,
        labels: Any = None,
        clear_old_points: bool = True,
        normalize_coords: bool = True,
        box: Any = None,
    ) -> PromptResult:
        """Add clicks and/or a box for `obj_id` on `frame_idx`; returns the frame's masks.
        Coordinates are xy pixels of the video frame (fractions with `normalize_coords=False`)."""
        session = inference_state
        session.check_frame(frame_idx)
        check_box_first(box, clear_old_points)
        prompt = point_prompt(
            points, labels, box, session.video_hw, self.image_size, normalize_coords, self.device
        )
        return _as_tuple(session.add_points(frame_idx, obj_id, prompt, clear_old_points))

    def add_new_points(self, *args: Any, **kwargs: Any) -> PromptResult:
        """Alias of `add_new_points_or_box` (the reference's older name)."""
        return self.add_new_points_or_box(*args, **kwargs)

    @torch.inference_mode()
    def add_new_mask(
        self, inference_state: VideoSession, frame_idx: int, obj_id: int, mask: Any
    ) -> PromptResult:
        """Use a binary (H, W) mask as the prompt of `obj_id` on `frame_idx`."""
        session = inference_state
        session.check_frame(frame_idx)
        prompt = MaskPrompt(mask_prompt(mask, self.image_size, self.device))
        return _as_tuple(session.add_mask(frame_idx, obj_id, prompt))

    # ------------------------------------------------------------------ propagation
    @torch.inference_mode()
    def propagate_in_video(
        self,
        inference_state: VideoSession,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
    ) -> Iterator[PromptResult]:
        """Track every object frame by frame; yields `(frame_idx, obj_ids, logits)` as soon as
        each frame is done. Prompted frames return their prompt result."""
        session = inference_state
        session.commit_prompts()
        order = _processing_order(session, start_frame_idx, max_frame_num_to_track, reverse)
        for frame_idx in order:
            yield _as_tuple(session.step(frame_idx, reverse))

    # ------------------------------------------------------------------ editing
    @torch.inference_mode()
    def clear_all_prompts_in_frame(
        self,
        inference_state: VideoSession,
        frame_idx: int,
        obj_id: int,
        need_output: bool = True,
    ) -> PromptResult | None:
        """Remove the clicks/mask of `obj_id` on `frame_idx` (its result there becomes an
        ordinary tracked result)."""
        inference_state.clear_frame(frame_idx, obj_id)
        return _as_tuple(inference_state.masks(frame_idx)) if need_output else None

    @torch.inference_mode()
    def remove_object(
        self,
        inference_state: VideoSession,
        obj_id: int,
        strict: bool = False,
        need_output: bool = True,
    ) -> tuple[list[int], list[tuple[int, Tensor]]]:
        """Drop an object; returns the remaining ids and the updated masks of the frames it
        had prompts on."""
        session = inference_state
        if obj_id not in session.obj_ids and not strict:
            return session.obj_ids, []
        frames = session.remove_object(obj_id)
        if not need_output:
            return session.obj_ids, []
        return session.obj_ids, [(f, session.masks(f).logits) for f in frames]


def _as_tuple(result: StepResult) -> PromptResult:
    return result.frame_idx, result.obj_ids, result.logits


def _processing_order(
    session: VideoSession, start: int | None, limit: int | None, reverse: bool
) -> range:
    """Frames `propagate_in_video` visits: from `start` (default: the first prompted frame)
    for up to `limit` more frames, forward or in reverse."""
    num_frames = session.num_frames
    if num_frames is None:
        raise InputError(
            "propagate_in_video needs a video of known length; use the "
            "streaming tracker for live sources"
        )
    if start is None:
        start = session.first_prompted_frame()
    session.check_frame(start)
    limit = num_frames if limit is None else limit
    if reverse:
        end = max(start - limit, 0)
        return range(start, end - 1, -1) if start > 0 else range(0)
    return range(start, min(start + limit, num_frames - 1) + 1)
