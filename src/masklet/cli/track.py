"""`masklet track VIDEO --prompt SPEC ... --out DIR --format davis|pngs|sav|coco|overlay`.

Prompts objects on one or more frames, tracks them through the video with
`SAM2VideoPredictor.propagate_in_video` and writes each frame's masks as soon as the frame is
tracked (memory stays bounded whatever the video's length). Ctrl-C stops cleanly: every frame
finished so far is on disk, JSON files and the overlay video are valid, and the message says
where. Prompt syntax: `masklet.cli.prompt_spec` and docs/cli.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from masklet.cli.common import LoadedModel, add_model_arguments, check_runtime_arguments, load_model
from masklet.cli.interrupts import deferred_interrupt
from masklet.cli.outputs import parse_formats
from masklet.cli.prompt_spec import (
    ObjectPrompt,
    check_prompt,
    load_mask,
    load_prompts_file,
    merge_prompts,
    parse_prompt_spec,
    prompt_palette,
)
from masklet.errors import InputError
from masklet.io.files import make_output_folder
from masklet.io.frames import FrameSource
from masklet.io.mask_writers import (
    FORMATS,
    MaskWriter,
    VideoMeta,
    close_writers,
    create_writers,
)
from masklet.io.sources import open_frame_source
from masklet.io.video_file import VideoFileSource
from masklet.predictors.video import SAM2VideoPredictor
from masklet.runtime import autocast_for
from masklet.session.video_session import VideoSession


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `track` command."""
    parser = subparsers.add_parser(
        "track",
        help="track prompted objects through a video and write their masks",
        description="Track objects through a video (file or folder of frames) from clicks, "
        "boxes or masks, writing each frame's masks as it is tracked. See docs/cli.md.",
    )
    parser.add_argument("video", type=Path, help="video file or folder of JPEG/PNG frames")
    parser.add_argument(
        "--prompt",
        action="append",
        default=[],
        metavar="SPEC",
        help='e.g. "frame=0,obj=1,point=120:80;140:90:0" or "obj=2,box=10:20:110:90" or '
        '"obj=3,mask=m.png" (repeatable)',
    )
    parser.add_argument("--prompts", type=Path, default=None, help="JSON file of prompts")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--format", default="davis", help=f"{', '.join(FORMATS)}; several comma-separated"
    )
    parser.add_argument("--reverse", action="store_true", help="track backwards in time")
    parser.add_argument("--start", type=int, default=None, help="first frame to track")
    parser.add_argument("--max-frames", type=int, default=None, help="track at most N frames")
    parser.add_argument(
        "--sav-stride", type=int, default=1, help="sav: keep every Nth frame (SA-V uses 4)"
    )
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def collect_prompts(specs: list[str], prompts_file: Path | None) -> list[ObjectPrompt]:
    """Parse `--prompt` specs and the `--prompts` file into one prompt per (frame, object)."""
    prompts = [parse_prompt_spec(spec) for spec in specs]
    if prompts_file is not None:
        prompts += load_prompts_file(prompts_file)
    if not prompts:
        raise InputError("no prompt given: add --prompt SPEC (e.g. point=X:Y) or --prompts FILE")
    return merge_prompts(prompts)


def prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Create `out`; refuse a non-empty existing folder unless `overwrite`."""
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(f"output folder {out} exists and is not empty; pass --overwrite")
    make_output_folder(out)


def _check_frame_options(args: argparse.Namespace, num_frames: int | None) -> None:
    if num_frames is None:
        raise InputError(f"{args.video} is a live source; track needs a video of known length")
    if args.start is not None and not 0 <= args.start < num_frames:
        raise InputError(
            f"--start {args.start} is out of range: the video has {num_frames} frames "
            f"(0..{num_frames - 1})"
        )
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")


def video_meta(
    args: argparse.Namespace, source: FrameSource, prompts: list[ObjectPrompt]
) -> VideoMeta:
    """Check the prompts and frame options against the video; describe it for the writers."""
    _check_frame_options(args, source.num_frames)
    for prompt in prompts:
        check_prompt(prompt, source.num_frames, source.height, source.width)
    return VideoMeta(
        video_id=args.video.stem if args.video.is_file() else args.video.name,
        height=source.height,
        width=source.width,
        num_frames=source.num_frames,
        fps=source.fps,
        obj_ids=tuple(sorted({prompt.obj_id for prompt in prompts})),
        palette=prompt_palette(prompts),
    )


def start_frame(args: argparse.Namespace, prompts: list[ObjectPrompt]) -> int:
    """`--start`, else the first prompted frame (the last one with `--reverse`)."""
    frames = [prompt.frame for prompt in prompts]
    start = args.start if args.start is not None else (max if args.reverse else min)(frames)
    if args.reverse and start == 0:
        raise InputError("--reverse from frame 0 has nothing to track; give --start N > 0")
    return int(start)


def run(args: argparse.Namespace) -> int:
    """Handler of `masklet track`; returns 0, or 130 after Ctrl-C."""
    formats = parse_formats(args.format)
    check_runtime_arguments(args)
    prompts = collect_prompts(args.prompt, args.prompts)
    source = open_frame_source(args.video)
    try:
        meta = video_meta(args, source, prompts)
        if isinstance(source, VideoFileSource) and source.truncation is not None:
            print(f"masklet: warning: {source.truncation}", file=sys.stderr)
        start = start_frame(args, prompts)
        writers = create_writers(formats, args.out, meta, args.sav_stride)
        prepare_out_dir(args.out, args.overwrite)
        loaded = load_model(args)
        return track_video(args, loaded, source, prompts, writers, start)
    finally:
        source.close()


def _add_prompts(
    predictor: SAM2VideoPredictor,
    state: VideoSession,
    prompts: list[ObjectPrompt],
    height: int,
    width: int,
) -> None:
    for prompt in prompts:
        if prompt.mask_path is not None:
            mask = load_mask(prompt, height, width)
            predictor.add_new_mask(state, prompt.frame, prompt.obj_id, mask)
            continue
        predictor.add_new_points_or_box(
            state,
            frame_idx=prompt.frame,
            obj_id=prompt.obj_id,
            points=[list(p) for p in prompt.points] if prompt.points else None,
            labels=list(prompt.labels) if prompt.points else None,
            box=list(prompt.box) if prompt.box is not None else None,
        )


@dataclass
class FrameLog:
    """Frames written so far (in tracking order)."""

    frames: list[int] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def describe(self) -> str:
        if not self.frames:
            return "no frame was finished"
        first, last = self.frames[0], self.frames[-1]
        return f"{len(self.frames)} frames ({first}..{last})"


def _frames_to_track(start: int, max_frames: int | None, reverse: bool, num_frames: int) -> int:
    limit = num_frames if max_frames is None else max_frames
    return min(limit, start + 1) if reverse else min(limit, num_frames - start)


def track_video(
    args: argparse.Namespace,
    loaded: LoadedModel,
    source: FrameSource,
    prompts: list[ObjectPrompt],
    writers: list[MaskWriter],
    start: int,
) -> int:
    """Prompt, propagate from `start` and write; returns 0, or 130 when interrupted."""
    predictor = SAM2VideoPredictor(loaded.model)
    num_frames = source.num_frames
    assert num_frames is not None
    total = _frames_to_track(start, args.max_frames, args.reverse, num_frames)
    with torch.inference_mode(), autocast_for(loaded.device, loaded.dtype):
        state = predictor.init_state(source)
        _add_prompts(predictor, state, prompts, source.height, source.width)
        log, interrupted = _propagate(predictor, state, writers, start, total, args)
    num_objects = len({prompt.obj_id for prompt in prompts})
    return _report(args, log, interrupted, writers, num_objects)


def _propagate(
    predictor: SAM2VideoPredictor,
    state: VideoSession,
    writers: list[MaskWriter],
    start: int,
    total: int,
    args: argparse.Namespace,
) -> tuple[FrameLog, bool]:
    """Track `total` frames from `start`, writing each; Ctrl-C stops after a whole frame.
    When a write fails, the other writers are still closed (their files stay valid) and that
    first failure is raised."""
    log = FrameLog()
    needs_frame = any(writer.needs_frame for writer in writers)
    quiet = args.quiet or not sys.stderr.isatty()
    bar = tqdm(total=total, unit="frame", desc="tracking", disable=quiet, dynamic_ncols=True)
    interrupted = False
    try:
        frames = predictor.propagate_in_video(state, start, total - 1, args.reverse)
        for frame_idx, obj_ids, logits in frames:
            binary = (logits[:, 0] > 0).cpu().numpy()
            masks = {obj_id: binary[i] for i, obj_id in enumerate(obj_ids)}
            source = state.frames
            frame = source.get(frame_idx) if needs_frame and source is not None else None
            with deferred_interrupt():
                for writer in writers:
                    writer.write(frame_idx, masks, frame)
                log.frames.append(frame_idx)
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    except BaseException:
        bar.close()
        with deferred_interrupt(reraise=False):
            close_writers(writers, raise_errors=False)
        raise
    bar.close()
    with deferred_interrupt(reraise=False) as caught:
        close_writers(writers)
    return log, interrupted or caught.received


def _report(
    args: argparse.Namespace,
    log: FrameLog,
    interrupted: bool,
    writers: list[MaskWriter],
    num_objects: int,
) -> int:
    paths = ", ".join(writer.target for writer in writers)
    if interrupted:
        print(f"masklet: interrupted; {log.describe()} written to {paths}", file=sys.stderr)
        return 130
    if not args.quiet:
        seconds = time.perf_counter() - log.started
        rate = len(log.frames) / seconds if seconds > 0 else 0.0
        print(
            f"tracked {num_objects} object{'s' if num_objects != 1 else ''} over "
            f"{log.describe()} in {seconds:.1f} s "
            f"({rate:.1f} fps); wrote {paths}"
        )
    return 0
