"""The SAM 2 model: composes the image encoder, prompt encoder, mask decoder, memory encoder
and memory attention into stateless steps.

- `encode_image`: normalised images `(B, 3, S, S)` -> `ImageFeatures` (stride 16/8/4).
- `decode_frame`: (memory-conditioned) embedding + prompts -> `FrameDecoding` (masks, IoU,
  object score, object pointer).
- `encode_memory`: embedding + predicted mask -> memory features for later frames.
- `condition_on_memory` / `memory_tokens` / `pointer_tokens`: build and attend to memory.

The caller (a session) owns the memory bank. Coordinates are xy pixels of the `S x S` input.
Attribute names equal the official checkpoint keys.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from masklet.config import SAM2Config
from masklet.model.common import MLP, flatten_spatial, pointwise_conv, unflatten_spatial
from masklet.model.compute import DEFAULT_COMPUTE_OPTIONS, ComputeOptions
from masklet.model.hiera import Hiera
from masklet.model.image_encoder import FpnNeck, ImageEncoder
from masklet.model.mask_decoder import DecoderOutput, MaskDecoder
from masklet.model.memory_attention import MemoryAttention
from masklet.model.memory_encoder import MemoryEncoder
from masklet.model.position_encoding import SinePositionEncoding2d, sine_encoding_1d
from masklet.model.prompt_encoder import PromptEncoder

#: Logit written into masks of frames where the object is judged absent.
NO_OBJECT_SCORE = -1024.0
#: Logit scale used when a binary mask prompt is output directly (sigmoid(-10) ~ 4.5e-5).
MASK_AS_OUTPUT_SCALE, MASK_AS_OUTPUT_BIAS = 20.0, -10.0


class ImageFeatures(NamedTuple):
    """Per-image encoder outputs (batch B)."""

    image_embedding: Tensor  # (B, 256, S/16, S/16), before any memory conditioning
    high_res_features: tuple[Tensor, Tensor]  # (B, 32, S/4, S/4), (B, 64, S/8, S/8)
    position: Tensor  # (1, 256, S/16, S/16) sine encoding of the stride-16 grid


class FrameDecoding(NamedTuple):
    """Decoder outputs for B objects on one frame. Low-res = S/4."""

    multimask_logits: Tensor  # (B, M, S/4, S/4), M = 3 or 1
    iou_scores: Tensor  # (B, M)
    mask_logits: Tensor  # (B, 1, S/4, S/4): the best of `multimask_logits`
    object_score_logits: Tensor  # (B, 1)
    object_pointer: Tensor  # (B, 256)


class SAM2Model(nn.Module):
    """SAM 2 / 2.1 network. Construct from a `SAM2Config`; load weights with
    `masklet.checkpoint.load_checkpoint`.

    `compute_options` picks kernels for the machine (default: the CPU float32 path);
    `masklet.runtime.compute_options(device)` chooses them for a device, and
    `masklet.build_sam2` passes them. Change them later with `set_compute_options`.
    """

    def __init__(
        self, config: SAM2Config, compute_options: ComputeOptions = DEFAULT_COMPUTE_OPTIONS
    ) -> None:
        super().__init__()
        self.config = config
        hidden, memory_dim = config.hidden_dim, config.memory_dim
        hiera = config.hiera
        trunk = Hiera(
            hiera.embed_dim,
            hiera.num_heads,
            hiera.stages,
            hiera.global_attention_blocks,
            hiera.window_spec,
            hiera.window_pos_embed_background_size,
        )
        neck = FpnNeck(hidden, hiera.channel_list, top_down_levels=(2, 3))
        self.image_encoder = ImageEncoder(trunk, neck, scalp=1)
        self.position_encoding = SinePositionEncoding2d(hidden)
        grid = (config.embedding_size, config.embedding_size)
        self.sam_prompt_encoder = PromptEncoder(hidden, grid, (config.image_size,) * 2)
        self.sam_mask_decoder = MaskDecoder(
            hidden,
            dynamic_multimask_stability_delta=config.dynamic_multimask_stability_delta,
            dynamic_multimask_stability_thresh=config.dynamic_multimask_stability_thresh,
        )
        self.memory_encoder = MemoryEncoder(hidden, memory_dim)
        self.memory_attention = MemoryAttention(
            hidden,
            memory_dim,
            config.memory_attention_layers,
            compute_options,
            config.memory_attention_feedforward,
        )
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(config.num_maskmem, 1, 1, memory_dim))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, hidden))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, hidden))
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, hidden))
        self.obj_ptr_proj = MLP(hidden, hidden, hidden, 3)
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.obj_ptr_tpos_proj: nn.Module = nn.Identity()
        if config.object_pointer_temporal_encoding:
            self.obj_ptr_tpos_proj = nn.Linear(hidden, memory_dim)
        self.no_obj_embed_spatial: nn.Parameter | None = None
        if config.no_object_embed_spatial:
            self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, memory_dim))
        self._init_embeddings()

    def _init_embeddings(self) -> None:
        # Matches the reference's truncated-normal init so random models behave alike.
        for parameter in (
            self.maskmem_tpos_enc,
            self.no_mem_embed,
            self.no_mem_pos_enc,
            self.no_obj_ptr,
            self.no_obj_embed_spatial,
        ):
            if parameter is not None:
                nn.init.trunc_normal_(parameter, std=0.02)

    @property
    def image_size(self) -> int:
        """Side of the square model input in pixels."""
        return self.config.image_size

    @property
    def compute_options(self) -> ComputeOptions:
        """The kernel choices the model runs with (see `ComputeOptions`)."""
        return self.memory_attention.compute_options

    def set_compute_options(self, options: ComputeOptions) -> None:
        """Run with `options` from now on (e.g. after moving the model to another device)."""
        self.memory_attention.compute_options = options

    # ----------------------------------------------------------------- image encoding
    def encode_image(self, images: Tensor) -> ImageFeatures:
        """`images (B, 3, S, S)` normalised float -> `ImageFeatures`."""
        stride4, stride8, stride16 = self.image_encoder(images)
        decoder = self.sam_mask_decoder
        high_res = (
            pointwise_conv(decoder.conv_s0, stride4),
            pointwise_conv(decoder.conv_s1, stride8),
        )
        position = self.position_encoding(stride16[:1]).to(stride16.dtype)
        return ImageFeatures(stride16, high_res, position)

    def embedding_without_memory(self, image_embedding: Tensor) -> Tensor:
        """Embedding for a frame decoded without memory (single images, first prompts)."""
        return image_embedding + self.no_mem_embed.reshape(1, -1, 1, 1)

    # ----------------------------------------------------------------- decoding
    def decode_frame(
        self,
        image_embedding: Tensor,
        high_res_features: tuple[Tensor, Tensor],
        point_coords: Tensor | None = None,
        point_labels: Tensor | None = None,
        mask_input: Tensor | None = None,
        multimask_output: bool = False,
    ) -> FrameDecoding:
        """Decode B objects.

        `image_embedding (B|1, 256, h, w)` already conditioned on memory (or with the
        no-memory embedding); `point_coords (B, N, 2)` xy input pixels with `point_labels
        (B, N)` int (boxes as label-2/3 corner points); `mask_input (B, 1, H', W')` logits,
        resized to `(4h, 4w)` when needed. Absent objects get `NO_OBJECT_SCORE` masks and the
        learned no-object pointer.
        """
        batch = self._prompt_batch(image_embedding, point_coords, mask_input)
        if point_coords is None or point_labels is None:
            point_coords = image_embedding.new_zeros(batch, 1, 2, dtype=torch.float32)
            point_labels = -torch.ones(batch, 1, dtype=torch.int32, device=image_embedding.device)
        if mask_input is not None:
            mask_input = self._resize_mask_prompt(mask_input)
        decoded = self.decode_prompts(
            image_embedding,
            high_res_features,
            point_coords,
            point_labels,
            mask_input,
            multimask_output,
        )
        present = decoded.object_score_logits > 0
        multimask = torch.where(present[:, :, None, None], decoded.masks, NO_OBJECT_SCORE).float()
        best = decoded.iou_scores.argmax(dim=-1)
        rows = torch.arange(batch, device=best.device)
        best_mask = multimask[rows, best].unsqueeze(1)
        # Mask tokens and IoU scores have the same count (3 or 1): pick the best mask's token.
        token = decoded.mask_tokens[rows, best]
        pointer = self.object_pointer(token, present.float())
        return FrameDecoding(
            multimask, decoded.iou_scores, best_mask, decoded.object_score_logits, pointer
        )

    def decode_prompts(
        self,
        image_embedding: Tensor,
        high_res_features: tuple[Tensor, Tensor],
        point_coords: Tensor | None,
        point_labels: Tensor | None,
        mask_input: Tensor | None,
        multimask_output: bool,
    ) -> DecoderOutput:
        """Plain SAM decoding for the image predictor (no object-score masking).

        `point_coords (B, N, 2)` input pixels (boxes as label-2/3 corners), `point_labels
        (B, N)`, `mask_input (B, 1, 4h, 4w)` logits; a padding token is always appended.
        """
        points = None
        if point_coords is not None and point_labels is not None:
            points = (point_coords, point_labels)
        sparse, dense = self.sam_prompt_encoder(points, None, mask_input)
        return self.sam_mask_decoder(
            image_embedding,
            self.sam_prompt_encoder.dense_position_encoding(),
            sparse,
            dense,
            high_res_features,
            multimask_output,
        )

    def object_pointer(self, mask_token: Tensor, presence: Tensor) -> Tensor:
        """Project the chosen mask token `(B, 256)`; absent objects (`presence (B, 1)` = 0)
        get the learned no-object pointer."""
        pointer = self.obj_ptr_proj(mask_token)
        return presence * pointer + (1 - presence) * self.no_obj_ptr

    def decode_from_mask(
        self, image_embedding: Tensor, high_res_features: tuple[Tensor, Tensor], mask: Tensor
    ) -> FrameDecoding:
        """Use a binary mask prompt `(B, 1, S, S)` directly as the output (video mask prompts);
        the decoder still runs on the downsampled mask to produce the object pointer."""
        mask_float = mask.float()
        high_res = mask_float * MASK_AS_OUTPUT_SCALE + MASK_AS_OUTPUT_BIAS
        low_res = F.interpolate(
            high_res,
            size=(high_res.shape[-2] // 4, high_res.shape[-1] // 4),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        prompted = self.decode_frame(
            image_embedding, high_res_features, mask_input=self.mask_downsample(mask_float)
        )
        present = (mask_float.flatten(1) > 0).any(dim=1, keepdim=True).float()
        object_logits = MASK_AS_OUTPUT_SCALE * present + MASK_AS_OUTPUT_BIAS
        pointer = present * prompted.object_pointer + (1 - present) * self.no_obj_ptr
        iou = mask_float.new_ones(mask_float.shape[0], 1)
        return FrameDecoding(low_res, iou, low_res, object_logits, pointer)

    def upsample_to_input(self, mask_logits: Tensor) -> Tensor:
        """`(B, M, S/4, S/4)` -> `(B, M, S, S)` bilinear."""
        size = (self.image_size, self.image_size)
        return F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)

    def _resize_mask_prompt(self, mask_input: Tensor) -> Tensor:
        target = self.sam_prompt_encoder.mask_input_size
        if tuple(mask_input.shape[-2:]) == target:
            return mask_input
        return F.interpolate(
            mask_input.float(), size=target, mode="bilinear", align_corners=False, antialias=True
        )

    @staticmethod
    def _prompt_batch(embedding: Tensor, coords: Tensor | None, mask: Tensor | None) -> int:
        if coords is not None:
            return coords.shape[0]
        return mask.shape[0] if mask is not None else embedding.shape[0]

    # ----------------------------------------------------------------- memory
    def encode_memory(
        self,
        image_embedding: Tensor,
        mask_logits_high_res: Tensor,
        object_score_logits: Tensor,
        binarize: bool,
    ) -> tuple[Tensor, Tensor]:
        """Memory of B objects on one frame.

        `image_embedding (B|1, 256, h, w)` unconditioned; `mask_logits_high_res (B, 1, S, S)`;
        `binarize` thresholds the mask at 0 instead of a sigmoid (frames prompted by clicks).
        Returns features `(B, 64, h, w)` and position `(B, 64, h, w)`.
        """
        if binarize:
            mask = (mask_logits_high_res > 0).to(mask_logits_high_res.dtype)
        else:
            mask = torch.sigmoid(mask_logits_high_res)
        mask = mask * self.config.sigmoid_scale_for_mem_enc + self.config.sigmoid_bias_for_mem_enc
        batch = mask.shape[0]
        features, position = self.memory_encoder(image_embedding.expand(batch, -1, -1, -1), mask)
        if self.no_obj_embed_spatial is not None:
            absent = (object_score_logits <= 0).to(features.dtype)  # (B, 1)
            features = (
                features + absent[..., None, None] * self.no_obj_embed_spatial[..., None, None]
            )
        return features, position

    def memory_tokens(
        self, features: Tensor, position: Tensor, temporal_slot: int
    ) -> tuple[Tensor, Tensor]:
        """Tokens `(B, h*w, 64)` and their encoding for a memory frame `temporal_slot` frames
        back (0 = prompted frame, 1..num_maskmem-1 = recent frames)."""
        temporal = self.maskmem_tpos_enc[self.config.num_maskmem - temporal_slot - 1].reshape(
            1, 1, -1
        )
        return flatten_spatial(features), flatten_spatial(position) + temporal

    def pointer_tokens(
        self, pointers: Tensor, offsets: Tensor, max_offset: int
    ) -> tuple[Tensor, Tensor]:
        """Object pointers `(B, P, 256)` at signed frame `offsets (P,)` -> tokens `(B, 4P, 64)`
        and encodings (each pointer is split into 4 memory-width tokens)."""
        batch, count, hidden = pointers.shape
        memory_dim = self.config.memory_dim
        if self.config.object_pointer_temporal_encoding:
            normalised = offsets.to(pointers.device, torch.float32) / max(max_offset, 1)
            encoding = self.obj_ptr_tpos_proj(sine_encoding_1d(normalised, hidden))
        else:
            encoding = pointers.new_zeros(count, memory_dim)
        split = hidden // memory_dim
        tokens = pointers.reshape(batch, count * split, memory_dim)
        encoding = encoding.repeat_interleave(split, dim=0).unsqueeze(0).expand(batch, -1, -1)
        return tokens, encoding

    def condition_on_memory(
        self,
        image_embedding: Tensor,
        position: Tensor,
        memory: Tensor,
        memory_position: Tensor,
        num_pointer_tokens: int,
    ) -> Tensor:
        """Attend the frame `(B|1, 256, h, w)` to `memory (B, M, 64)`; returns `(B, 256, h, w)`."""
        height, width = image_embedding.shape[-2:]
        # A batch-1 frame is shared by all objects: memory attention runs its first steps once.
        current = flatten_spatial(image_embedding)
        current_pos = flatten_spatial(position).expand(current.shape[0], -1, -1)
        out = self.memory_attention(
            current, current_pos, memory, memory_position, num_pointer_tokens
        )
        return unflatten_spatial(out, height, width)
