"""Single-head attention computed block by block with a running softmax (inference only).

Why it exists: memory cross-attention has one head whose values are a linear map of 64-wide
memory tokens, so softmax(QK^T)(M W_v^T + b_v) = (softmax(QK^T) M) W_v^T + b_v (softmax rows
sum to one). The value product then runs in 64 instead of 256 channels. PyTorch's fused CPU
attention kernel needs equal query and value widths, so this module does the blocking itself:
each block of queries meets each block of keys as two matrix products, with the running row
maximum and row sum updated as new key blocks arrive (an "online softmax"; see
`_attend_rows`). Blocks of about 1024 x 1024 keep the score tile in cache.

Tensors: `query (1|B, N, C)` already scaled by 1/sqrt(C), `key (B, M, C)`, `value (B, M, V)`;
result `(B, N, V)`. A batch-1 query is shared by all B key/value sets. Scores, softmax
statistics and the accumulator are float32 whatever the input dtype (under autocast the matrix
products run in the autocast dtype).
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Queries and keys per block: 1024 x 1024 float32 scores = 4 MiB. On a 2-core AVX-512
#: machine (4096 queries x 28736 keys) blocks from 512 to 2048 were within noise of each
#: other; 4096-wide ones were slower.
BLOCK_QUERIES = 1024
BLOCK_KEYS = 1024
#: Row sums of exp(score - kept maximum) above this mean the kept maximum is too small
#: (e^46 ~ 1e20 leaves float32 room for 1024-key sums times value magnitudes).
OVERFLOW_GUARD = 1e20


def blocked_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    block_queries: int = BLOCK_QUERIES,
    block_keys: int = BLOCK_KEYS,
) -> Tensor:
    """softmax(query key^T) value for pre-scaled `query (1|B, N, C)`, `key (B, M, C)`,
    `value (B, M, V)`; returns float32 `(B, N, V)`. Not differentiable (in-place updates)."""
    if key.shape[1] == 0:
        raise ValueError("attention needs at least one key")
    batch, num_queries = key.shape[0], query.shape[1]
    out = torch.empty(batch, num_queries, value.shape[-1], device=query.device)
    # One object at a time keeps the score tile at block_queries x block_keys, in cache.
    for item in range(batch):
        queries = query[item if query.shape[0] > 1 else 0]
        key_t = key[item].t()
        for start in range(0, num_queries, block_queries):
            rows = queries[start : start + block_queries]
            out[item, start : start + block_queries] = _attend_rows(
                rows, key_t, value[item], block_keys
            )
    return out


def _attend_rows(rows: Tensor, key_t: Tensor, value: Tensor, block_keys: int) -> Tensor:
    """One block of query rows against all keys, key block by key block.

    Weights are exp(score - running maximum). The maximum is taken from the first key block
    and kept while later blocks stay below OVERFLOW_GUARD in their row sums (then a block's
    maximum costs nothing to find); a block that exceeds it is redone against its own maximum,
    and the sums so far are shrunk to match. Terms that underflow against a kept maximum are
    below e^-87 of an earlier term and do not change the float32 result.
    """
    scores = _block_scores(rows, key_t, 0, block_keys)
    row_max = scores.amax(-1, keepdim=True)
    weights = scores.sub_(row_max).exp_()
    row_sum = weights.sum(-1, keepdim=True)
    accumulated = torch.matmul(weights, value[:block_keys]).float()
    for start in range(block_keys, key_t.shape[-1], block_keys):
        weights = _block_scores(rows, key_t, start, block_keys).sub_(row_max).exp_()
        block_sum = weights.sum(-1, keepdim=True)
        if not bool((block_sum < OVERFLOW_GUARD).all()):
            scores = _block_scores(rows, key_t, start, block_keys)
            new_max = torch.maximum(row_max, scores.amax(-1, keepdim=True))
            correction = (row_max - new_max).exp_()
            row_sum.mul_(correction)
            accumulated.mul_(correction)
            row_max = new_max
            weights = scores.sub_(row_max).exp_()
            block_sum = weights.sum(-1, keepdim=True)
        row_sum.add_(block_sum)
        accumulated.add_(torch.matmul(weights, value[start : start + block_keys]).float())
    return accumulated.div_(row_sum)


def _block_scores(rows: Tensor, key_t: Tensor, start: int, block_keys: int) -> Tensor:
    """float32 scores of `rows (n, C)` against keys `start:start+block_keys` of `key_t (C, M)`."""
    return torch.matmul(rows, key_t[..., start : start + block_keys]).float()
