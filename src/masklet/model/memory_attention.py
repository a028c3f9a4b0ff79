"""Memory attention: conditions the current frame's stride-16 tokens on the memory bank.

Current tokens `(B, N, 256)` with N = h*w; memory `(B, M, 64)` = spatial memory tokens of
past frames (each h*w, rotary-encoded) followed by object-pointer tokens (not rotated).
Self-attention and cross-attention use axial 2-D RoPE on the h x w grid.
Checkpoint keys live under `memory_attention.`.

Speed notes:
- when all objects share the frame (`current` batch 1, memory batch B), the first layer's
  self-attention and query projection run once for all objects;
- rotary encoding is one complex multiply with precomputed factors, applied to all memory
  frames at once.
- without autograd, cross-attention uses the one-head rewrite softmax(QK^T)(M W_v^T + b_v) =
  (softmax(QK^T) M) W_v^T + b_v: the value product runs in 64 instead of 256 channels, in
  `blocked_attention` (PyTorch's fused CPU kernel needs equal query and value widths). With
  autograd (training) the plain formulation runs. Under bf16 autocast on a CPU without bf16
  matrix units it runs in float32, which is faster there.

Which of these kernels runs is the explicit `ComputeOptions` argument, held by
`MemoryAttention` and passed down to each layer's call; the model never reads the host.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from masklet.model.blocked_attention import blocked_attention
from masklet.model.compute import DEFAULT_COMPUTE_OPTIONS, ComputeOptions
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
        self._rotation_cache: dict[tuple[int, str], Tensor] = {}

    def rotation(self, num_tokens: int, device: torch.device) -> Tensor:
        """Complex rotation factors `(N, head_dim/2)` for a square grid of `num_tokens`
        tokens: channel pair (2i, 2i+1) of token t is multiplied by factor[t, i]."""
        key = (num_tokens, str(device))
        if key not in self._rotation_cache:
            side = math.isqrt(num_tokens)
            if side * side != num_tokens:
                raise ValueError(f"rotary attention needs a square grid, got {num_tokens} tokens")
            head_dim = self.internal_dim // self.num_heads
            # Built outside inference mode: a factor made under inference_mode could never
            # take part in autograd afterwards (training after a validation pass).
            with torch.inference_mode(False):
                angles = axial_rotary_angles(head_dim, side, side, self.rope_theta).to(device)
                self._rotation_cache[key] = torch.polar(torch.ones_like(angles), angles)
        return self._rotation_cache[key]

    @staticmethod
    def rotate(x: Tensor, factors: Tensor) -> Tensor:
        """Rotate channel pairs of `x (..., N, C)` by complex `factors (N, C/2)` (float32
        math, result in x's dtype); one complex multiply is a single pass over x."""
        pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))
        return torch.view_as_real(pairs * factors).flatten(-2).to(x.dtype)

    def rotate_frames(self, key: Tensor, num_rotated: int, factors: Tensor) -> Tensor:
        """Rotate the first `num_rotated` keys of `key (B, heads, M, C)`, frame by frame."""
        if num_rotated <= 0:
            return key
        batch, heads, _, channels = key.shape
        frames = key[:, :, :num_rotated].reshape(batch, heads, -1, factors.shape[0], channels)
        rotated = self.rotate(frames, factors).flatten(2, 3)
        return torch.cat([rotated, key[:, :, num_rotated:]], dim=2)

    def forward_self(self, x: Tensor) -> Tensor:
        """Rotary self-attention of `x (B, N, C)`."""
        query = self.split_heads(self.q_proj(x))
        key = self.split_heads(self.k_proj(x))
        value = self.split_heads(self.v_proj(x))
        factors = self.rotation(query.shape[-2], query.device)
        dropout = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(
            self.rotate(query, factors), self.rotate(key, factors), value, dropout_p=dropout
        )
        return self.out_proj(self.merge_heads(out))

    def forward_memory(
        self,
        x: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        num_k_exclude_rope: int,
        options: ComputeOptions = DEFAULT_COMPUTE_OPTIONS,
    ) -> Tensor:
        """Cross-attention of `x (1|B, N, C)` to `memory (B, M, C_mem)` (keys: memory + pos);
        `options` picks the kernels of the one-head inference path."""
        if self.num_heads == 1 and not torch.is_grad_enabled():
            return self._forward_memory_narrow_values(
                x, memory, memory_pos, num_k_exclude_rope, options
            )
        query = self.split_heads(self.q_proj(x))
        factors = self.rotation(query.shape[-2], query.device)
        query = self.rotate(query, factors).expand(memory.shape[0], -1, -1, -1)
        key = self.split_heads(self.k_proj(memory + memory_pos))
        key = self.rotate_frames(key, key.shape[-2] - num_k_exclude_rope, factors)
        value = self.split_heads(self.v_proj(memory))
        dropout = self.dropout if self.training else 0.0
        out = self.merge_heads(F.scaled_dot_product_attention(query, key, value, dropout_p=dropout))
        return self.out_proj(out)

    def _forward_memory_narrow_values(
        self,
        x: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        num_k_exclude_rope: int,
        options: ComputeOptions,
    ) -> Tensor:
        """`forward_memory` for one head without autograd: the value and output projections
        are applied after attention, to the 64-wide attended memory, as one fused linear map
        (W_o W_v, W_o b_v + b_o); see `blocked_attention`."""
        query = self.q_proj(x)
        factors = self.rotation(query.shape[-2], query.device)
        query = self.rotate(query, factors) * query.shape[-1] ** -0.5
        key = self.k_proj(memory + memory_pos)
        key = self.rotate_frames(key[:, None], key.shape[-2] - num_k_exclude_rope, factors)
        attended = narrow_value_attention(query, key[:, 0], memory, options)
        weight = self.out_proj.weight @ self.v_proj.weight
        bias = self.out_proj.weight @ self.v_proj.bias + self.out_proj.bias
        return F.linear(attended.to(x.dtype), weight, bias)


