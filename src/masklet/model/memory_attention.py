"""Memory attention: conditions the current frame's stride-16 tokens on the memory bank.

Current tokens `(B, N, 256)` with N = h*w; memory `(B, M, 64)` = spatial memory tokens of
past frames (each h*w, rotary-encoded) followed by object-pointer tokens (not rotated).
Self-attention and cross-attention use axial 2-D RoPE on the h x w grid.
Checkpoint keys live under `memory_attention.`.

Speed notes:
- when all objects share the frame (`current` batch 1, memory batch B), the first layer's
  self-attention and query projection run once for all objects;
- rotary encoding is applied as two multiplies and an add with precomputed per-channel
  factors, and to all memory frames at once.
- The one-head rewrite softmax(QK^T)(M W_v^T + b_v) = (softmax(QK^T) M) W_v^T + b_v (value
  product in 64 instead of 256 channels) was measured and not kept on CPU: PyTorch's fused
  attention kernel needs equal query and value widths, and the unfused path is no faster.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from masklet.model.position_encoding import axial_rotary_angles
from masklet.model.transformer import Attention


class RoPEAttention(Attention):
    """Single-grid rotary attention. Keys may span several frames of the same grid (the
    query angles repeat per frame); the last `num_k_exclude_rope` keys are not rotated."""

    def __init__(
        self,
        embedding_dim: int = 256,
        num_heads: int = 1,
        kv_in_dim: int | None = None,
        dropout: float = 0.1,
        rope_theta: float = 10000.0,
    ) -> None:
        super().__init__(embedding_dim, num_heads, dropout=dropout, kv_in_dim=kv_in_dim)
        self.rope_theta = rope_theta
        self._rotation_cache: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}

    def rotation(self, num_tokens: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Per-channel factors `(N, head_dim)`: rotated = x * cos + swap_pairs(x) * signed_sin,
        for a square grid of `num_tokens` tokens."""
        key = (num_tokens, str(device))
        if key not in self._rotation_cache:
            side = math.isqrt(num_tokens)
            if side * side != num_tokens:
                raise ValueError(f"rotary attention needs a square grid, got {num_tokens} tokens")
            head_dim = self.internal_dim // self.num_heads
            angles = axial_rotary_angles(head_dim, side, side, self.rope_theta).to(device)
            cos = angles.cos().repeat_interleave(2, dim=-1)
            signed_sin = torch.stack((-angles.sin(), angles.sin()), dim=-1).flatten(-2)
            self._rotation_cache[key] = (cos, signed_sin)
        return self._rotation_cache[key]

    @staticmethod
    def rotate(x: Tensor, cos: Tensor, signed_sin: Tensor) -> Tensor:
        """Rotate channel pairs of `x (..., N, C)` (float32 math, result in x's dtype)."""
        values = x.float()
        swapped = values.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)
        return (values * cos + swapped * signed_sin).to(x.dtype)

    def rotate_frames(self, key: Tensor, num_rotated: int, cos: Tensor, sin: Tensor) -> Tensor:
        """Rotate the first `num_rotated` keys of `key (B, heads, M, C)`, frame by frame."""
        if num_rotated <= 0:
            return key
        batch, heads, _, channels = key.shape
        frames = key[:, :, :num_rotated].reshape(batch, heads, -1, cos.shape[0], channels)
        rotated = self.rotate(frames, cos, sin).flatten(2, 3)
        return torch.cat([rotated, key[:, :, num_rotated:]], dim=2)

    def forward_self(self, x: Tensor) -> Tensor:
        """Rotary self-attention of `x (B, N, C)`."""
        query = self.split_heads(self.q_proj(x))
        key = self.split_heads(self.k_proj(x))
        value = self.split_heads(self.v_proj(x))
        cos, sin = self.rotation(query.shape[-2], query.device)
        dropout = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(
            self.rotate(query, cos, sin), self.rotate(key, cos, sin), value, dropout_p=dropout
        )
        return self.out_proj(self.merge_heads(out))

    def forward_memory(
        self, x: Tensor, memory: Tensor, memory_pos: Tensor, num_k_exclude_rope: int
    ) -> Tensor:
        """Cross-attention of `x (1|B, N, C)` to `memory (B, M, C_mem)` (keys: memory + pos)."""
        query = self.split_heads(self.q_proj(x))
        cos, sin = self.rotation(query.shape[-2], query.device)
        query = self.rotate(query, cos, sin).expand(memory.shape[0], -1, -1, -1)
        key = self.split_heads(self.k_proj(memory + memory_pos))
        key = self.rotate_frames(key, key.shape[-2] - num_k_exclude_rope, cos, sin)
        value = self.split_heads(self.v_proj(memory))
        dropout = self.dropout if self.training else 0.0
        out = self.merge_heads(F.scaled_dot_product_attention(query, key, value, dropout_p=dropout))
        return self.out_proj(out)


class MemoryAttentionLayer(nn.Module):
    """Pre-norm layer: rotary self-attention, rotary cross-attention to memory, ReLU MLP."""

    def __init__(
        self,
        d_model: int = 256,
        memory_dim: int = 64,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.self_attn = RoPEAttention(d_model, dropout=dropout)
        self.cross_attn_image = RoPEAttention(d_model, kv_in_dim=memory_dim, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, memory: Tensor, memory_pos: Tensor, num_pointer_tokens: int
    ) -> Tensor:
        """`x (1|B, N, C)`; a batch-1 `x` is shared by all B memories (output batch B)."""
        x = x + self.dropout(self.self_attn.forward_self(self.norm1(x)))
        attended = self.cross_attn_image.forward_memory(
            self.norm2(x), memory, memory_pos, num_pointer_tokens
        )
        x = x + self.dropout(attended)
        hidden = self.dropout(F.relu(self.linear1(self.norm3(x))))
        return x + self.dropout(self.linear2(hidden))


class MemoryAttention(nn.Module):
    """Stack of memory-attention layers plus a final LayerNorm.

    `forward(current (1|B, N, 256), current_pos (1|B, N, 256), memory (B, M, 64),
    memory_pos (B, M, 64), num_pointer_tokens)` -> `(B, N, 256)`. A batch-1 `current` is the
    same frame for all B objects.
    """

    def __init__(self, d_model: int = 256, memory_dim: int = 64, num_layers: int = 4) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            MemoryAttentionLayer(d_model, memory_dim) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self,
        current: Tensor,
        current_pos: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        num_pointer_tokens: int = 0,
    ) -> Tensor:
        x = current + 0.1 * current_pos
        for layer in self.layers:
            x = layer(x, memory, memory_pos, num_pointer_tokens)
        return self.norm(x).expand(memory.shape[0], -1, -1)
