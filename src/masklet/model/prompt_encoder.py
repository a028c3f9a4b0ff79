"""Prompt encoder: points (with labels), box corners and a low-resolution mask prompt.

Point coordinates are xy pixels of the model input (`image_size x image_size`).
Labels: 1 positive, 0 negative, 2 box top-left, 3 box bottom-right, -1 padding ("not a point").
Checkpoint keys live under `sam_prompt_encoder.`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from masklet.model.common import LayerNorm2d
from masklet.model.position_encoding import RandomFourierEncoding


class PromptEncoder(nn.Module):
    """Encodes prompts into sparse tokens `(B, N, C)` and a dense map `(B, C, h, w)`."""

    def __init__(
        self,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int = 16,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = image_embedding_size
        self.input_image_size = input_image_size
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.pe_layer = RandomFourierEncoding(embed_dim // 2)
        # 0 negative point, 1 positive point, 2 box top-left, 3 box bottom-right.
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def dense_position_encoding(self) -> Tensor:
        """`(1, C, h, w)` encoding of the image-embedding grid."""
        return self.pe_layer.dense(*self.image_embedding_size).unsqueeze(0)

    def embed_points(self, coords: Tensor, labels: Tensor, pad: bool) -> Tensor:
        """`coords (B, N, 2)` float, `labels (B, N)` int -> `(B, N (+1 if pad), C)`."""
        coords = coords + 0.5  # pixel centres
        if pad:
            coords = torch.cat([coords, coords.new_zeros(coords.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, -labels.new_ones(labels.shape[0], 1)], dim=1)
        embedding = self.pe_layer.encode_points(coords, self.input_image_size)
        labels = labels.unsqueeze(-1)
        embedding = torch.where(labels == -1, self.not_a_point_embed.weight, embedding)
        for label in range(len(self.point_embeddings)):
            weight = self.point_weight(label)
            embedding = torch.where(labels == label, embedding + weight, embedding)
        return embedding

    def point_weight(self, label: int) -> Tensor:
        """`(1, C)` learned embedding of point label 0..3."""
        table = self.point_embeddings[label]
        assert isinstance(table, nn.Embedding)
        return table.weight

    def embed_boxes(self, boxes: Tensor) -> Tensor:
        """`(B, 4)` xyxy boxes -> `(B, 2, C)` corner tokens."""
        corners = self.pe_layer.encode_points(boxes.reshape(-1, 2, 2) + 0.5, self.input_image_size)
        offsets = torch.cat([self.point_weight(2), self.point_weight(3)])
        return corners + offsets

    def embed_masks(self, masks: Tensor) -> Tensor:
        """`(B, 1, 4h, 4w)` mask logits -> `(B, C, h, w)`."""
        return self.mask_downscaling(masks)

    def forward(
        self,
        points: tuple[Tensor, Tensor] | None,
        boxes: Tensor | None,
        masks: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        """Returns sparse `(B, N, C)` and dense `(B, C, h, w)` embeddings.

        Points are padded with one "not a point" token when no box is given (SAM convention).
        """
        batch = self._batch_size(points, boxes, masks)
        device = self.no_mask_embed.weight.device
        tokens = [torch.empty((batch, 0, self.embed_dim), device=device)]
        if points is not None:
            tokens.append(self.embed_points(points[0], points[1], pad=boxes is None))
        if boxes is not None:
            tokens.append(self.embed_boxes(boxes))
        sparse = torch.cat(tokens, dim=1)
        if masks is not None:
            dense = self.embed_masks(masks)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
                batch, -1, *self.image_embedding_size
            )
        return sparse, dense

    @staticmethod
    def _batch_size(
        points: tuple[Tensor, Tensor] | None, boxes: Tensor | None, masks: Tensor | None
    ) -> int:
        if points is not None:
            return points[0].shape[0]
        if boxes is not None:
            return boxes.shape[0]
        return masks.shape[0] if masks is not None else 1
