"""Kernel choices that depend on the machine the model runs on, as one explicit argument.

The model never looks at the host (no `/proc/cpuinfo`, no device probing): whoever builds it
passes a `ComputeOptions`, and `masklet.runtime.compute_options(device)` is what picks them
for a device. Results are the same up to float rounding whatever the options; they choose the
faster path. The defaults are the CPU float32 path.
"""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class ComputeOptions:
    """How memory cross-attention runs.

    Attributes:
        blocked_memory_attention: compute the narrow-value memory cross-attention with
            `blocked_attention` (the CPU path: PyTorch's fused CPU kernel needs equal query
            and value widths); False runs PyTorch's fused attention (GPU kernels take
            unequal widths); None (default) picks by the device of the tensors at hand, so a
            model moved with `.to()` keeps the right path.
        native_matmul_dtypes: low-precision dtypes this machine multiplies natively (bfloat16
            on x86 CPUs with AMX or AVX512-BF16). On the blocked path, cross-attention under
            autocast to any other low-precision dtype runs in float32: a CPU that emulates
            bf16/fp16 matrix products is about three times slower than in float32 there.
    """

    blocked_memory_attention: bool | None = None
    native_matmul_dtypes: tuple[torch.dtype, ...] = ()

    def uses_blocked_attention(self, device: torch.device) -> bool:
        """Whether memory cross-attention on tensors of `device` takes the blocked path."""
        if self.blocked_memory_attention is None:
            return device.type == "cpu"
        return self.blocked_memory_attention

    def blocked_attention_dtype(self, dtype: torch.dtype) -> torch.dtype:
        """The dtype the blocked path computes in when its inputs are `dtype`."""
        if dtype == torch.float32 or dtype in self.native_matmul_dtypes:
            return dtype
        return torch.float32


#: The CPU float32 path: what a model runs when nobody chooses.
DEFAULT_COMPUTE_OPTIONS = ComputeOptions()
