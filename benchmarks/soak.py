"""Soak test of the streaming tracker: memory, file descriptors and speed over a long stream.

Streams `--frames` (20,000) frames of `--image-size` (128) px through one `StreamingTracker`
with `--objects` (3) live objects. Every `--every` (1,000) frames the oldest object is removed
and a new one is added with a click on the centre of a shape, so 3 objects stay live and the
session sees 20 removals and additions. Frames are a moving synthetic scene rendered on the
fly with `masklet.bench`'s renderer (procedural textured shapes drifting and turning over a
panning procedural background, nothing loaded up front), or `--video FILE` resized to a square
and looped (the file is reopened at each loop). The model has random weights unless
`--checkpoint` is given (the speed and memory of a step do not depend on the weights).

Every `--window` (1,000) frames it prints the frame count, the resident set size (`VmRSS` of
/proc/self/status), the number of open file descriptors (/proc/self/fd), the frames per second
over that window, this process's CPU time per frame over that window (all threads; less
sensitive than fps to other processes' load, though OpenMP spin-waits count in it) and the live
objects. RSS and descriptors are also sampled after every frame
for the maxima. Targets, checked at the end (exit code 0 when all pass, 1 otherwise):

- RSS: from frame `--baseline` (2,000) on, it stays within 5% of its value at that frame;
- descriptors: no growth after frame `--baseline`;
- speed: the last full window runs at no less than `1 - --fps-tolerance` (0.9) times the fps of
  the first window after warm-up (frames `--warmup` (1,000) to `--warmup + --window`). On a
  shared machine fps is noisy; a real slow-down (e.g. a state that grows with the stream) shows
  as a steady decline window after window in the table.

Run: `.venv/bin/python benchmarks/soak.py` (`--help` for the options). On the 2-core
development machine (sam2.1_hiera_t, 128 px, 3 objects, fp32, 2 threads) a frame takes about
125 ms when the machine is otherwise idle (about 60% in the image encoder), so the default
20,000 frames take about 45 minutes, and two to three times as long while other jobs run;
`--frames 3000` (about 7 minutes idle) is a quick check.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import masklet
from masklet.bench.motion import Pose
from masklet.bench.render import compose_frame, render_background, warp_sprite
from masklet.bench.shapes import PROCEDURAL_SHAPES, Sprite, make_sprite
from masklet.io import open_frame_source

RSS_TOLERANCE = 0.05


# ---------------------------------------------------------------- process probes


def rss_mib() -> float:
    """Resident set size of this process in MiB (`VmRSS` of /proc/self/status)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS line in /proc/self/status")


