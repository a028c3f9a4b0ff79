"""`SAM2VideoPredictor`: the reference's video API over masklet's typed session state.

Same method names, arguments and return values as the reference's per-object predictor, so
user code ports by changing the import. Returned logits are `(num_objects, 1, H, W)` float32 at
the video's resolution, objects in the order they were first prompted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from masklet.errors import InputError
from masklet.io.sources import open_frame_source
from masklet.model.sam2 import NO_OBJECT_SCORE, ImageFeatures, SAM2Model
from masklet.postprocess import non_overlapping
from masklet.predictors.preprocess import preprocess_image
from masklet.predictors.tracking import MASK_PROMPT_LOGIT_LIMIT, FrameTracker
from masklet.predictors.video_prompts import mask_prompt, point_prompt
from masklet.runtime import keep_freed_memory_for
from masklet.session.objects import ObjectRegistry, ObjectTrack, PointPrompt
from masklet.session.state import FeatureCache, VideoState

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
        self.tracker = FrameTracker(model, fill_hole_area)
        self.non_overlap_masks = non_overlap_masks
        self.feature_cache_size = feature_cache_size
        self.binarize_mask_from_pts_for_mem_enc = binarize_mask_from_pts_for_mem_enc

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs: Any) -> SAM2VideoPredictor:
        """The predictor on the official checkpoint `model_id` names (e.g.
        `"facebook/sam2.1-hiera-tiny"`), from masklet's weights cache (downloaded on first
        use). `kwargs` are `masklet.build_sam2_video_predictor`'s keywords."""
        # Resolving and downloading checkpoints is `masklet.build`'s job, a layer above the
        # predictors (DESIGN §13): imported here, when called, not by this module.
        from masklet.build import build_sam2_video_predictor_hf

        return build_sam2_video_predictor_hf(model_id, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def _binarize_prompted_masks(self) -> bool:
        return self.binarize_mask_from_pts_for_mem_enc and not self.model.training

    @property
    def image_size(self) -> int:
        return self.model.image_size

    # ------------------------------------------------------------------ session
    @torch.inference_mode()
    def init_state(
        self,
        video_path: Any,
        offload_video_to_cpu: bool = False,
        offload_state_to_cpu: bool = False,
        async_loading_frames: bool = False,
    ) -> VideoState:
        """Open a video (file, folder of frames, list of HxWx3 uint8 arrays, iterator) lazily.

        Frames are decoded on demand; the `offload_*`/`async_*` flags of the reference are
        accepted for compatibility and have nothing to do here.
        """
        del offload_video_to_cpu, offload_state_to_cpu, async_loading_frames
        source = open_frame_source(video_path)
        num_frames = source.num_frames
        if num_frames == 0:
            raise InputError(f"the video has no frames: {video_path!r}")
        first = source.get(0)
        radius = max(self.model.config.max_object_pointers, self.model.config.num_maskmem)
        state = VideoState(
            source,
            num_frames,
            int(first.shape[0]),
            int(first.shape[1]),
            ObjectRegistry(radius),
            FeatureCache(self.feature_cache_size),
        )
        self.image_features(state, 0)
        return state

    def image_features(self, state: VideoState, frame_idx: int) -> ImageFeatures:
        """Encoding of one frame (cached)."""
        features = state.features.get(frame_idx)
        if features is None:
            frame = state.source.get(frame_idx)
            image = preprocess_image(frame, self.image_size, self.device)[None]
            features = self.model.encode_image(image)
            state.features.put(frame_idx, features)
        return features

    def _check_frame(self, state: VideoState, frame_idx: int) -> None:
        if not isinstance(frame_idx, int) or isinstance(frame_idx, bool):
            raise InputError(f"frame_idx must be an int, got {frame_idx!r}")
        if frame_idx < 0 or (state.num_frames is not None and frame_idx >= state.num_frames):
            raise InputError(
                f"frame_idx {frame_idx} is out of range: the video has "
                f"{state.num_frames} frames (0..{(state.num_frames or 1) - 1})"
            )

    def _existing_object(self, state: VideoState, obj_id: int) -> ObjectTrack:
        track = state.objects.get(obj_id)
        if track is None:
            raise InputError(f"unknown object id {obj_id}; known ids: {state.objects.ids}")
        return track

    # ------------------------------------------------------------------ prompts
    @torch.inference_mode()
    def add_new_points_or_box(
        self,
        inference_state: VideoState,
        frame_idx: int,
        obj_id: int,
        points: Any = None,
        labels: Any = None,
        clear_old_points: bool = True,
        normalize_coords: bool = True,
        box: Any = None,
    ) -> PromptResult:
        """Add clicks and/or a box for `obj_id` on `frame_idx`; returns the frame's masks."""
        state = inference_state
        self._check_frame(state, frame_idx)
        if box is not None and not clear_old_points:
            raise InputError(
                "a box must come before any click: use clear_old_points=True with a box"
            )
        prompt = point_prompt(
            points,
            labels,
            box,
            (state.video_height, state.video_width),
            self.image_size,
            normalize_coords,
            self.device,
        )
        track = state.objects.get_or_create(obj_id)
        if not clear_old_points and frame_idx in track.point_prompts:
            old = track.point_prompts[frame_idx]
            prompt = PointPrompt(
                torch.cat([old.coords, prompt.coords], 1), torch.cat([old.labels, prompt.labels], 1)
            )
        track.point_prompts[frame_idx] = prompt
        track.mask_prompts.pop(frame_idx, None)
        return self._decode_prompt(state, track, frame_idx, prompt, None)

    def add_new_points(self, *args: Any, **kwargs: Any) -> PromptResult:
        """Alias of `add_new_points_or_box` (the reference's older name)."""
        return self.add_new_points_or_box(*args, **kwargs)

    @torch.inference_mode()
    def add_new_mask(
        self, inference_state: VideoState, frame_idx: int, obj_id: int, mask: Any
    ) -> PromptResult:
        """Use a binary (H, W) mask as the prompt of `obj_id` on `frame_idx`."""
        state = inference_state
        self._check_frame(state, frame_idx)
        prompt = mask_prompt(mask, self.image_size, self.device)
        track = state.objects.get_or_create(obj_id)
        track.mask_prompts[frame_idx] = prompt
        track.point_prompts.pop(frame_idx, None)
        return self._decode_prompt(state, track, frame_idx, None, prompt)

    def _decode_prompt(
        self,
        state: VideoState,
        track: ObjectTrack,
        frame_idx: int,
        points: PointPrompt | None,
        mask: Tensor | None,
    ) -> PromptResult:
        is_new = frame_idx not in track.frames_tracked
        reverse = False if is_new else track.frames_tracked[frame_idx]
        previous_logits = None
        if points is not None:
            previous = track.latest_output(frame_idx, conditioning=is_new)
            if previous is not None:
                previous_logits = previous.low_res_logits.clamp(
                    -MASK_PROMPT_LOGIT_LIMIT, MASK_PROMPT_LOGIT_LIMIT
                )
        output = self.tracker.decode_prompted(
            self.image_features(state, frame_idx),
            track.store,
            frame_idx,
            is_new,
            points,
            mask,
            reverse,
            previous_logits,
            state.num_frames,
        )
        track.pending(is_new)[frame_idx] = output
        return frame_idx, state.obj_ids, self._frame_masks(state, frame_idx, is_new)

    def _frame_masks(self, state: VideoState, frame_idx: int, conditioning: bool) -> Tensor:
        """Video-resolution logits of every object on a frame (NO_OBJECT_SCORE where none)."""
        size = (state.video_height, state.video_width)
        masks = torch.full((len(state.objects), 1, *size), NO_OBJECT_SCORE, device=self.device)
        for index, track in enumerate(state.objects):
            output = track.latest_output(frame_idx, conditioning)
            if output is not None:
                masks[index : index + 1] = self._to_video_resolution(state, output.low_res_logits)
        return non_overlapping(masks) if self.non_overlap_masks else masks

    @staticmethod
    def _to_video_resolution(state: VideoState, logits: Tensor) -> Tensor:
        return F.interpolate(
            logits,
            size=(state.video_height, state.video_width),
            mode="bilinear",
            align_corners=False,
        )

    # ------------------------------------------------------------------ propagation
    @torch.inference_mode()
    def commit_prompts(self, state: VideoState) -> None:
        """Encode memories of new prompt results and move them into the objects' stores."""
        if len(state.objects) == 0:
            raise InputError("no object has a prompt yet: add points, a box or a mask first")
        for track in state.objects:
            for conditioning in (False, True):
                pending = track.pending(conditioning)
                for frame_idx, output in pending.items():
                    if output.memory_features is None:
                        features = self.image_features(state, frame_idx)
                        output.memory_features = self.tracker.encode_memory(
                            features,
                            output.low_res_logits,
                            output.object_score_logits,
                            binarize=self._binarize_prompted_masks,
                        )
                    if conditioning:
                        track.store.conditioning[frame_idx] = output
                    else:
                        track.store.store_tracked(frame_idx, output)
                pending.clear()
            if not track.store.conditioning:
                raise InputError(f"object {track.obj_id} has no prompt on any frame; add one first")
            for frame_idx in track.store.conditioning:
                track.store.tracked.pop(frame_idx, None)

    def empty_masks(self, state: VideoState) -> Tensor:
        """`(0, 1, H, W)` logits for a frame without objects."""
        return torch.empty((0, 1, state.video_height, state.video_width), device=self.device)

    def forget_before(self, state: VideoState, frame_idx: int) -> None:
        """Drop bookkeeping of frames too old to matter for tracking at `frame_idx` (streams)."""
        horizon = frame_idx - max(
            self.model.config.max_object_pointers, self.model.config.num_maskmem
        )
        for track in state.objects:
            for old in [f for f in track.frames_tracked if f < horizon]:
                del track.frames_tracked[old]

    def _processing_order(
        self, state: VideoState, start: int | None, limit: int | None, reverse: bool
    ) -> range:
        num_frames = state.num_frames
        if num_frames is None:
            raise InputError(
                "propagate_in_video needs a video of known length; use the "
                "streaming tracker for live sources"
            )
        if start is None:
            start = min(f for track in state.objects for f in track.store.conditioning)
        self._check_frame(state, start)
        limit = num_frames if limit is None else limit
        if reverse:
            end = max(start - limit, 0)
            return range(start, end - 1, -1) if start > 0 else range(0)
        return range(start, min(start + limit, num_frames - 1) + 1)

    @torch.inference_mode()
    def propagate_in_video(
        self,
        inference_state: VideoState,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
    ) -> Iterator[PromptResult]:
        """Track every object frame by frame; yields `(frame_idx, obj_ids, logits)` as soon as
        each frame is done. Prompted frames return their prompt result."""
        state = inference_state
        self.commit_prompts(state)
        order = self._processing_order(state, start_frame_idx, max_frame_num_to_track, reverse)
        for frame_idx in order:
            yield frame_idx, state.obj_ids, self.track_frame(state, frame_idx, reverse)

    @torch.inference_mode()
    def track_frame(self, state: VideoState, frame_idx: int, reverse: bool) -> Tensor:
        """Track all objects on one frame (prompts already committed); video-res logits."""
        tracks = list(state.objects)
        logits: list[Tensor | None] = [None] * len(tracks)
        to_track = []
        for index, track in enumerate(tracks):
            prompted = track.store.conditioning.get(frame_idx)
            if prompted is not None:
                logits[index] = prompted.low_res_logits
            else:
                to_track.append(index)
        if to_track:
            features = self.image_features(state, frame_idx)
            stores = [tracks[i].store for i in to_track]
            outputs = self.tracker.track(features, stores, frame_idx, reverse, state.num_frames)
            for index, output in zip(to_track, outputs):
                tracks[index].store.store_tracked(frame_idx, output)
                logits[index] = output.low_res_logits
        for track in tracks:
            track.frames_tracked[frame_idx] = reverse
        stacked = torch.cat([value for value in logits if value is not None])
        masks = self._to_video_resolution(state, stacked)
        return non_overlapping(masks) if self.non_overlap_masks else masks

    # ------------------------------------------------------------------ editing
    @torch.inference_mode()
    def clear_all_prompts_in_frame(
        self, inference_state: VideoState, frame_idx: int, obj_id: int, need_output: bool = True
    ) -> PromptResult | None:
        """Remove the clicks/mask of `obj_id` on `frame_idx` (its result there becomes an
        ordinary tracked result)."""
        state = inference_state
        self._check_frame(state, frame_idx)
        track = self._existing_object(state, obj_id)
        self._clear_prompts(track, frame_idx)
        if not need_output:
            return None
        conditioning = any(frame_idx in t.pending_conditioning for t in state.objects)
        return frame_idx, state.obj_ids, self._frame_masks(state, frame_idx, conditioning)

    @staticmethod
    def _clear_prompts(track: ObjectTrack, frame_idx: int) -> None:
        track.point_prompts.pop(frame_idx, None)
        track.mask_prompts.pop(frame_idx, None)
        track.pending_conditioning.pop(frame_idx, None)
        track.pending_tracked.pop(frame_idx, None)
        output = track.store.conditioning.pop(frame_idx, None)
        if output is not None:
            track.store.tracked[frame_idx] = output
            track.frames_tracked.pop(frame_idx, None)

    @torch.inference_mode()
    def remove_object(
        self,
        inference_state: VideoState,
        obj_id: int,
        strict: bool = False,
        need_output: bool = True,
    ) -> tuple[list[int], list[tuple[int, Tensor]]]:
        """Drop an object; returns the remaining ids and the updated masks of the frames it
        had prompts on."""
        state = inference_state
        track = state.objects.get(obj_id)
        if track is None:
            if strict:
                raise InputError(
                    f"cannot remove unknown object id {obj_id}; known ids: {state.objects.ids}"
                )
            return state.obj_ids, []
        if len(state.objects) == 1:
            self.reset_state(state)
            return state.obj_ids, []
        frames = sorted(track.input_frames())
        state.objects.remove(obj_id)
        updated: list[tuple[int, Tensor]] = []
        if need_output:
            for frame_idx in frames:
                conditioning = any(frame_idx in t.pending_conditioning for t in state.objects)
                updated.append((frame_idx, self._frame_masks(state, frame_idx, conditioning)))
        return state.obj_ids, updated

    @torch.inference_mode()
    def reset_state(self, inference_state: VideoState) -> None:
        """Forget all objects, prompts and results (the video stays open)."""
        inference_state.objects.clear()
