"""`masklet bench ...`: benchmark tools, one sub-command each.

    masklet bench make-synthetic --out DIR --videos N --seed S [--photos DIR] [knobs]
    masklet bench vos --dataset DIR [--model NAME | --checkpoint PATH] [--out DIR]  (bench_vos.py)

Further sub-commands (e.g. ``bench vos``) are added in ``register`` next to
``_register_make_synthetic``, each with its own ``handler``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from masklet.bench.config import SyntheticVideoConfig
from masklet.bench.synthetic import make_synthetic_dataset
from masklet.cli.bench_vos import register_vos


def run_make_synthetic(args: argparse.Namespace) -> int:
    """Handler of `masklet bench make-synthetic`; returns the exit code (0)."""
    config = SyntheticVideoConfig(
        width=args.width,
        height=args.height,
        num_frames=args.frames,
        num_objects=args.objects,
        num_distractors=args.distractors,
    )
    start = time.perf_counter()
    names = make_synthetic_dataset(
        out_dir=Path(args.out),
        num_videos=args.videos,
        seed=args.seed,
        config=config,
        photos=args.photos,
    )
    seconds = time.perf_counter() - start
    print(f"wrote {len(names)} videos to {args.out} in {seconds:.1f} s: {', '.join(names)}")
    return 0


def _register_make_synthetic(bench_subparsers: argparse._SubParsersAction) -> None:
    defaults = SyntheticVideoConfig()
    parser = bench_subparsers.add_parser(
        "make-synthetic",
        help="generate a synthetic DAVIS-layout VOS benchmark from real photos",
        description="Render videos of photo-textured objects over real photos, with exact "
        "masks (see docs/evaluation.md for what happens in each video).",
    )
    parser.add_argument("--out", required=True, help="dataset root to write")
    parser.add_argument("--videos", type=int, default=10, help="number of videos (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument(
        "--photos",
        default=None,
        help="photo folder (default: $MASKLET_SAMPLES or ~/.cache/masklet-samples)",
    )
    parser.add_argument("--frames", type=int, default=defaults.num_frames, help="frames per video")
    parser.add_argument("--width", type=int, default=defaults.width, help="frame width")
    parser.add_argument("--height", type=int, default=defaults.height, help="frame height")
    parser.add_argument(
        "--objects", type=int, default=defaults.num_objects, help="annotated objects (>= 2)"
    )
    parser.add_argument(
        "--distractors", type=int, default=defaults.num_distractors, help="look-alikes"
    )
    parser.set_defaults(handler=run_make_synthetic)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `bench` command group to the CLI's subparsers."""
    parser = subparsers.add_parser("bench", help="benchmark tools (synthetic VOS data, ...)")
    bench_subparsers = parser.add_subparsers(dest="bench_command", metavar="BENCH_COMMAND")
    _register_make_synthetic(bench_subparsers)
    register_vos(bench_subparsers)

    def show_help(_: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(handler=show_help)
