"""Device, dtype, kernel and CPU allocator settings shared by the CLI, the builders and the
predictors: this module reads the host so that the model does not have to.

`auto` precision picks bfloat16 autocast where the hardware multiplies bf16 natively (CUDA
GPUs with bf16 support, x86 CPUs with AMX or AVX512-BF16) and float32 elsewhere.

`compute_options(device)` is the model's `ComputeOptions` for a device: blocked memory
attention on the CPU (fused attention elsewhere), in bf16 under autocast only where the CPU
multiplies bf16 natively.

`keep_freed_cpu_memory` (called by the predictors for CPU models) tells glibc's allocator to
keep freed memory for reuse instead of returning it to the system.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import torch

from masklet.errors import InputError
from masklet.model.compute import ComputeOptions

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU advertises AMX-BF16 or AVX512-BF16 (Linux `/proc/cpuinfo`)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def compute_options(device: str | torch.device) -> ComputeOptions:
    """The model's kernel choices for `device` on this host (same for every autocast dtype:
    the dtype at hand picks among them at run time). The attention path follows the device of
    the tensors (`blocked_memory_attention=None`), so a model moved later stays right; the
    host decides which low-precision products the CPU path keeps."""
    del device  # every choice that depends on the device is made from the tensors
    native = (torch.bfloat16,) if cpu_has_native_bf16() else ()
    return ComputeOptions(native_matmul_dtypes=native)


def compute_options_for(model: torch.nn.Module) -> ComputeOptions:
    """`compute_options` for the device of `model`'s parameters (CPU when it has none)."""
    parameter = next(model.parameters(), None)
    return compute_options(parameter.device if parameter is not None else "cpu")


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """Map `auto|float32|bfloat16|float16` (and short forms) to a compute dtype for `device`."""
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    if name not in DTYPES:
        raise InputError(f"unknown dtype {name!r}; use auto, float32, bfloat16 or float16")
    return DTYPES[name]


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; otherwise the named device (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but CUDA is not available")
    return device


@contextlib.contextmanager
def autocast_for(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Autocast to `dtype` on `device` (no-op for float32)."""
    if dtype == torch.float32:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


#: glibc `mallopt` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
#: Free memory at the top of the heap above this is returned to the system (bytes).
_TRIM_THRESHOLD = 1 << 30
#: Set to any value to leave the C allocator as it is.
SYSTEM_MALLOC_VARIABLE = "MASKLET_SYSTEM_MALLOC"


@lru_cache(maxsize=1)
def keep_freed_cpu_memory() -> bool:
    """Make glibc malloc serve every block from its heap and keep freed memory (up to 1 GiB
    free at the top) for reuse; True when applied.

    Why: by default each tensor above 32 MiB is a fresh `mmap` and each smaller one above the
    adaptive threshold can be too, so every frame touches hundreds of MiB of new pages; the page
    faults cost about 10% of a 1024 px frame on CPU. With the heap kept, later frames reuse the
    same pages. Peak resident memory is unchanged (it is reached in the first frame anyway);
    the resident size no longer drops between frames. Process-wide, once; a no-op off Linux or
    glibc, or when the environment variable MASKLET_SYSTEM_MALLOC is set.
    """
    if not sys.platform.startswith("linux") or os.environ.get(SYSTEM_MALLOC_VARIABLE):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl's mallopt does nothing)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


def keep_freed_memory_for(model: torch.nn.Module) -> None:
    """`keep_freed_cpu_memory` when `model`'s parameters live on the CPU."""
    parameter = next(model.parameters(), None)
    if parameter is not None and parameter.device.type == "cpu":
        keep_freed_cpu_memory()
