"""Position encodings: 2-D sine (image features), random Fourier (prompts), 1-D sine
(object-pointer temporal offsets) and axial 2-D rotary (memory attention).

All functions are pure; coordinates follow the image convention x = column, y = row.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sine_frequencies(num_feats: int, temperature: float, device: torch.device) -> Tensor:
    """Denominators `temperature^(2*floor(i/2)/num_feats)` for i in [0, num_feats), float32."""
    index = torch.arange(num_feats, dtype=torch.float32, device=device)
    return temperature ** (2 * torch.div(index, 2, rounding_mode="floor") / num_feats)


def _interleave_sin_cos(angles: Tensor) -> Tensor:
    # Even channels take sin of even frequencies, odd channels cos of odd ones, then interleave.
    stacked = torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1)
    return stacked.flatten(-2)


class SinePositionEncoding2d(nn.Module):
    """Normalised 2-D sine encoding of a feature grid (no parameters).

    `forward(x)` for `x` of shape `(B, C_any, H, W)` returns `(B, num_pos_feats, H, W)` float32,
    channels `[y-encoding (num_pos_feats/2), x-encoding (num_pos_feats/2)]`. Results are cached
    per grid size and device.
    """

    def __init__(self, num_pos_feats: int, temperature: float = 10000.0) -> None:
        super().__init__()
        if num_pos_feats % 2:
            raise ValueError("num_pos_feats must be even")
        self.axis_feats = num_pos_feats // 2
        self.temperature = temperature
        self.scale = 2 * math.pi
        self._cache: dict[tuple[int, int, str], Tensor] = {}

    def grid(self, height: int, width: int, device: torch.device) -> Tensor:
        """`(num_pos_feats, H, W)` float32 encoding of an H x W grid."""
        key = (height, width, str(device))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        # Outside inference mode, so that the cached grid can join autograd later.
        with torch.inference_mode(False):
            result = self._compute_grid(height, width, device)
        self._cache[key] = result
        return result

    def _compute_grid(self, height: int, width: int, device: torch.device) -> Tensor:
        eps = 1e-6
        ys = torch.arange(1, height + 1, dtype=torch.float32, device=device)
        xs = torch.arange(1, width + 1, dtype=torch.float32, device=device)
        ys = ys / (ys[-1] + eps) * self.scale
        xs = xs / (xs[-1] + eps) * self.scale
        freqs = sine_frequencies(self.axis_feats, self.temperature, device)
        enc_y = _interleave_sin_cos(ys[:, None] / freqs)  # (H, half)
        enc_x = _interleave_sin_cos(xs[:, None] / freqs)  # (W, half)
        enc = torch.cat(
            (
                enc_y[:, None, :].expand(height, width, -1),
                enc_x[None, :, :].expand(height, width, -1),
            ),
            dim=-1,
        )
        return enc.permute(2, 0, 1).contiguous()

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        enc = self.grid(x.shape[-2], x.shape[-1], x.device)
        return enc.unsqueeze(0).expand(x.shape[0], -1, -1, -1)


class RandomFourierEncoding(nn.Module):
    """Random spatial-frequency encoding used for point prompts and the dense image PE.

    Checkpoint key: `positional_encoding_gaussian_matrix` `(2, num_pos_feats)`.
    """

    positional_encoding_gaussian_matrix: Tensor

    def __init__(self, num_pos_feats: int = 64) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn((2, num_pos_feats)))

    def encode_normalized(self, coords: Tensor) -> Tensor:
        """`(..., 2)` xy coordinates in [0, 1] -> `(..., 2*num_pos_feats)` (sin then cos)."""
        projected = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        projected = 2 * math.pi * projected
        return torch.cat((projected.sin(), projected.cos()), dim=-1)

    def dense(self, height: int, width: int) -> Tensor:
        """`(2*num_pos_feats, H, W)` encoding of pixel centres of an H x W grid."""
        device = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(height, dtype=torch.float32, device=device) + 0.5) / height
        xs = (torch.arange(width, dtype=torch.float32, device=device) + 0.5) / width
        grid = torch.stack(
            (xs[None, :].expand(height, width), ys[:, None].expand(height, width)), dim=-1
        )
        return self.encode_normalized(grid).permute(2, 0, 1)

    def encode_points(self, coords: Tensor, image_hw: tuple[int, int]) -> Tensor:
        """`(B, N, 2)` xy pixel coordinates of the model input -> `(B, N, 2*num_pos_feats)`."""
        size = coords.new_tensor([float(image_hw[1]), float(image_hw[0])])
        return self.encode_normalized((coords / size).float())


def sine_encoding_1d(positions: Tensor, dim: int, temperature: float = 10000.0) -> Tensor:
    """1-D sine encoding `(..., ) -> (..., dim)`: `[sin(p/f_i) for i] + [cos(p/f_i) for i]`."""
    freqs = sine_frequencies(dim // 2, temperature, positions.device)
    angles = positions.unsqueeze(-1) / freqs
    return torch.cat((angles.sin(), angles.cos()), dim=-1)


def axial_rotary_angles(head_dim: int, width: int, height: int, theta: float = 10000.0) -> Tensor:
    """Rotation angles of the axial 2-D RoPE, `(height*width, head_dim/2)` float32.

    Token t sits at column `t % width`, row `t // width`. The first `head_dim/4` rotation pairs
    use the column, the rest the row.
    """
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 4)[: head_dim // 4].float() / head_dim))
    tokens = torch.arange(width * height, dtype=torch.float32)
    cols = tokens % width
    rows = torch.div(tokens, width, rounding_mode="floor")
    return torch.cat((torch.outer(cols, freqs), torch.outer(rows, freqs)), dim=-1)
