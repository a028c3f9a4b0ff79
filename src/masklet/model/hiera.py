"""Hiera image trunk (hierarchical ViT with windowed attention and query pooling).

Tensors inside the trunk are channels-last, `(B, H, W, C)`; the outputs are channels-first
`(B, C, H, W)` feature maps at strides 4, 8, 16 and 32 (finest first).
Checkpoint keys live under `image_encoder.trunk.`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from masklet.model.common import MLP


def partition_windows(x: Tensor, window: int) -> tuple[Tensor, tuple[int, int]]:
    """`(B, H, W, C)` -> `(B*nw, window, window, C)` zero-padded windows and the padded size."""
    batch, height, width, channels = x.shape
    pad_h = (window - height % window) % window
    pad_w = (window - width % window) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    padded_h, padded_w = height + pad_h, width + pad_w
    x = x.view(batch, padded_h // window, window, padded_w // window, window, channels)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, channels)
    return windows, (padded_h, padded_w)


def merge_windows(
    windows: Tensor, window: int, padded_hw: tuple[int, int], hw: tuple[int, int]
) -> Tensor:
    """Inverse of `partition_windows`: back to `(B, H, W, C)` with padding removed."""
    padded_h, padded_w = padded_hw
    rows, cols = padded_h // window, padded_w // window
    batch = windows.shape[0] // (rows * cols)
    x = windows.reshape(batch, rows, cols, window, window, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, padded_h, padded_w, -1)
    return x[:, : hw[0], : hw[1], :]


def max_pool_channels_last(x: Tensor, stride: tuple[int, int]) -> Tensor:
    """Max-pool a `(B, H, W, C)` tensor with kernel = stride."""
    pooled = F.max_pool2d(x.permute(0, 3, 1, 2), kernel_size=stride, stride=stride)
    return pooled.permute(0, 2, 3, 1)


class PatchEmbed(nn.Module):
    """7x7 stride-4 convolution from RGB to tokens. Key: `patch_embed.proj`."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, images: Tensor) -> Tensor:
        return self.proj(images).permute(0, 2, 3, 1)


class MultiScaleAttention(nn.Module):
    """Multi-head self-attention whose queries may be max-pooled (stage transitions)."""

    def __init__(
        self, dim: int, dim_out: int, num_heads: int, q_stride: tuple[int, int] | None
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_stride = q_stride
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        batch, height, width, _ = x.shape
        qkv = self.qkv(x).reshape(batch, height * width, 3, self.num_heads, -1)
        query, key, value = qkv.unbind(2)  # each (B, HW, heads, C_head)
        if self.q_stride is not None:
            query = max_pool_channels_last(query.reshape(batch, height, width, -1), self.q_stride)
            height, width = query.shape[1:3]
            query = query.reshape(batch, height * width, self.num_heads, -1)
        out = F.scaled_dot_product_attention(
            query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)
        )
        out = out.transpose(1, 2).reshape(batch, height, width, -1)
        return self.proj(out)


class MultiScaleBlock(nn.Module):
    """Pre-norm transformer block; windowed (window > 0) or global (window == 0) attention.

    A block with `q_stride` halves the resolution and changes the width to `dim_out`; its
    shortcut is projected (`proj`) and pooled the same way.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        window_size: int,
        q_stride: tuple[int, int] | None,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.window_size = window_size
        self.q_stride = q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_stride)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio), dim_out, 2, activation=nn.GELU)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        normed = self.norm1(x)
        shortcut = x
        if self.dim != self.dim_out:
            shortcut = self.proj(normed)
            if self.q_stride is not None:
                shortcut = max_pool_channels_last(shortcut, self.q_stride)
        out_hw = (shortcut.shape[1], shortcut.shape[2])
        if self.window_size > 0:
            windows, _ = partition_windows(normed, self.window_size)
            attended = self.attn(windows)
            # Pooled queries shrink each window by the stride; padding is re-derived for the output.
            window_out = self.window_size // (self.q_stride[0] if self.q_stride else 1)
            padded = tuple(-(-size // window_out) * window_out for size in out_hw)
            attended = merge_windows(attended, window_out, (padded[0], padded[1]), out_hw)
        else:
            attended = self.attn(normed)
        x = shortcut + attended
        return x + self.mlp(self.norm2(x))


class Hiera(nn.Module):
    """Hiera trunk. `forward(images (B, 3, S, S))` returns 4 maps, strides 4..32, finest first."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        stages: tuple[int, ...],
        global_attention_blocks: tuple[int, ...],
        window_spec: tuple[int, ...],
        window_pos_embed_background_size: tuple[int, int],
        q_pool: int = 3,
        q_stride: tuple[int, int] = (2, 2),
        dim_mul: float = 2.0,
        head_mul: float = 2.0,
    ) -> None:
        super().__init__()
        self.stage_ends = [sum(stages[: i + 1]) - 1 for i in range(len(stages))]
        pool_blocks = [end + 1 for end in self.stage_ends[:-1]][:q_pool]
        self.patch_embed = PatchEmbed(embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, *window_pos_embed_background_size))
        self.pos_embed_window = nn.Parameter(
            torch.zeros(1, embed_dim, window_spec[0], window_spec[0])
        )
        self.blocks = nn.ModuleList()
        dim, heads, stage = embed_dim, num_heads, 0
        for index in range(sum(stages)):
            # The first block of a stage still uses the previous stage's window size: it
            # partitions at the input resolution before its queries are pooled.
            window = 0 if index in global_attention_blocks else window_spec[stage]
            dim_out = dim
            if index - 1 in self.stage_ends:
                dim_out, heads, stage = int(dim * dim_mul), int(heads * head_mul), stage + 1
            stride = q_stride if index in pool_blocks else None
            self.blocks.append(MultiScaleBlock(dim, dim_out, heads, window, stride))
            dim = dim_out
        self.channel_list = [self.blocks[end].dim_out for end in self.stage_ends[::-1]]
        self._position_cache: tuple[tuple[object, ...], Tensor] | None = None

    def position_embedding(self, height: int, width: int) -> Tensor:
        """Background embedding resized (bicubic) to the grid plus the tiled window embedding,
        `(1, H, W, C)`. Cached while gradients are off, keyed on the parameters' versions so
        loading new weights invalidates it (parameters made under `torch.inference_mode` have
        no version counter: never cached)."""
        if torch.is_grad_enabled() or self.pos_embed.is_inference():
            return self._compute_position_embedding(height, width)
        key = (
            height,
            width,
            self.pos_embed.device,
            self.pos_embed.dtype,
            self.pos_embed._version,
            self.pos_embed_window._version,
        )
        if self._position_cache is None or self._position_cache[0] != key:
            self._position_cache = (key, self._compute_position_embedding(height, width))
        return self._position_cache[1]

    def _compute_position_embedding(self, height: int, width: int) -> Tensor:
        background = F.interpolate(self.pos_embed, size=(height, width), mode="bicubic")
        window = self.pos_embed_window
        reps = (height // window.shape[-2], width // window.shape[-1])
        return (background + window.tile(1, 1, *reps)).permute(0, 2, 3, 1)

    def forward(self, images: Tensor) -> list[Tensor]:
        x = self.patch_embed(images)
        x = x + self.position_embedding(x.shape[1], x.shape[2])
        outputs = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self.stage_ends:
                outputs.append(x.permute(0, 3, 1, 2))
        return outputs
