"""Runtime settings: dtype/device resolution, the model's compute options and the CPU
allocator setting."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from masklet.errors import InputError
from masklet.runtime import (
    SYSTEM_MALLOC_VARIABLE,
    compute_options,
    compute_options_for,
    cpu_has_native_bf16,
    resolve_dtype,
)

#: Run in a fresh interpreter: the allocator setting is process-wide and applied once.
ALLOCATOR_PROBE = textwrap.dedent(
    """
    import resource, torch
    from masklet.runtime import keep_freed_cpu_memory
    applied = keep_freed_cpu_memory()
    for _ in range(3):  # the heap settles after a few blocks of this size
        torch.empty(64 << 20, dtype=torch.uint8).fill_(1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        torch.empty(64 << 20, dtype=torch.uint8).fill_(1)  # 64 MiB, freed at once
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(applied, faults)
    """
)


def allocator_probe(env: dict[str, str]) -> tuple[bool, int]:
    result = subprocess.run(
        [sys.executable, "-c", ALLOCATOR_PROBE], capture_output=True, text=True, env=env, check=True
    )
    applied, faults = result.stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator setting")
def test_kept_heap_reuses_pages_and_can_be_turned_off() -> None:
    base = {k: v for k, v in os.environ.items() if k != SYSTEM_MALLOC_VARIABLE}
    applied, kept_faults = allocator_probe(base)
    if not applied:
        pytest.skip("not glibc")
    skipped, default_faults = allocator_probe({**base, SYSTEM_MALLOC_VARIABLE: "1"})
    assert not skipped
    # 5 x 64 MiB of fresh pages by default (16384 faults each); reused pages with the kept heap.
    assert default_faults > 5 * 10_000
    assert kept_faults < 1_000


def test_resolve_dtype_names() -> None:
    assert resolve_dtype("fp32", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(InputError, match="unknown dtype"):
        resolve_dtype("int8", torch.device("cpu"))


def test_compute_options_follow_the_device() -> None:
    cpu = compute_options("cpu")
    assert cpu.native_matmul_dtypes == ((torch.bfloat16,) if cpu_has_native_bf16() else ())
    # The attention path follows the tensors' device (no GPU needed to check the rule), so a
    # model built for one device and moved to another keeps the right path.
    assert cpu.uses_blocked_attention(torch.device("cpu"))
    assert not compute_options(torch.device("cuda", 0)).uses_blocked_attention(
        torch.device("cuda", 0)
    )
    assert not cpu.uses_blocked_attention(torch.device("meta"))
    assert compute_options_for(torch.nn.Linear(2, 2)) == cpu
    assert compute_options_for(torch.nn.Identity()) == cpu  # no parameters: CPU