def narrow_value_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    options: ComputeOptions = DEFAULT_COMPUTE_OPTIONS,
) -> Tensor:
    """softmax(query key^T) value for pre-scaled `query (1|B, N, C)`, `key (B, M, C)` and
    narrower `value (B, M, V)` -> `(B, N, V)`. `options.uses_blocked_attention` picks
    `blocked_attention` (the CPU path); otherwise PyTorch's attention runs (GPU kernels take
    unequal widths)."""
    if options.uses_blocked_attention(query.device):
        compute_dtype = options.blocked_attention_dtype(query.dtype)
        if compute_dtype == query.dtype:
            return blocked_attention(query, key, value)
        # Without bf16/fp16 units the CPU emulates low-precision matrix products at a third of
        # the float32 speed: the heaviest part of the frame is faster (and exact) in float32.
        with torch.autocast("cpu", enabled=False):
            return blocked_attention(query.float(), key.float(), value.float())
    query = query.expand(key.shape[0], -1, -1)[:, None]
    attended = F.scaled_dot_product_attention(query, key[:, None], value[:, None], scale=1.0)
    return attended[:, 0]


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
        self,
        x: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        num_pointer_tokens: int,
        options: ComputeOptions = DEFAULT_COMPUTE_OPTIONS,
    ) -> Tensor:
        """`x (1|B, N, C)`; a batch-1 `x` is shared by all B memories (output batch B)."""
        x = x + self.dropout(self.self_attn.forward_self(self.norm1(x)))
        attended = self.cross_attn_image.forward_memory(
            self.norm2(x), memory, memory_pos, num_pointer_tokens, options
        )
        x = x + self.dropout(attended)
        hidden = self.dropout(F.relu(self.linear1(self.norm3(x))))
        return x + self.dropout(self.linear2(hidden))


class MemoryAttention(nn.Module):
    """Stack of memory-attention layers plus a final LayerNorm.

    `forward(current (1|B, N, 256), current_pos (1|B, N, 256), memory (B, M, 64),
    memory_pos (B, M, 64), num_pointer_tokens)` -> `(B, N, 256)`. A batch-1 `current` is the
    same frame for all B objects. `compute_options` (a plain attribute, not saved in checkpoints)
    picks the kernels; see `ComputeOptions`.
    """

    def __init__(
        self,
        d_model: int = 256,
        memory_dim: int = 64,
        num_layers: int = 4,
        compute_options: ComputeOptions = DEFAULT_COMPUTE_OPTIONS,
        dim_feedforward: int = 2048,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            MemoryAttentionLayer(d_model, memory_dim, dim_feedforward) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.compute_options = compute_options

    def forward(
        self,
        current: Tensor,
        current_pos: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        num_pointer_tokens: int = 0,
    ) -> Tensor:
        """Condition `current` on `memory`; the last `num_pointer_tokens` memory tokens are
        object pointers (not rotated)."""
        x = current + 0.1 * current_pos
        for layer in self.layers:
            x = layer(x, memory, memory_pos, num_pointer_tokens, self.compute_options)
        return self.norm(x).expand(memory.shape[0], -1, -1)
