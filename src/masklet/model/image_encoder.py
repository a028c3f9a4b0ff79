"""Image encoder: Hiera trunk + FPN neck.

Output levels (finest first) for an `S x S` input: stride 4 `(B, 256, S/4, S/4)`,
stride 8 `(B, 256, S/8, S/8)`, stride 16 `(B, 256, S/16, S/16)`; the stride-32 level is
computed by the trunk but dropped ("scalp"), as in the released models.
Checkpoint keys: `image_encoder.trunk.*`, `image_encoder.neck.convs.{i}.conv.*`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from masklet.model.common import pointwise_conv
from masklet.model.hiera import Hiera


class FpnNeck(nn.Module):
    """Feature pyramid without output convs: 1x1 lateral convs, nearest top-down adds on the
    levels in `top_down_levels` (index 0 = finest)."""

    def __init__(
        self, d_model: int, backbone_channel_list: list[int], top_down_levels: tuple[int, ...]
    ) -> None:
        super().__init__()
        # convs[0] acts on the coarsest trunk level (channel list is coarsest first).
        self.convs = nn.ModuleList()
        for channels in backbone_channel_list:
            lateral = nn.Sequential()
            lateral.add_module("conv", nn.Conv2d(channels, d_model, kernel_size=1))
            self.convs.append(lateral)
        self.backbone_channel_list = list(backbone_channel_list)
        self.top_down_levels = top_down_levels

    def lateral_conv(self, index: int) -> nn.Conv2d:
        conv = self.convs[index].conv
        assert isinstance(conv, nn.Conv2d)
        return conv

    def forward(self, trunk_levels: list[Tensor]) -> list[Tensor]:
        """Trunk maps (finest first) -> fused maps (finest first)."""
        last = len(trunk_levels) - 1
        fused: list[Tensor] = [trunk_levels[0]] * len(trunk_levels)
        previous: Tensor | None = None
        for level in range(last, -1, -1):
            lateral = pointwise_conv(self.lateral_conv(last - level), trunk_levels[level])
            if level in self.top_down_levels and previous is not None:
                upsampled = F.interpolate(
                    previous.to(torch.float32), scale_factor=2.0, mode="nearest"
                )
                previous = lateral + upsampled
            else:
                previous = lateral
            fused[level] = previous
        return fused


class ImageEncoder(nn.Module):
    """Trunk + neck; returns the three finest fused levels (scalp of 1)."""

    def __init__(self, trunk: Hiera, neck: FpnNeck, scalp: int = 1) -> None:
        super().__init__()
        if trunk.channel_list != neck.backbone_channel_list:
            raise ValueError(
                f"trunk channels {trunk.channel_list} != neck channels {neck.backbone_channel_list}"
            )
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp

    def forward(self, images: Tensor) -> list[Tensor]:
        levels = self.neck(self.trunk(images))
        return levels[: len(levels) - self.scalp]
