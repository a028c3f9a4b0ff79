"""Memory encoder: fuses a frame's image embedding with its predicted mask into a compact
memory map.

Inputs: image embedding `(B, 256, h, w)` (stride 16) and mask `(B, 1, 16h, 16w)` already mapped
to memory-encoder scale (sigmoid or binarised, times 20, minus 10). Output: memory features
`(B, 64, h, w)` and their sine position encoding `(B, 64, h, w)`.
Checkpoint keys live under `memory_encoder.`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from masklet.model.common import LayerNorm2d
from masklet.model.position_encoding import SinePositionEncoding2d


class MaskDownSampler(nn.Module):
    """Four (conv 3x3 stride 2, LayerNorm2d, GELU) steps, x4 channels each, then a 1x1 conv.
    Keys: `encoder.{0,3,6,9}` convs, `encoder.{1,4,7,10}` norms, `encoder.12` projection."""

    def __init__(self, embed_dim: int = 256, total_stride: int = 16) -> None:
        super().__init__()
        self.encoder = nn.Sequential()
        channels = 1
        for _ in range(total_stride.bit_length() - 1):
            self.encoder.append(nn.Conv2d(channels, channels * 4, 3, stride=2, padding=1))
            self.encoder.append(LayerNorm2d(channels * 4))
            self.encoder.append(nn.GELU())
            channels *= 4
        self.encoder.append(nn.Conv2d(channels, embed_dim, kernel_size=1))

    def forward(self, mask: Tensor) -> Tensor:
        return self.encoder(mask)


class CXBlock(nn.Module):
    """ConvNeXt block: depth-wise 7x7 conv, LayerNorm2d, pointwise MLP (x4), layer scale."""

    def __init__(self, dim: int = 256, kernel_size: int = 7, padding: int = 3) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=padding, groups=dim)
        self.norm = LayerNorm2d(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    """A stack of CXBlocks (keys `layers.{i}`)."""

    def __init__(self, dim: int = 256, num_layers: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(dim) for _ in range(num_layers))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """`forward(image_embedding, scaled_mask) -> (memory_features, memory_position)`."""

    def __init__(self, in_dim: int = 256, out_dim: int = 64) -> None:
        super().__init__()
        self.mask_downsampler = MaskDownSampler(in_dim)
        self.pix_feat_proj = nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.fuser = Fuser(in_dim)
        self.out_proj = nn.Conv2d(in_dim, out_dim, kernel_size=1)
        self.position_encoding = SinePositionEncoding2d(out_dim)

    def forward(self, image_embedding: Tensor, scaled_mask: Tensor) -> tuple[Tensor, Tensor]:
        mask_features = self.mask_downsampler(scaled_mask)
        x = self.pix_feat_proj(image_embedding) + mask_features
        features = self.out_proj(self.fuser(x))
        position = self.position_encoding(features).to(features.dtype)
        return features, position
