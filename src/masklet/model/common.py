"""Small building blocks shared by several model components.

Tensor convention: `B` batch, `C` channels, `H`/`W` spatial size, `N` tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MLP(nn.Module):
    """A stack of `num_layers` linear layers with an activation between them.

    Checkpoint keys: `layers.{i}.weight/bias`.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        activation: type[nn.Module] = nn.ReLU,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims_in, dims_out))
        self.act = activation()
        self.sigmoid_output = sigmoid_output

    def forward(self, x: Tensor) -> Tensor:
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < last:
                x = self.act(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a `(B, C, H, W)` tensor."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(1, keepdim=True)
        variance = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(variance + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


def flatten_spatial(x: Tensor) -> Tensor:
    """`(B, C, H, W)` -> `(B, H*W, C)` token layout (row-major over H, W)."""
    return x.flatten(2).transpose(1, 2)


def unflatten_spatial(x: Tensor, height: int, width: int) -> Tensor:
    """`(B, H*W, C)` -> `(B, C, H, W)`."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], height, width)


def pointwise_conv(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """Apply a 1x1 `conv` to `x (B, C, H, W)` as a matrix product over channels-last tokens.

    Same result as `conv(x)` (up to float rounding) but several times faster on CPU for the
    large stride-4/8 maps; the output is a channels-last-backed `(B, C_out, H, W)` view.
    """
    weight = conv.weight.reshape(conv.out_channels, conv.in_channels)
    out = F.linear(x.permute(0, 2, 3, 1), weight, conv.bias)
    return out.permute(0, 3, 1, 2)
