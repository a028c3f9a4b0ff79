"""Memory attention: conditions the current frame's stride-16 tokens on the memory bank.

Current tokens `(B, N, 256)` with N = h*w; memory `(B, M, 64)` = spatial memory tokens of
past frames (each h*w, rotary-encoded) followed by object-pointer tokens (not rotated).
Self-attention and cross-attention use axial 2-D RoPE on the h x w grid.
Checkpoint keys live under `memory_attention.`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from masklet.model.position_encoding import apply_rotary, axial_rotary_angles
from masklet.model.transformer import Attention


class RoPEAttention(Attention):
    """Single-grid rotary attention. Keys may span several frames of the same grid
    (`repeat` of the query angles); the last `num_k_exclude_rope` keys are not rotated."""

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
        self._angle_cache: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}

    def rotation(self, num_tokens: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """cos and sin `(N, head_dim/2)` for a square grid of `num_tokens` tokens."""
        key = (num_tokens, str(device))
        if key not in self._angle_cache:
            side = math.isqrt(num_tokens)
            if side * side != num_tokens:
                raise ValueError(f"rotary attention needs a square grid, got {num_tokens} tokens")
            head_dim = self.internal_dim // self.num_heads
            angles = axial_rotary_angles(head_dim, side, side, self.rope_theta).to(device)
            self._angle_cache[key] = (angles.cos(), angles.sin())
        return self._angle_cache[key]

    def forward_rope(self, q: Tensor, k: Tensor, v: Tensor, num_k_exclude_rope: int = 0) -> Tensor:
        query = self.split_heads(self.q_proj(q))
        key = self.split_heads(self.k_proj(k))
        value = self.split_heads(self.v_proj(v))
        cos, sin = self.rotation(query.shape[-2], query.device)
        query = apply_rotary(query, cos, sin)
        num_rotated = key.shape[-2] - num_k_exclude_rope
        if num_rotated > 0:
            repeats = num_rotated // query.shape[-2]
            rotated = apply_rotary(
                key[:, :, :num_rotated], cos.repeat(repeats, 1), sin.repeat(repeats, 1)
            )
            key = torch.cat([rotated, key[:, :, num_rotated:]], dim=2)
        dropout = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout)
        return self.out_proj(self.merge_heads(out))


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
        normed = self.norm1(x)
        x = x + self.dropout(self.self_attn.forward_rope(normed, normed, normed))
        normed = self.norm2(x)
        attended = self.cross_attn_image.forward_rope(
            normed, memory + memory_pos, memory, num_k_exclude_rope=num_pointer_tokens
        )
        x = x + self.dropout(attended)
        hidden = self.dropout(F.relu(self.linear1(self.norm3(x))))
        return x + self.dropout(self.linear2(hidden))


class MemoryAttention(nn.Module):
    """Stack of memory-attention layers plus a final LayerNorm.

    `forward(current (B, N, 256), current_pos (B, N, 256), memory (B, M, 64),
    memory_pos (B, M, 64), num_pointer_tokens)` -> `(B, N, 256)`.
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
        return self.norm(x)
