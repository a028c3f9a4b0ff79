"""Video benchmark: masklet vs the reference (sam2==1.1.0) on the same random weights.

On a real video (opencv-doc's vtest.avi, from `../shared/data/fetch-samples.sh`), frames
decoded with PyAV, resized to a square and written once as a JPEG folder that both sides read:

1. time per tracked frame, 1 object, fp32 and under CPU bfloat16 autocast: the median over all
   tracked frames, and over the frames where the memory bank is full (from tracked frame 7 on:
   the prompted frame + 6 previous ones), which is what every frame of a long video costs;
2. FLOPs per tracked frame (`FlopCounterMode`, plus PyTorch's fused CPU attention, which it
   does not count) on the last, full-memory frame, and achieved GFLOP/s as a share of a matmul
   peak measured in the same run, per dtype;
3. time per tracked frame with 1, 3 and 8 objects (clicks spread over the first frame);
4. peak RSS for a short and a long video (60 vs 600 frames at 512 px by default), each
   configuration in its own subprocess (its peak RSS: `VmHWM`, see `peak_rss_kib`).

Each implementation runs in its own worker process, as its users run it (masklet's predictors
keep freed memory in glibc's heap, see `masklet.runtime.keep_freed_cpu_memory`; the reference
uses the default allocator; `--same-allocator` runs masklet with the default one too); the
parent advances the workers alternately, one frame each (`lockstep.py`).
Ratios are masklet / reference, measured in the same run. Hole filling is off on both sides
(the reference skips it on CPU). The reference decodes every frame in `init_state`, masklet
on demand, so masklet's per-frame time includes reading one JPEG.
Run: `python benchmarks/video.py` (`--quick` for a smoke run, `--help` for sizes and counts).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import masklet
from lockstep import FrameRun, Worker, lockstep_runs, serve
from masklet.runtime import SYSTEM_MALLOC_VARIABLE, autocast_for, cpu_has_native_bf16
from oracle import build_oracle_video_predictor, oracle_checkpoint

DEFAULT_VIDEO = Path.home() / ".cache" / "masklet-samples" / "videos" / "vtest.avi"
CPU = torch.device("cpu")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


# ---------------------------------------------------------------- video and predictors


def write_frame_folder(video: Path, folder: Path, num_frames: int, size: int) -> Path:
    """Decode the first `num_frames` frames with PyAV, resize to size x size, save as JPEG."""
    import av
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            image = frame.to_image().convert("RGB").resize((size, size), Image.BICUBIC)
            image.save(folder / f"{written:05d}.jpg", quality=90)
            written += 1
            if written == num_frames:
                break
    if written < num_frames:
        raise SystemExit(f"{video} has only {written} frames, {num_frames} were asked for")
    return folder


def make_predictor(impl: str, preset: str, size: int, checkpoint: str) -> Any:
    """One video predictor on the shared random weights, hole filling off."""
    if impl == "masklet":
        return masklet.build_sam2_video_predictor(
            preset, checkpoint=checkpoint, image_size=size, fill_hole_area=0
        )
    return build_oracle_video_predictor(preset, size)


def start_workers(args: argparse.Namespace, checkpoint: Path) -> list[Worker]:
    """One worker process per implementation (see `lockstep`)."""
    workers = []
    for impl in ("masklet", "reference"):
        command = [sys.executable, __file__, "--worker", impl, "--preset", args.preset]
        command += ["--size", str(args.size), "--worker-checkpoint", str(checkpoint)]
        env = {SYSTEM_MALLOC_VARIABLE: "1"} if args.same_allocator else None
        workers.append(Worker(impl, command, env))
    return workers


def object_clicks(num_objects: int, size: int) -> list[tuple[float, float]]:
    """`num_objects` click positions spread over a grid in the frame (pixels)."""
    columns = int(np.ceil(np.sqrt(num_objects)))
    rows = int(np.ceil(num_objects / columns))
    return [
        ((column + 0.5) / columns * size, (row + 0.5) / rows * size)
        for row in range(rows)
        for column in range(columns)
    ][:num_objects]


def prompted_tracking(predictor: Any, folder: Path, num_objects: int, size: int) -> Iterator[Any]:
    """A fresh session with one click per object on frame 0; its propagation generator."""
    state = predictor.init_state(str(folder))
    for obj_id, (x, y) in enumerate(object_clicks(num_objects, size), start=1):
        predictor.add_new_points_or_box(
            state, 0, obj_id, points=np.array([[x, y]], np.float32), labels=np.array([1], np.int32)
        )
    return iter(predictor.propagate_in_video(state))


def precision(dtype: torch.dtype) -> AbstractContextManager[None]:
    return autocast_for(CPU, dtype)


# ---------------------------------------------------------------- timing


#: Tracked frame index from which the memory bank is full (prompted frame + 6 previous).
FULL_MEMORY_FROM = 7


def matmul_peak(dtype: torch.dtype, n: int = 2048, runs: int = 5) -> float:
    """FLOP/s of an n x n x n matmul in `dtype` (median of `runs`)."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2.0 * n**3 / statistics.median(times)


