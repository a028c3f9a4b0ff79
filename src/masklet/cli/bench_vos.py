"""`masklet bench vos`: semi-supervised video object segmentation on a DAVIS-layout dataset.

    masklet bench vos --dataset DIR [--model NAME | --checkpoint PATH] [--out DIR]
                      [--sequences a,b] [--image-size N] [--dtype] [--device]

For each sequence (`ImageSets/2017/val.txt` when present, else every annotated sequence), the
first frame's ground-truth masks prompt the objects (`add_new_mask`, one per label), all objects
are tracked together with `propagate_in_video` (overlapping pixels go to the highest-scoring
object, as the reference's DAVIS tools do), and the predictions are written as indexed PNGs with
the ground truth's palette. Then the J&F evaluator scores them. Reported: the evaluator's table,
tracking speed (frames per second over prompting, tracking and writing; model loading excluded)
and the peak resident memory of the process. With `--out`, predictions go to
`DIR/predictions/<seq>/` and reports to `DIR` (`global_results.csv`, `per_object_results.csv`,
`results.json`, `bench_vos.json`); without it they go to a temporary folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from masklet.cli.common import LoadedModel, add_model_arguments, check_runtime_arguments, load_model
from masklet.errors import InputError
from masklet.eval.aggregate import EvaluationResult
from masklet.eval.evaluator import evaluate_davis
from masklet.eval.report import format_table, write_reports
from masklet.io.davis import davis_annotation_folder, davis_frame_folder, list_davis_sequences
from masklet.io.files import write_json
from masklet.io.image_folder import list_frame_files
from masklet.io.masks import labels_to_masks, masks_to_labels, read_indexed_png, write_indexed_png
from masklet.predictors.video import SAM2VideoPredictor
from masklet.runtime import autocast_for


@dataclasses.dataclass(frozen=True)
class SequenceRun:
    """One tracked sequence: its name, frame count, object count and wall time."""

    name: str
    frames: int
    objects: int
    seconds: float


def register_vos(bench_subparsers: argparse._SubParsersAction) -> None:
    """Add `bench vos` to the `bench` group's subparsers."""
    parser = bench_subparsers.add_parser(
        "vos",
        help="semi-supervised VOS on a DAVIS-layout dataset: J&F, fps, peak memory",
        description="Track every object from its first-frame mask, write DAVIS PNGs, score "
        "them with the J&F evaluator and report speed and peak memory.",
    )
    parser.add_argument("--dataset", type=Path, required=True, help="DAVIS-layout root")
    parser.add_argument("--out", type=Path, default=None, help="keep predictions and reports")
    parser.add_argument("--sequences", default=None, help="comma-separated subset to run")
    add_model_arguments(parser)
    parser.set_defaults(handler=run_vos)


def track_sequence(
    predictor: SAM2VideoPredictor, dataset: Path, name: str, pred_root: Path
) -> SequenceRun:
    """Prompt every object with its first-frame mask, track, write `pred_root/name/*.png`."""
    frames = list_frame_files(davis_frame_folder(dataset, name))
    first_annotation = list_frame_files(davis_annotation_folder(dataset, name))[0]
    labels, palette = read_indexed_png(first_annotation)
    first_masks = labels_to_masks(labels)
    started = time.perf_counter()
    state = predictor.init_state(frames[0].parent)
    if (state.video_height, state.video_width) != labels.shape:
        raise InputError(f"{first_annotation} does not have the size of the frames of {name}")
    for obj_id, mask in first_masks.items():
        predictor.add_new_mask(state, 0, obj_id, mask)
    empty = np.zeros(labels.shape, dtype=np.uint8)
    tracked = predictor.propagate_in_video(state) if first_masks else iter([])
    written = set()
    for frame_idx, obj_ids, logits in tracked:
        binary = (logits[:, 0] > 0).cpu().numpy()
        frame_labels = masks_to_labels(dict(zip(obj_ids, binary, strict=True)), labels.shape)
        write_indexed_png(pred_root / name / f"{frames[frame_idx].stem}.png", frame_labels, palette)
        written.add(frame_idx)
    for frame_idx in set(range(len(frames))) - written:  # no objects: background only
        write_indexed_png(pred_root / name / f"{frames[frame_idx].stem}.png", empty, palette)
    return SequenceRun(name, len(frames), len(first_masks), time.perf_counter() - started)


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _summary(loaded: LoadedModel, runs: list[SequenceRun]) -> dict:
    frames = sum(run.frames for run in runs)
    seconds = sum(run.seconds for run in runs)
    summary: dict[str, Any] = {
        "model": loaded.preset,
        "checkpoint": str(loaded.checkpoint),
        "image_size": loaded.image_size,
        "device": str(loaded.device),
        "dtype": str(loaded.dtype).removeprefix("torch."),
        "sequences": [dataclasses.asdict(run) for run in runs],
        "frames": frames,
        "seconds": seconds,
        "fps": frames / seconds if seconds > 0 else 0.0,
        "peak_rss_bytes": peak_rss_bytes(),
    }
    if loaded.device.type == "cuda":
        summary["peak_cuda_bytes"] = torch.cuda.max_memory_allocated(loaded.device)
    return summary


def _format_summary(summary: dict[str, Any], result: EvaluationResult) -> str:
    lines = [
        f"Model {summary['model']} (image size {summary['image_size']}, "
        f"{summary['dtype']}, {summary['device']})",
        f"Tracked {summary['frames']} frames of {len(summary['sequences'])} sequences in "
        f"{summary['seconds']:.1f} s: {summary['fps']:.2f} fps; "
        f"peak RSS {summary['peak_rss_bytes'] / 2**20:.0f} MiB",
    ]
    if "peak_cuda_bytes" in summary:
        lines[-1] += f", peak CUDA memory {summary['peak_cuda_bytes'] / 2**20:.0f} MiB"
    lines.append(f"J&F {result.j_and_f:.3f}  J {result.j.mean:.3f}  F {result.f.mean:.3f}")
    return "\n".join(lines)


def _benchmark(args: argparse.Namespace, names: list[str], out: Path) -> int:
    loaded = load_model(args)
    predictor = SAM2VideoPredictor(loaded.model, non_overlap_masks=True)
    pred_root = out / "predictions"
    runs = []
    with torch.inference_mode(), autocast_for(loaded.device, loaded.dtype):
        for name in names:
            runs.append(track_sequence(predictor, args.dataset, name, pred_root))
    full = evaluate_davis(pred_root, args.dataset)
    result = dataclasses.replace(full, videos=tuple(v for v in full.videos if v.name in names))
    summary = _summary(loaded, runs)
    summary.update(j_and_f=result.j_and_f, j=result.j.mean, f=result.f.mean)
    print(format_table(result))
    print(_format_summary(summary, result))
    if args.out is not None:
        written = write_reports(result, out)
        write_json(out / "bench_vos.json", summary, indent=2)
        print(f"wrote {pred_root}/, {', '.join(p.name for p in written)}, bench_vos.json")
    return 0


def run_vos(args: argparse.Namespace) -> int:
    """Handler of `masklet bench vos`."""
    check_runtime_arguments(args)
    names = list_davis_sequences(args.dataset, args.sequences)
    if args.out is not None:
        return _benchmark(args, names, args.out)
    with tempfile.TemporaryDirectory(prefix="masklet-bench-vos-") as folder:
        return _benchmark(args, names, Path(folder))
