"""One tracking step for a batch of objects on one frame, and the prompted-frame step.

All objects on a frame share one image encoding. Objects whose memories have the same layout
(number of memory frames and pointers) go through memory attention, the decoder and the
memory encoder as one batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from masklet.model.sam2 import FrameDecoding, ImageFeatures, SAM2Model
from masklet.postprocess import fill_holes
from masklet.session.memory import MemoryPlan, plan_memory
from masklet.session.objects import FrameOutput, OutputStore, PointPrompt

#: Filled holes get this small positive logit (the reference's choice).
HOLE_FILL_LOGIT = 0.1
#: Mask logits fed back as a prompt are clamped to this range.
MASK_PROMPT_LOGIT_LIMIT = 32.0


class FrameTracker:
    """Runs the model for tracking steps; holds no per-video state."""

    def __init__(self, model: SAM2Model, fill_hole_area: int = 0) -> None:
        self.model = model
        self.fill_hole_area = fill_hole_area

    def plan(
        self, store: OutputStore, frame_idx: int, reverse: bool, num_frames: int | None
    ) -> MemoryPlan:
        config = self.model.config
        return plan_memory(
            store,
            frame_idx,
            reverse,
            num_frames,
            config.num_maskmem,
            config.max_object_pointers,
            config.object_pointer_temporal_encoding,
        )

    def memory_tensors(self, plans: Sequence[MemoryPlan]) -> tuple[Tensor, Tensor, int]:
        """Stack equal-layout plans into memory `(B, M, 64)`, encodings and pointer-token count."""
        memories, encodings = [], []
        for plan in plans:
            tokens, positions = [], []
            for output, slot in plan.spatial:
                assert output.memory_features is not None
                # Stored bf16 memories are promoted exactly to the compute dtype.
                features = output.memory_features.float()
                token, position = self.model.memory_tokens(
                    features, self.memory_position(features), slot
                )
                tokens.append(token)
                positions.append(position)
            if plan.pointers:
                pointers = torch.cat([pointer for pointer, _ in plan.pointers])[None]
                offsets = torch.tensor([offset for _, offset in plan.pointers])
                token, position = self.model.pointer_tokens(
                    pointers, offsets, plan.max_pointer_offset
                )
                tokens.append(token)
                positions.append(position)
            memories.append(torch.cat(tokens, dim=1))
            encodings.append(torch.cat(positions, dim=1))
        pointer_tokens = len(plans[0].pointers) * (
            self.model.config.hidden_dim // self.model.config.memory_dim
        )
        return torch.cat(memories), torch.cat(encodings), pointer_tokens

    def memory_position(self, features: Tensor) -> Tensor:
        """Sine encoding of a memory map (same for every frame and object)."""
        return self.model.memory_encoder.position_encoding(features[:1]).to(features.dtype)

    def conditioned_embedding(self, features: ImageFeatures, plans: Sequence[MemoryPlan]) -> Tensor:
        memory, encoding, pointer_tokens = self.memory_tensors(plans)
        return self.model.condition_on_memory(
            features.image_embedding, features.position, memory, encoding, pointer_tokens
        )

    def encode_memory(
        self,
        features: ImageFeatures,
        low_res_logits: Tensor,
        object_score_logits: Tensor,
        binarize: bool,
    ) -> Tensor:
        """Memory features (bf16) from low-res logits `(B, 1, S/4, S/4)`."""
        high_res = self.model.upsample_to_input(low_res_logits)
        return self.encode_memory_high_res(features, high_res, object_score_logits, binarize)

    def encode_memory_high_res(
        self, features: ImageFeatures, high_res: Tensor, object_score_logits: Tensor, binarize: bool
    ) -> Tensor:
        memory, _ = self.model.encode_memory(
            features.image_embedding, high_res, object_score_logits, binarize
        )
        return memory.to(torch.bfloat16)

    def fill(self, low_res_logits: Tensor) -> Tensor:
        if self.fill_hole_area <= 0:
            return low_res_logits
        return fill_holes(low_res_logits, self.fill_hole_area, 0.0, fill_value=HOLE_FILL_LOGIT)

    def decode_prompted(
        self,
        features: ImageFeatures,
        store: OutputStore,
        frame_idx: int,
        is_new_prompt_frame: bool,
        points: PointPrompt | None,
        mask: Tensor | None,
        reverse: bool,
        previous_logits: Tensor | None,
        num_frames: int | None,
    ) -> FrameOutput:
        """Decode one object on a frame with a click/box or mask prompt (memory not encoded)."""
        high_res = features.high_res_features
        if mask is not None:
            decoded = self.model.decode_from_mask(features.image_embedding, high_res, mask)
        else:
            embedding = self._prompt_frame_embedding(
                features, store, frame_idx, is_new_prompt_frame, reverse, num_frames
            )
            assert points is not None
            # One click (or none) on a new prompt frame is ambiguous: ask for 3 masks.
            multimask = points.labels.shape[1] <= 1
            decoded = self.model.decode_frame(
                embedding, high_res, points.coords, points.labels, previous_logits, multimask
            )
        return self._frame_output(decoded)

    def _prompt_frame_embedding(
        self,
        features: ImageFeatures,
        store: OutputStore,
        frame_idx: int,
        is_new_prompt_frame: bool,
        reverse: bool,
        num_frames: int | None,
    ) -> Tensor:
        if is_new_prompt_frame:
            return self.model.embedding_without_memory(features.image_embedding)
        plan = self.plan(store, frame_idx, reverse, num_frames)
        return self.conditioned_embedding(features, [plan])

    def _frame_output(self, decoded: FrameDecoding) -> FrameOutput:
        return FrameOutput(
            self.fill(decoded.mask_logits), decoded.object_score_logits, decoded.object_pointer
        )

    def track(
        self,
        features: ImageFeatures,
        stores: Sequence[OutputStore],
        frame_idx: int,
        reverse: bool,
        num_frames: int | None,
    ) -> list[FrameOutput]:
        """Track objects (no prompt on this frame) and encode their memories; batched by
        memory layout. Returns one output per store, in order."""
        plans = [self.plan(store, frame_idx, reverse, num_frames) for store in stores]
        groups: dict[tuple[int, int], list[int]] = {}
        for index, plan in enumerate(plans):
            groups.setdefault(plan.layout, []).append(index)
        results: list[FrameOutput | None] = [None] * len(stores)
        for members in groups.values():
            outputs = self._track_group(features, [plans[i] for i in members])
            for index, output in zip(members, outputs):
                results[index] = output
        return [output for output in results if output is not None]

    def _track_group(
        self, features: ImageFeatures, plans: Sequence[MemoryPlan]
    ) -> list[FrameOutput]:
        embedding = self.conditioned_embedding(features, plans)
        # Tracking frames have no clicks: multi-mask output, best IoU kept (released configs).
        decoded = self.model.decode_frame(
            embedding, features.high_res_features, multimask_output=True
        )
        high_res = self.model.upsample_to_input(decoded.mask_logits)
        memory = self.encode_memory_high_res(
            features, high_res, decoded.object_score_logits, binarize=False
        )
        shown = self.fill(decoded.mask_logits)
        return [
            FrameOutput(
                shown[i : i + 1],
                decoded.object_score_logits[i : i + 1],
                decoded.object_pointer[i : i + 1],
                memory[i : i + 1],
            )
            for i in range(len(plans))
        ]