# ---------------------------------------------------------------- sections


def bench_per_frame(
    workers: list[Worker], folder: Path, size: int, dtype_labels: list[str]
) -> None:
    runs: dict[tuple[str, str], FrameRun] = {}
    peaks: dict[str, float] = {}
    # FLOPs are counted on the last frame, with the memory bank full; it is not timed.
    count_at = len(list(folder.iterdir())) - 1
    for label in dtype_labels:
        for name, run in lockstep_runs(workers, folder, 1, size, label, count_at).items():
            runs[(name, label)] = run
        peaks[label] = matmul_peak(DTYPES[label])
    print(f"\nper tracked frame, 1 object, {size}px, medians over the propagated frames")
    print(
        f"{'impl':10} {'dtype':5} {'ms all':>8} {'ms full':>8} {'/ref fp32':>9} "
        f"{'/ref same':>9} {'GFLOP/frame':>11} {'GFLOP/s':>8} {'peak GFLOP/s':>12} {'% of peak':>9}"
    )
    base = runs.get(("reference", "fp32"))
    for (name, label), run in runs.items():
        full = run.median(FULL_MEMORY_FROM)
        same = runs[("reference", label)].median(FULL_MEMORY_FROM)
        to_fp32 = f"{full / base.median(FULL_MEMORY_FROM):9.2f}" if base else f"{'-':>9}"
        achieved = run.flops / full
        print(
            f"{name:10} {label:5} {run.median() * 1e3:8.0f} {full * 1e3:8.0f} {to_fp32} "
            f"{full / same:9.2f} {run.flops / 1e9:11.1f} {achieved / 1e9:8.1f} "
            f"{peaks[label] / 1e9:12.1f} {100 * achieved / peaks[label]:9.1f}"
        )
    print(
        f"'ms all': median over all tracked frames; 'ms full': over frames >= {FULL_MEMORY_FROM}, "
        "where the memory bank is full (a long video's steady state); ratios use 'ms full'; "
        "FLOPs: the last frame"
    )


def bench_objects(workers: list[Worker], folder: Path, size: int, object_counts: list[int]) -> None:
    full_memory = len(list(folder.iterdir())) > FULL_MEMORY_FROM + 1
    print(f"\nper tracked frame vs number of objects, fp32, {size}px, medians (ms)")
    header = f"{'objects':>7} {'masklet all':>11} {'reference all':>13} {'ratio all':>9}"
    print(
        header + (f" {'masklet full':>12} {'reference full':>14} {'ratio full':>10}" * full_memory)
    )
    for count in object_counts:
        runs = lockstep_runs(workers, folder, count, size, "fp32")
        line = f"{count:7d}"
        for first in [1, FULL_MEMORY_FROM] if full_memory else [1]:
            ours, theirs = runs["masklet"].median(first), runs["reference"].median(first)
            line += f" {ours * 1e3:11.0f} {theirs * 1e3:13.0f} {ours / theirs:9.2f}"
        print(line)


def peak_rss_kib() -> float:
    """This process's peak resident set size in KiB: `VmHWM` of /proc/self/status where it
    exists, else `ru_maxrss`. On Linux `ru_maxrss` survives exec, so a child started by a
    parent that holds two models reports at least the parent's peak; `VmHWM` belongs to the
    child's own address space."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def rss_child(impl: str, preset: str, size: int, folder: str, checkpoint: str) -> None:
    """Subprocess body: build one predictor, track 1 object through the whole folder, print
    the process's peak RSS (MiB) and wall time as JSON."""
    predictor = make_predictor(impl, preset, size, checkpoint)
    start = time.perf_counter()
    frames = 0
    with torch.inference_mode():
        for _ in prompted_tracking(predictor, Path(folder), 1, size):
            frames += 1
    print(
        json.dumps(
            {
                "rss_mib": peak_rss_kib() / 1024,
                "frames": frames,
                "seconds": time.perf_counter() - start,
            }
        )
    )


