"""`FrameEngine`: the model calls of one frame, for the video session.

Two steps: decode one object on a prompted frame (`decode_prompted`), and track a batch of
objects on a frame from their memories (`track`). All objects on a frame share one image
encoding; objects whose memories have the same layout (number of memory frames and pointers)
go through memory attention, the decoder and the memory encoder as one batch. The engine holds
no per-video state: memories come in as `OutputStore`s, results go out as `FrameOutput`s.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from masklet.model.sam2 import FrameDecoding, ImageFeatures, SAM2Model
from masklet.postprocess import fill_holes
from masklet.session.memory import MemoryPlan, MemoryRule, plan_memory
from masklet.session.objects import Direction, FrameOutput, MaskPrompt, OutputStore, Prompt

#: Filled holes get this small positive logit (the reference's choice).
HOLE_FILL_LOGIT = 0.1
#: Mask logits fed back as a prompt are clamped to this range.
MASK_PROMPT_LOGIT_LIMIT = 32.0


class FrameEngine:
    """Runs the model for the steps of one frame.

    Args:
        model: the SAM 2 model.
        fill_hole_area: shown masks get background holes up to this many low-res pixels
            filled. As in the reference, a tracked frame's memory is encoded from the mask
            before filling, a prompted frame's from the filled one.
    """

    def __init__(self, model: SAM2Model, fill_hole_area: int = 0) -> None:
        self.model = model
        self.fill_hole_area = fill_hole_area
        config = model.config
        self.memory_rule = MemoryRule(
            config.num_maskmem,
            config.max_object_pointers,
            config.object_pointer_temporal_encoding,
            config.max_cond_frames_in_attn,
        )

    def plan(
        self, store: OutputStore, frame_idx: int, direction: Direction, num_frames: int | None
    ) -> MemoryPlan:
        return plan_memory(store, frame_idx, direction, num_frames, self.memory_rule)

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
                # One frame's encoding serves every object of a batched output.
                positions.append(position.expand(token.shape[0], -1, -1))
            if plan.pointers:
                # (B, P, 256): a stored output may hold several objects (training batches them).
                pointers = torch.stack([pointer for pointer, _ in plan.pointers], dim=1)
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
        prompt: Prompt,
        memory: MemoryPlan | None,
        previous_logits: Tensor | None,
    ) -> FrameOutput:
        """Decode one object on a frame with a click/box or mask prompt (memory not encoded).

        `memory`: None on a new prompt frame (no memory attention), else the plan of the
        tracked frame being corrected. `previous_logits (1, 1, S/4, S/4)`: the frame's last
        result, fed back with clicks (clamped to +-32)."""
        high_res = features.high_res_features
        if isinstance(prompt, MaskPrompt):
            decoded = self.model.decode_from_mask(features.image_embedding, high_res, prompt.mask)
            return self._frame_output(decoded)
        if memory is None:
            embedding = self.model.embedding_without_memory(features.image_embedding)
        else:
            embedding = self.conditioned_embedding(features, [memory])
        if previous_logits is not None:
            previous_logits = previous_logits.clamp(
                -MASK_PROMPT_LOGIT_LIMIT, MASK_PROMPT_LOGIT_LIMIT
            )
        # One click (or none) on a new prompt frame is ambiguous: ask for 3 masks.
        multimask = prompt.labels.shape[1] <= 1
        decoded = self.model.decode_frame(
            embedding, high_res, prompt.coords, prompt.labels, previous_logits, multimask
        )
        return self._frame_output(decoded)

    def _frame_output(self, decoded: FrameDecoding) -> FrameOutput:
        return FrameOutput(
            self.fill(decoded.mask_logits), decoded.object_score_logits, decoded.object_pointer
        )

    def track(
        self,
        features: ImageFeatures,
        stores: Sequence[OutputStore],
        frame_idx: int,
        direction: Direction,
        num_frames: int | None,
    ) -> list[FrameOutput]:
        """Track objects (no prompt on this frame) and encode their memories; batched by
        memory layout. Returns one output per store, in order."""
        plans = [self.plan(store, frame_idx, direction, num_frames) for store in stores]
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
