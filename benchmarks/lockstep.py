"""Video predictors in worker processes, stepped one frame at a time in lockstep.

Each implementation runs in its own process, as its users run it: masklet's predictors set
the C allocator to keep freed memory (`masklet.runtime.keep_freed_cpu_memory`), the reference
keeps the default one, and neither sees the other's allocations. The parent advances the
workers alternately, one frame each, so that load changes on a shared machine hit both alike.

Protocol: one JSON object per line. The parent sends `{"op": "start", ...}` (a new session
and propagation) and `{"op": "next", "count_flops": bool}`; the worker answers each with one
line (`{"done": bool, "seconds": float, "flops": float}` for `next`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

#: `prompted_tracking(predictor, folder, num_objects, size)` -> propagation generator.
Tracking = Callable[[Any, Path, int, int], Iterator[Any]]


def cpu_attention_flops(
    query_shape: Any, key_shape: Any, value_shape: Any, *_: Any, **__: Any
) -> int:
    """FLOPs of PyTorch's fused CPU attention, which `FlopCounterMode` does not count."""
    return int(sdpa_flop_count(query_shape, key_shape, value_shape))


def flop_counter() -> FlopCounterMode:
    cpu_flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    return FlopCounterMode(display=False, custom_mapping={cpu_flash: cpu_attention_flops})


def serve(predictor: Any, tracking: Tracking, precision: Callable[[str], Any]) -> None:
    """Worker loop: answer the parent's commands on stdin/stdout until stdin closes."""
    stack = ExitStack()
    generator: Iterator[Any] | None = None
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "start":
            stack.close()
            stack = ExitStack()
            stack.enter_context(torch.inference_mode())
            stack.enter_context(precision(command["dtype"]))
            generator = tracking(
                predictor, Path(command["folder"]), command["objects"], command["size"]
            )
            reply: dict[str, Any] = {"started": True}
        else:
            assert generator is not None, "next before start"
            reply = step(generator, command["count_flops"])
        print(json.dumps(reply), flush=True)
    stack.close()


def step(generator: Iterator[Any], count_flops: bool) -> dict[str, Any]:
    """One frame: its wall time, or (when counting) its FLOPs and no time."""
    counter = flop_counter() if count_flops else None
    start = time.perf_counter()
    try:
        if counter is not None:
            with counter:
                next(generator)
        else:
            next(generator)
    except StopIteration:
        return {"done": True}
    seconds = time.perf_counter() - start
    flops = float(counter.get_total_flops()) if counter is not None else 0.0
    return {"done": False, "seconds": None if count_flops else seconds, "flops": flops}


class Worker:
    """A worker process holding one predictor (started with `command`)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives with the worker
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, "TQDM_DISABLE": "1", **(env or {})},
        )

    def request(self, **command: Any) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            self._stderr.seek(0)
            raise SystemExit(f"{self.name} worker died:\n{self._stderr.read()[-3000:]}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=60)
        self._stderr.close()


class FrameRun:
    """Per-frame seconds of one worker's propagation; frame `count_flops_at` runs under a FLOP
    counter instead of being timed."""

    def __init__(self, worker: Worker, count_flops_at: int | None) -> None:
        self.worker = worker
        self.count_flops_at = count_flops_at
        self.seconds: dict[int, float] = {}
        self.flops = 0.0
        self.index = 0

    def advance(self) -> bool:
        """Run one frame; False once the propagation is over."""
        reply = self.worker.request(op="next", count_flops=self.index == self.count_flops_at)
        if reply["done"]:
            return False
        if reply["seconds"] is None:
            self.flops = reply["flops"]
        else:
            self.seconds[self.index] = reply["seconds"]
        self.index += 1
        return True

    def median(self, first: int = 1) -> float:
        """Median seconds over tracked frames from `first` on (frame 0 is the prompted one)."""
        return statistics.median(t for i, t in self.seconds.items() if i >= first)


def lockstep_runs(
    workers: list[Worker],
    folder: Path,
    num_objects: int,
    size: int,
    dtype: str,
    count_flops_at: int | None = None,
) -> dict[str, FrameRun]:
    """Start a propagation in every worker and advance them alternately to the end."""
    runs = {}
    for worker in workers:
        worker.request(op="start", folder=str(folder), objects=num_objects, size=size, dtype=dtype)
        runs[worker.name] = FrameRun(worker, count_flops_at)
    running = dict(runs)
    while running:
        for name, run in list(running.items()):
            if not run.advance():
                del running[name]
    return runs
