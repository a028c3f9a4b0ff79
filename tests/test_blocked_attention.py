"""Blocked (online-softmax) attention and the narrow-value memory cross-attention."""

from __future__ import annotations

import pytest
import torch

from masklet.model.blocked_attention import blocked_attention
from masklet.model.compute import ComputeOptions
from masklet.model.memory_attention import RoPEAttention, narrow_value_attention

UNIT_ROUNDOFF = 2.0**-24  # float32


def gamma(n: int) -> float:
    """The classic bound n u / (1 - n u) on the relative rounding error of n float32 steps."""
    return n * UNIT_ROUNDOFF / (1 - n * UNIT_ROUNDOFF)


def rounding_bound(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Per-element bound on the float32 error of softmax(query key^T) value, `(B, Q, C)`.

    Why this bound, not a flat tolerance: the error depends on which kernels the CPU runs (AVX2
    or AVX-512 sum in other orders), so the test needs a bound that holds for any order. Each
    score q.k_j of d products is off by at most gamma(d) sum_i |q_i k_ji| (any summation order);
    to first order a score error d_j moves the output by sum_j p_j d_j (v_j - o). The weighted
    sum over n keys adds at most gamma(n + 4) sum_j p_j |v_j| (exp, shift and division included).
    """
    query, key, value = query.double(), key.double(), value.double()
    weights = (query @ key.transpose(-1, -2)).softmax(-1)  # (B, Q, K)
    output = weights @ value  # (B, Q, C)
    score_error = gamma(query.shape[-1]) * (query.abs() @ key.abs().transpose(-1, -2))
    spread = (value[:, None, :, :] - output[:, :, None, :]).abs()  # (B, Q, K, C)
    from_scores = torch.einsum("bqk,bqkc->bqc", weights * score_error, spread)
    from_sums = gamma(key.shape[-2] + 4) * (weights @ value.abs())
    return from_scores + from_sums


def reference_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor
) -> torch.Tensor:
    """softmax(query key^T) value in float64 (query already scaled)."""
    scores = query.double() @ key.double().transpose(-1, -2)
    return (scores.softmax(-1) @ value.double()).float()


@pytest.mark.parametrize(
    ("query_batch", "batch", "num_queries", "num_keys", "block_queries", "block_keys"),
    [
        (1, 3, 50, 130, 16, 32),
        (2, 2, 64, 64, 64, 64),
        (1, 1, 7, 300, 5, 1000),
        (1, 2, 33, 97, 8, 7),
    ],
)
def test_blocked_attention_matches_softmax(
    query_batch: int,
    batch: int,
    num_queries: int,
    num_keys: int,
    block_queries: int,
    block_keys: int,
) -> None:
    generator = torch.Generator().manual_seed(num_keys)
    query = torch.randn(query_batch, num_queries, 32, generator=generator)
    key = torch.randn(batch, num_keys, 32, generator=generator)
    value = torch.randn(batch, num_keys, 8, generator=generator)
    got = blocked_attention(query, key, value, block_queries, block_keys)
    assert got.shape == (batch, num_queries, 8)
    error = (got.double() - reference_attention(query, key, value).double()).abs()
    bound = rounding_bound(query.expand(batch, -1, -1), key, value)
    assert (error <= bound).all(), float((error / bound).max())


def test_blocked_attention_rescales_when_a_later_block_dominates() -> None:
    # Scores grow by ~200 per key block: without rescaling exp() would overflow.
    query = torch.ones(1, 4, 2)
    key = torch.arange(0, 40, dtype=torch.float32).repeat_interleave(2).view(1, 40, 2) * 10.0
    value = torch.randn(1, 40, 3)
    got = blocked_attention(query, key, value, block_queries=3, block_keys=10)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, reference_attention(query, key, value))


def test_blocked_attention_rejects_empty_keys() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        blocked_attention(torch.zeros(1, 3, 4), torch.zeros(1, 0, 4), torch.zeros(1, 0, 2))


@pytest.mark.parametrize("query_batch", [1, 2])
def test_narrow_value_cross_attention_equals_plain_path(query_batch: int) -> None:
    torch.manual_seed(0)
    attention = RoPEAttention(64, kv_in_dim=16).eval()
    x = torch.randn(query_batch, 16, 64)
    memory = torch.randn(2, 3 * 16 + 8, 16)
    memory_pos = torch.randn_like(memory)
    with torch.enable_grad():  # autograd on: the plain multiply-then-attend formulation
        plain = attention.forward_memory(x, memory, memory_pos, 8)
    with torch.no_grad():
        narrow = attention.forward_memory(x, memory, memory_pos, 8)
    torch.testing.assert_close(narrow, plain.detach(), atol=2e-6, rtol=1e-5)


def test_narrow_value_path_under_bf16_autocast_stays_close() -> None:
    torch.manual_seed(1)
    attention = RoPEAttention(64, kv_in_dim=16).eval()
    x, memory = torch.randn(1, 16, 64), torch.randn(1, 2 * 16, 16)
    with torch.no_grad():
        full = attention.forward_memory(x, memory, torch.zeros_like(memory), 0)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = attention.forward_memory(x, memory, torch.zeros_like(memory), 0)
    assert low.dtype == torch.bfloat16
    assert (low.float() - full).abs().max() < 0.05 * full.abs().max()


def test_rotation_is_a_rotation() -> None:
    attention = RoPEAttention(64)
    factors = attention.rotation(16, torch.device("cpu"))
    x = torch.randn(2, 16, 64)
    rotated = RoPEAttention.rotate(x, factors)
    # Pairwise rotations keep each channel pair's length; token 0 (angle 0) is unchanged.
    torch.testing.assert_close(
        rotated.unflatten(-1, (-1, 2)).norm(dim=-1), x.unflatten(-1, (-1, 2)).norm(dim=-1)
    )
    torch.testing.assert_close(rotated[:, 0], x[:, 0])


def test_blocked_attention_keeps_tiny_later_blocks() -> None:
    # Later key blocks score far below the first block's maximum: their weights underflow.
    query = torch.ones(1, 3, 2)
    key = torch.cat([torch.full((1, 4, 2), 50.0), torch.full((1, 8, 2), -50.0)], dim=1)
    value = torch.randn(1, 12, 3)
    got = blocked_attention(query, key, value, block_queries=2, block_keys=4)
    torch.testing.assert_close(got, reference_attention(query, key, value))


def test_narrow_value_attention_paths_agree() -> None:
    torch.manual_seed(2)
    query, key, value = torch.randn(1, 20, 16) / 4, torch.randn(3, 40, 16), torch.randn(3, 40, 4)
    blocked = narrow_value_attention(query, key, value, ComputeOptions())
    fused = narrow_value_attention(
        query, key, value, ComputeOptions(blocked_memory_attention=False)
    )
    assert blocked.shape == fused.shape == (3, 20, 4)
    torch.testing.assert_close(blocked, fused, atol=2e-6, rtol=1e-5)


def _recorded_blocked_dtypes(
    monkeypatch: pytest.MonkeyPatch, options: ComputeOptions
) -> list[torch.dtype]:
    """The query dtypes `blocked_attention` sees for one narrow-value call under bf16
    autocast with `options`."""
    import masklet.model.memory_attention as memory_attention

    seen: list[torch.dtype] = []

    def recording(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        seen.append(query.dtype)
        return blocked_attention(query, key, value)

    monkeypatch.setattr(memory_attention, "blocked_attention", recording)
    query, key, value = torch.randn(1, 8, 16), torch.randn(2, 12, 16), torch.randn(2, 12, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        narrow_value_attention(query.bfloat16(), key.bfloat16(), value.bfloat16(), options)
    return seen


def test_compute_options_pick_the_blocked_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    # Default (no native bf16 units declared): the blocked product runs in float32.
    assert _recorded_blocked_dtypes(monkeypatch, ComputeOptions()) == [torch.float32]
    native = ComputeOptions(native_matmul_dtypes=(torch.bfloat16,))
    assert _recorded_blocked_dtypes(monkeypatch, native) == [torch.bfloat16]
    fused = ComputeOptions(blocked_memory_attention=False)
    assert _recorded_blocked_dtypes(monkeypatch, fused) == []
    assert ComputeOptions().blocked_attention_dtype(torch.float16) == torch.float32
