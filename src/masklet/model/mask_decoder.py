"""SAM mask decoder: output tokens + prompt tokens attend to the image embedding; masks come
from hypernetwork MLPs dotted with an upscaled embedding (with high-resolution skip features).

Shapes for an image embedding `(B, C, h, w)` (h = image_size/16): masks `(B, M, 4h, 4w)`
logits, IoU scores `(B, M)`, object-score logits `(B, 1)`, mask tokens `(B, M, C)`.
Checkpoint keys live under `sam_mask_decoder.`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from masklet.model.common import MLP, LayerNorm2d
from masklet.model.transformer import TwoWayTransformer


class DecoderOutput(NamedTuple):
    """Mask decoder result. `M` = 3 with multi-mask output, else 1."""

    masks: Tensor  # (B, M, 4h, 4w) logits
    iou_scores: Tensor  # (B, M)
    mask_tokens: Tensor  # (B, M, C) tokens of the returned masks (object-pointer source)
    object_score_logits: Tensor  # (B, 1); > 0 means the object is present


def stability_scores(mask_logits: Tensor, delta: float) -> Tensor:
    """IoU between the masks thresholded at +delta and -delta, `(..., H, W) -> (...)`."""
    flat = mask_logits.flatten(-2)
    inner = (flat > delta).sum(-1).float()
    outer = (flat > -delta).sum(-1).float()
    return torch.where(outer > 0, inner / outer, 1.0)


class MaskDecoder(nn.Module):
    """Predicts masks from image and prompt embeddings (SAM 2 variant)."""

    def __init__(
        self,
        transformer_dim: int = 256,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        iou_prediction_use_sigmoid: bool = True,
        pred_obj_scores_mlp: bool = True,
        use_multimask_token_for_obj_ptr: bool = True,
        dynamic_multimask_stability_delta: float = 0.05,
        dynamic_multimask_stability_thresh: float = 0.98,
    ) -> None:
        super().__init__()
        dim = transformer_dim
        self.transformer = TwoWayTransformer(embedding_dim=dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.obj_score_token = nn.Embedding(1, dim)
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.conv_s0 = nn.Conv2d(dim, dim // 8, kernel_size=1)
        self.conv_s1 = nn.Conv2d(dim, dim // 4, kernel_size=1)
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            dim,
            iou_head_hidden_dim,
            self.num_mask_tokens,
            iou_head_depth,
            sigmoid_output=iou_prediction_use_sigmoid,
        )
        self.pred_obj_score_head: nn.Module = (
            MLP(dim, dim, 1, 3) if pred_obj_scores_mlp else nn.Linear(dim, 1)
        )
        self.use_multimask_token_for_obj_ptr = use_multimask_token_for_obj_ptr
        self.stability_delta = dynamic_multimask_stability_delta
        self.stability_thresh = dynamic_multimask_stability_thresh

    def forward(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
        high_res_features: tuple[Tensor, Tensor],
        multimask_output: bool,
    ) -> DecoderOutput:
        """Decode masks for `B` prompt sets.

        `image_embeddings (B or 1, C, h, w)` (a batch of 1 is shared by all prompt sets),
        `image_pe (1, C, h, w)`, `sparse_prompt_embeddings (B, N, C)`,
        `dense_prompt_embeddings (B, C, h, w)`, `high_res_features` = stride-4 `(B|1, C/8, 4h, 4w)`
        and stride-8 `(B|1, C/4, 2h, 2w)` maps already projected by `conv_s0`/`conv_s1`.
        Without multi-mask output, a single-mask result that is unstable is replaced by the
        best-scoring multi-mask candidate (SAM 2's dynamic fallback; eval mode only).
        """
        all_masks, all_iou, all_tokens, object_logits = self.predict_all_masks(
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
            high_res_features,
        )
        if multimask_output:
            masks, iou = all_masks[:, 1:], all_iou[:, 1:]
        elif not self.training:
            masks, iou = self.select_stable_single_mask(all_masks, all_iou)
        else:
            masks, iou = all_masks[:, :1], all_iou[:, :1]
        use_multi_tokens = multimask_output and self.use_multimask_token_for_obj_ptr
        tokens = all_tokens[:, 1:] if use_multi_tokens else all_tokens[:, :1]
        return DecoderOutput(masks, iou, tokens, object_logits)

    def predict_all_masks(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
        high_res_features: tuple[Tensor, Tensor],
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """All 4 masks `(B, 4, 4h, 4w)`, IoU `(B, 4)`, mask tokens `(B, 4, C)`, object logits."""
        batch = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat(
            [self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight]
        )
        tokens = torch.cat(
            [output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse_prompt_embeddings], dim=1
        )
        image = image_embeddings.expand(batch, -1, -1, -1) + dense_prompt_embeddings
        position = image_pe.expand(batch, -1, -1, -1)
        height, width = image.shape[-2:]
        hidden, image_tokens = self.transformer(image, position, tokens)
        object_token, iou_token = hidden[:, 0], hidden[:, 1]
        mask_tokens = hidden[:, 2 : 2 + self.num_mask_tokens]
        image = image_tokens.transpose(1, 2).reshape(batch, -1, height, width)
        upscaled = self.upscale(image, high_res_features)
        hyper = torch.stack(
            [mlp(mask_tokens[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )
        masks = (hyper @ upscaled.flatten(2)).unflatten(-1, upscaled.shape[-2:])
        iou = self.iou_prediction_head(iou_token)
        object_logits = self.pred_obj_score_head(object_token)
        return masks, iou, mask_tokens, object_logits

    def upscale(self, image: Tensor, high_res_features: tuple[Tensor, Tensor]) -> Tensor:
        """`(B, C, h, w)` -> `(B, C/8, 4h, 4w)`, adding the stride-8 and stride-4 skips."""
        deconv1, norm1, act1, deconv2, act2 = self.output_upscaling
        stride4, stride8 = high_res_features
        x = act1(norm1(deconv1(image) + stride8))
        return act2(deconv2(x) + stride4)

    def select_stable_single_mask(
        self, all_masks: Tensor, all_iou: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Keep token 0's mask where it is stable, else the multi-mask with the best IoU."""
        best = all_iou[:, 1:].argmax(dim=-1)
        rows = torch.arange(all_masks.shape[0], device=all_masks.device)
        best_masks = all_masks[:, 1:][rows, best].unsqueeze(1)
        best_iou = all_iou[:, 1:][rows, best].unsqueeze(1)
        single_masks, single_iou = all_masks[:, :1], all_iou[:, :1]
        stable = stability_scores(single_masks, self.stability_delta) >= self.stability_thresh
        masks = torch.where(stable[..., None, None], single_masks, best_masks)
        iou = torch.where(stable, single_iou, best_iou)
        return masks, iou