def bench_rss(args: argparse.Namespace, directory: str) -> None:
    print(f"\npeak RSS, 1 object, fp32, {args.rss_size}px, one subprocess per configuration")
    print(
        f"{'frames':>6} {'masklet MiB':>11} {'reference MiB':>13} {'masklet/ref':>11} "
        f"{'masklet s':>9} {'reference s':>11}"
    )
    checkpoint = oracle_checkpoint(args.preset, args.rss_size, directory)
    for num_frames in args.rss_frames:
        folder = write_frame_folder(
            args.video,
            Path(directory) / f"rss_{args.rss_size}_{num_frames}",
            num_frames,
            args.rss_size,
        )
        results = {}
        for impl in ("masklet", "reference"):
            command = [
                sys.executable,
                __file__,
                "--rss-child",
                impl,
                "--preset",
                args.preset,
                "--rss-size",
                str(args.rss_size),
                "--rss-folder",
                str(folder),
                "--rss-checkpoint",
                str(checkpoint),
            ]
            env = {**os.environ, "TQDM_DISABLE": "1"}
            completed = subprocess.run(command, capture_output=True, text=True, env=env)
            if completed.returncode != 0:
                raise SystemExit(f"{impl} subprocess failed:\n{completed.stderr[-3000:]}")
            results[impl] = json.loads(completed.stdout.strip().splitlines()[-1])
        ours, theirs = results["masklet"], results["reference"]
        print(
            f"{num_frames:6d} {ours['rss_mib']:11.0f} {theirs['rss_mib']:13.0f} "
            f"{ours['rss_mib'] / theirs['rss_mib']:11.2f} {ours['seconds']:9.1f} "
            f"{theirs['seconds']:11.1f}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="sam2.1_hiera_t")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--size", type=int, default=1024, help="frame/model size for timing")
    parser.add_argument("--frames", type=int, default=16, help="frames tracked per timing run")
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 3, 8])
    parser.add_argument("--object-frames", type=int, default=6, help="frames per object run")
    parser.add_argument("--rss-size", type=int, default=512)
    parser.add_argument("--rss-frames", type=int, nargs="+", default=[60, 600])
    parser.add_argument("--skip", nargs="*", default=[], choices=["frame", "objects", "rss"])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run of every section")
    parser.add_argument(
        "--same-allocator",
        action="store_true",
        help=f"run masklet with the default C allocator too ({SYSTEM_MALLOC_VARIABLE}=1)",
    )
    parser.add_argument("--rss-child", choices=["masklet", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["masklet", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--rss-folder", help=argparse.SUPPRESS)
    parser.add_argument("--rss-checkpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.size, args.frames, args.objects, args.object_frames = 256, 9, [1, 3], 3
        args.rss_size, args.rss_frames = 256, [8, 24]
    return args


def run_section(name: str, args: argparse.Namespace, action: Callable[[], None]) -> None:
    if name not in args.skip:
        start = time.perf_counter()
        action()
        print(f"({name}: {time.perf_counter() - start:.0f} s)")


def main() -> None:
    args = parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.preset, args.rss_size, args.rss_folder, args.rss_checkpoint)
        return
    if args.worker:
        predictor = make_predictor(args.worker, args.preset, args.size, args.worker_checkpoint)
        serve(predictor, prompted_tracking, lambda label: precision(DTYPES[label]))
        return
    if not args.video.exists():
        raise SystemExit(f"{args.video} not found: run ../shared/data/fetch-samples.sh first")
    print(
        f"{args.preset}, video {args.video.name}, {torch.get_num_threads()} threads, "
        f"native bf16 matmul (AMX/AVX512-BF16): {cpu_has_native_bf16()}"
    )
    with tempfile.TemporaryDirectory() as directory:
        frame_folder = write_frame_folder(
            args.video, Path(directory) / "timing", args.frames + 1, args.size
        )
        object_folder = write_frame_folder(
            args.video, Path(directory) / "objects", args.object_frames + 1, args.size
        )
        workers: list[Worker] = []
        if not {"frame", "objects"} <= set(args.skip):
            workers = start_workers(args, oracle_checkpoint(args.preset, args.size, directory))
        try:
            run_section(
                "frame",
                args,
                lambda: bench_per_frame(workers, frame_folder, args.size, args.dtypes),
            )
            run_section(
                "objects",
                args,
                lambda: bench_objects(workers, object_folder, args.size, args.objects),
            )
        finally:
            for worker in workers:
                worker.close()
        run_section("rss", args, lambda: bench_rss(args, directory))


if __name__ == "__main__":
    main()
