"""Seek accuracy of `VideoFileSource` on real and generated video files.

For every file, frame k returned by a random-access `source.get(k)` (indices visited in random
order, so with forward and backward jumps; the frame cache disabled, `cache_size=0`) must equal
frame k of a plain sequential decode with PyAV (the k-th frame the decoder outputs, with the
file's rotation metadata applied the same way). The frame count of the packet index must equal
the number of frames sequential decoding gives.

Files: every video in `SAMPLES/videos` (default: the `../shared/data/fetch-samples.sh` cache,
`$MASKLET_SAMPLES` or ~/.cache/masklet-samples: vtest.avi, tree.avi, Megamind.avi, bikes.mp4,
bigbuckbunny.mp4, carphone*.mp4) plus files generated here with the encoders of PyAV's FFmpeg:
H.264 with B-frames (mp4, mkv with open GOPs, mov), variable frame rate (irregular pts), VP9
webm (alt-ref hidden frames), AV1 webm, MPEG-4 part 2 with B-frames in AVI (guessed pts,
keyframe flags on P-frames), MJPEG, a file with a 90-degree display matrix, and an mp4 trimmed
with an edit list (its first 30 stored frames are not shown).

Run: `python benchmarks/seek_accuracy.py [SAMPLES] [--indices 40] [--seed 0]`. Prints one table
row per file; exits 1 if any file fails.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from masklet.io.video_file import VideoFileSource
from video_samples import encode, remux, sequential_frames, textured_frames

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".ts"}


# ------------------------------------------------------------------------ generated videos


def irregular_stamp(index: int) -> int:
    """Milliseconds of frame `index` with gaps of 20..95 ms (a variable frame rate)."""
    return sum(20 + (7919 * k) % 76 for k in range(index))


def generate_videos(folder: Path, num_frames: int = 150) -> list[Path]:
    """Write the generated test files into `folder`; returns those the local FFmpeg could make."""
    x264_bframes = {"bf": "3", "g": "24", "x264-params": "b-pyramid=normal"}
    x264_open_gop = {"bf": "3", "g": "48", "x264-params": "open-gop=1:keyint=48:min-keyint=8"}
    vp9 = {"g": "30", "auto-alt-ref": "1", "lag-in-frames": "16", "deadline": "realtime"}
    jobs: list[tuple[str, str, dict[str, object]]] = [
        ("h264_bframes.mp4", "libx264", {"options": x264_bframes}),
        ("h264_open_gop.mkv", "libx264", {"options": x264_open_gop}),
        ("h264_bframes.mov", "libx264", {"options": x264_bframes}),
        (
            "h264_vfr.mp4",
            "libx264",
            {"options": x264_bframes, "stamps": irregular_stamp, "time_base": Fraction(1, 1000)},
        ),
        ("vp9.webm", "libvpx-vp9", {"options": vp9}),
        ("av1.webm", "libsvtav1", {"options": {"g": "32", "preset": "12"}}),
        ("mpeg4_bframes.avi", "mpeg4", {"options": {"bf": "2", "g": "30", "qscale": "3"}}),
        ("mjpeg.mov", "mjpeg", {"pix_fmt": "yuvj420p"}),
        ("h264_rotated90.mp4", "libx264", {"options": x264_bframes, "rotation": 90.0}),
    ]
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only
    written = []
    for name, codec, extra in jobs:
        # A scene cut every 50 frames, inside the GOPs: encoders add non-IDR I-frames.
        frames = textured_frames(num_frames, 120, 160, cut_every=50)
        try:
            path = encode(folder / name, codec, frames, rate=25, **extra)  # type: ignore[arg-type]
            written.append(path)
        except (av.error.FFmpegError, ValueError) as error:
            print(f"skipped {name}: {codec} unavailable ({error})", file=sys.stderr)
    # Timestamps moved back so that the first 30 frames fall before zero: the mp4 muxer writes
    # an edit list (the frames before the edit are decoded as references, not shown).
    written.append(remux(folder / "h264_bframes.mp4", folder / "h264_trimmed_edit_list.mp4", 30))
    return written


# ------------------------------------------------------------------------ the check


@dataclass
class SeekResult:
    """One table row."""

    name: str
    codec: str
    frames: int
    decoded_frames: int
    resolution: str
    tested: int
    exact: int
    max_abs_diff: int
    ms_per_seek: float

    @property
    def passed(self) -> bool:
        return self.frames == self.decoded_frames and self.exact == self.tested


def pick_indices(num_frames: int, how_many: int, seed: int) -> list[int]:
    """Random distinct indices (always 0, 1 and the last two), shuffled into a random order."""
    generator = random.Random(seed)
    fixed = {0, min(1, num_frames - 1), max(0, num_frames - 2), num_frames - 1}
    pool = [index for index in range(num_frames) if index not in fixed]
    extra = generator.sample(pool, min(len(pool), max(0, how_many - len(fixed))))
    indices = sorted(fixed | set(extra))
    generator.shuffle(indices)
    return indices


def check_file(path: Path, how_many: int, seed: int) -> SeekResult:
    """Seek vs sequential decode for one file."""
    source = VideoFileSource(path, cache_size=0)
    try:
        indices = pick_indices(source.num_frames, how_many, seed)
        started = time.perf_counter()
        sought = {index: source.get(index) for index in indices}
        seconds = time.perf_counter() - started
        frames, codec = source.num_frames, source.codec
        resolution = f"{source.width}x{source.height}"
    finally:
        source.close()
    decoded_frames, expected = sequential_frames(path, set(indices))
    exact, max_diff = 0, 0
    for index in indices:
        if index not in expected:
            max_diff = 255
            continue
        difference = np.abs(sought[index].astype(np.int16) - expected[index].astype(np.int16))
        worst = int(difference.max()) if sought[index].shape == expected[index].shape else 255
        exact += int(worst == 0)
        max_diff = max(max_diff, worst)
    return SeekResult(
        name=path.name,
        codec=codec,
        frames=frames,
        decoded_frames=decoded_frames,
        resolution=resolution,
        tested=len(indices),
        exact=exact,
        max_abs_diff=max_diff,
        ms_per_seek=1000 * seconds / len(indices),
    )


def print_table(results: list[SeekResult]) -> None:
    header = f"{'file':<27} {'codec':<10} {'frames':>11} {'resolution':>10} {'tested':>6} "
    header += f"{'exact':>5} {'max diff':>8} {'ms/seek':>8}  result"
    print(header)
    print("-" * len(header))
    for row in results:
        same = row.frames == row.decoded_frames
        frames = str(row.frames) if same else f"{row.frames}!={row.decoded_frames}"
        print(
            f"{row.name:<27} {row.codec:<10} {frames:>11} {row.resolution:>10} {row.tested:>6} "
            f"{row.exact:>5} {row.max_abs_diff:>8} {row.ms_per_seek:>8.1f}  "
            f"{'pass' if row.passed else 'FAIL'}"
        )


def default_samples() -> Path:
    return Path(os.environ.get("MASKLET_SAMPLES", Path.home() / ".cache" / "masklet-samples"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", nargs="?", type=Path, default=default_samples())
    parser.add_argument("--indices", type=int, default=40, help="random indices per file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=150, help="frames per generated file")
    parser.add_argument("--no-generate", action="store_true", help="only the sample videos")
    args = parser.parse_args()
    folder = args.samples / "videos" if (args.samples / "videos").is_dir() else args.samples
    paths = sorted(p for p in folder.glob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not paths:
        print(f"no sample videos in {folder}; run ../shared/data/fetch-samples.sh", file=sys.stderr)
    with tempfile.TemporaryDirectory() as scratch:
        if not args.no_generate:
            paths += generate_videos(Path(scratch), args.frames)
        results = [check_file(path, args.indices, args.seed) for path in paths]
    print_table(results)
    return 0 if all(row.passed for row in results) else 1


if __name__ == "__main__":
    sys.exit(main())