def open_descriptors() -> int:
    """Number of open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


# ---------------------------------------------------------------- frames


def procedural_photo(size: int, rng: np.random.Generator) -> Image.Image:
    """A smooth colour texture of `size` x `size` px: random grids of three scales, upsampled."""
    total = np.zeros((size, size, 3), np.float32)
    for cells, weight in ((4, 0.5), (16, 0.3), (64, 0.2)):
        grid = rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8)
        layer = Image.fromarray(grid).resize((size, size), Image.Resampling.BICUBIC)
        total += weight * np.asarray(layer, np.float32)
    return Image.fromarray(np.clip(total, 0, 255).astype(np.uint8))


@dataclass(frozen=True)
class Drift:
    """Periodic motion of one shape: an ellipse around `centre` while it turns."""

    centre: tuple[float, float]
    amplitude: tuple[float, float]
    periods: tuple[float, float]  # frames per loop in x and y
    phase: float
    turn_deg_per_frame: float
    scale: float

    def pose(self, frame_idx: int) -> Pose:
        angle_x = 2 * math.pi * frame_idx / self.periods[0] + self.phase
        angle_y = 2 * math.pi * frame_idx / self.periods[1] + self.phase
        return Pose(
            x=self.centre[0] + self.amplitude[0] * math.sin(angle_x),
            y=self.centre[1] + self.amplitude[1] * math.cos(angle_y),
            scale=self.scale * (1.0 + 0.1 * math.sin(angle_x / 3)),
            angle_deg=(self.turn_deg_per_frame * frame_idx) % 360.0,
        )


@dataclass
class SyntheticScene:
    """Textured procedural shapes drifting over a panning background, rendered per frame."""

    size: int
    num_shapes: int
    seed: int = 0
    background: Image.Image = field(init=False)
    sprites: list[Sprite] = field(init=False)
    drifts: list[Drift] = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.background = procedural_photo(4 * self.size, rng)
        texture = procedural_photo(2 * self.size, rng)
        side = max(self.size // 4, 8)
        self.sprites, self.drifts = [], []
        for index in range(self.num_shapes):
            kind = PROCEDURAL_SHAPES[index % len(PROCEDURAL_SHAPES)]
            self.sprites.append(make_sprite(kind, texture, side, rng))
            centre, amplitude = rng.uniform(0.3, 0.7, 2), rng.uniform(0.1, 0.2, 2)
            periods = rng.uniform(200, 600, 2)
            self.drifts.append(
                Drift(
                    centre=(float(centre[0]) * self.size, float(centre[1]) * self.size),
                    amplitude=(float(amplitude[0]) * self.size, float(amplitude[1]) * self.size),
                    periods=(float(periods[0]), float(periods[1])),
                    phase=float(rng.uniform(0, 2 * math.pi)),
                    turn_deg_per_frame=float(rng.uniform(-1.0, 1.0)),
                    scale=1.0,
                )
            )

    def camera_window(self, frame_idx: int) -> tuple[float, float, float, float]:
        """A 2S x 2S window that travels over the 4S x 4S background and back."""
        half = self.size
        travel = 4 * self.size - 2 * half
        x = half + travel * 0.5 * (1 - math.cos(2 * math.pi * frame_idx / 1500))
        y = half + travel * 0.5 * (1 - math.cos(2 * math.pi * frame_idx / 2300))
        return x - half, y - half, x + half, y + half

    def frame(self, frame_idx: int) -> np.ndarray:
        """Frame `frame_idx` as S x S x 3 uint8 RGB."""
        frame_size = (self.size, self.size)
        background = render_background(self.background, self.camera_window(frame_idx), frame_size)
        layers = [
            (warp_sprite(sprite, drift.pose(frame_idx), frame_size), index + 1)
            for index, (sprite, drift) in enumerate(zip(self.sprites, self.drifts))
        ]
        rgb, _ = compose_frame(background, layers)
        return rgb

    def click(self, shape: int, frame_idx: int) -> tuple[float, float]:
        """A point on shape `shape` (its centre) on frame `frame_idx`, in pixels."""
        pose = self.drifts[shape % self.num_shapes].pose(frame_idx)
        return min(max(pose.x, 0.0), self.size - 1.0), min(max(pose.y, 0.0), self.size - 1.0)

    def stream(self, num_frames: int) -> Iterator[np.ndarray]:
        for frame_idx in range(num_frames):
            yield self.frame(frame_idx)


def looped_video(path: Path, size: int, num_frames: int) -> Iterator[np.ndarray]:
    """`num_frames` frames of the video at `path`, resized to `size` x `size`, looped."""
    produced = 0
    while produced < num_frames:
        with open_frame_source(path) as source:
            for _, frame in source.iter_frames():
                image = Image.fromarray(frame).resize((size, size), Image.Resampling.BILINEAR)
                yield np.asarray(image)
                produced += 1
                if produced == num_frames:
                    return
        if produced == 0:
            raise SystemExit(f"{path} has no frames")


# ---------------------------------------------------------------- the soak loop


@dataclass(frozen=True)
class WindowRow:
    """One printed row: the state after `frames` frames and the speed of the last window."""

    frames: int
    rss_mib: float
    descriptors: int
    fps: float
    cpu_ms_per_frame: float  # CPU time of this process (all threads) per frame
    objects: int

    HEADER = f"{'frame':>8} {'RSS MiB':>9} {'fds':>5} {'fps':>7} {'cpu ms':>7} {'objects':>7}"

    def __str__(self) -> str:
        return (
            f"{self.frames:>8d} {self.rss_mib:>9.1f} {self.descriptors:>5d} {self.fps:>7.2f} "
            f"{self.cpu_ms_per_frame:>7.1f} {self.objects:>7d}"
        )


@dataclass
class Probe:
    """RSS and descriptor samples (after every frame) and per-window rows."""

    baseline_frame: int
    window: int
    rows: list[WindowRow] = field(default_factory=list)
    baseline_rss: float | None = None
    baseline_fds: int | None = None
    max_rss_after: float = 0.0
    max_fds_after: int = 0
    last_rss: float = 0.0
    last_fds: int = 0
    _wall_start: float = field(default_factory=time.perf_counter)
    _cpu_start: float = field(default_factory=time.process_time)

    def sample(self, frames_done: int, live_objects: int) -> None:
        self.last_rss, self.last_fds = rss_mib(), open_descriptors()
        if frames_done == self.baseline_frame:
            self.baseline_rss, self.baseline_fds = self.last_rss, self.last_fds
        if frames_done >= self.baseline_frame:
            self.max_rss_after = max(self.max_rss_after, self.last_rss)
            self.max_fds_after = max(self.max_fds_after, self.last_fds)
        if frames_done % self.window == 0:
            wall, cpu = time.perf_counter(), time.process_time()
            fps = self.window / (wall - self._wall_start)
            cpu_ms = 1e3 * (cpu - self._cpu_start) / self.window
            self._wall_start, self._cpu_start = wall, cpu
            row = WindowRow(frames_done, self.last_rss, self.last_fds, fps, cpu_ms, live_objects)
            self.rows.append(row)
            print(row, flush=True)

    def window_ending_at(self, frames: int) -> WindowRow | None:
        return next((row for row in self.rows if row.frames == frames), None)


def soak(args: argparse.Namespace) -> Probe:
    """Run the stream; print one row per window; return the samples."""
    torch.manual_seed(args.seed)
    model = masklet.build_sam2(args.model, checkpoint=args.checkpoint, image_size=args.image_size)
    tracker = masklet.StreamingTracker(model)
    scene = SyntheticScene(args.image_size, args.objects, args.seed)
    if args.video is not None:
        frames = looped_video(args.video, args.image_size, args.frames)
    else:
        frames = scene.stream(args.frames)
    probe = Probe(args.baseline, args.window)
    live: list[int] = []
    next_id = 1
    print(WindowRow.HEADER, flush=True)
    with torch.inference_mode():
        for frame_idx, frame in enumerate(frames):
            tracker.step(frame)
            if frame_idx == 0 or frame_idx % args.every == 0:
                if live and len(live) >= args.objects:
                    tracker.remove_object(live.pop(0))
                while len(live) < args.objects:
                    x, y = scene.click(next_id - 1, frame_idx)
                    tracker.add_points(next_id, [[x, y]], [1])
                    live.append(next_id)
                    next_id += 1
                assert tracker.obj_ids == live, (tracker.obj_ids, live)
            probe.sample(frame_idx + 1, len(tracker.obj_ids))
    return probe


# ---------------------------------------------------------------- summary


def summarize(probe: Probe, args: argparse.Namespace) -> bool:
    """Print the summary and PASS/FAIL per target; True when all pass."""
    print("\nsummary")
    results: list[bool] = []
    if probe.baseline_rss is None or probe.baseline_fds is None:
        print(f"  the stream ended before frame {args.baseline}: no baseline, nothing checked")
        return False
    base_rss = probe.baseline_rss
    growth = probe.max_rss_after / base_rss - 1.0
    passed = growth <= RSS_TOLERANCE
    results.append(passed)
    print(
        f"  RSS at frame {args.baseline}: {base_rss:.1f} MiB, max after: "
        f"{probe.max_rss_after:.1f} MiB ({100 * growth:+.2f}%), last: {probe.last_rss:.1f} MiB "
        f"({100 * (probe.last_rss / base_rss - 1.0):+.2f}%); target max <= +"
        f"{100 * RSS_TOLERANCE:.0f}%: {'PASS' if passed else 'FAIL'}"
    )
    fd_growth = probe.max_fds_after - probe.baseline_fds
    passed = fd_growth <= 0
    results.append(passed)
    print(
        f"  descriptors at frame {args.baseline}: {probe.baseline_fds}, max after: "
        f"{probe.max_fds_after}, last: {probe.last_fds} (growth {fd_growth:+d}); "
        f"target none: {'PASS' if passed else 'FAIL'}"
    )
    first_end = args.warmup + args.window
    first = probe.window_ending_at(first_end)
    last = probe.rows[-1] if probe.rows else None
    if first is None or last is None or last.frames <= first_end:
        print(f"  fps: too few windows after warm-up ({args.warmup} frames); not checked")
    else:
        ratio = last.fps / first.fps
        passed = ratio >= 1.0 - args.fps_tolerance
        results.append(passed)
        print(
            f"  fps frames {args.warmup}-{first_end}: {first.fps:.2f}, frames "
            f"{last.frames - args.window}-{last.frames}: {last.fps:.2f} (x{ratio:.3f}); "
            f"target >= x{1.0 - args.fps_tolerance:.2f}: {'PASS' if passed else 'FAIL'}"
        )
        print(
            f"  CPU ms per frame (less sensitive to other processes' load), same windows: "
            f"{first.cpu_ms_per_frame:.1f} -> {last.cpu_ms_per_frame:.1f} "
            f"(x{last.cpu_ms_per_frame / first.cpu_ms_per_frame:.3f})"
        )
    verdict = all(results)
    print(f"  {'PASS' if verdict else 'FAIL'}")
    return verdict


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sam2.1_hiera_t", help="preset name")
    parser.add_argument("--checkpoint", default=None, help="official .pt (default: random)")
    parser.add_argument("--image-size", type=int, default=128, help="model and frame size")
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--objects", type=int, default=3, help="live objects")
    parser.add_argument("--every", type=int, default=1000, help="frames between replacements")
    parser.add_argument("--window", type=int, default=1000, help="frames per printed row")
    parser.add_argument("--baseline", type=int, default=2000, help="frame of the RSS baseline")
    parser.add_argument("--warmup", type=int, default=1000, help="frames before the fps check")
    parser.add_argument("--fps-tolerance", type=float, default=0.10)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--video", type=Path, default=None, help="loop this video instead")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    source = args.video or "synthetic scene"
    print(
        f"soak: {args.model}, {args.image_size}px, {args.frames} frames, {args.objects} objects, "
        f"one replaced every {args.every} frames, {torch.get_num_threads()} threads, "
        f"weights {args.checkpoint or 'random'}, frames from {source}",
        flush=True,
    )
    start = time.perf_counter()
    probe = soak(args)
    print(f"\n{args.frames} frames in {time.perf_counter() - start:.0f} s")
    return 0 if summarize(probe, args) else 1


if __name__ == "__main__":
    sys.exit(main())
