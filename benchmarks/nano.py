"""Quality benchmark of masklet_nano (issue 13's targets) on held-out synthetic data.

Everything is made from the evaluation split of the photos (`PhotoLibrary.split("eval")`,
never seen in training) with seeds of its own, by `masklet.bench` at its default difficulty:
every video has a target that leaves the frame and comes back, an occluder that passes in
front of it, and unannotated look-alike distractors. Scores:

1. semi-supervised VOS from the first frame's true mask, J&F over frames 1 .. T-2;
2. VOS from one click at the centre of each object on the first frame (the pixel farthest
   from its boundary, in model-input pixels);
3. the memory ablation: (1) with memory attention given only the prompted frame (no tracked
   frame memories, no tracked frames' object pointers); the drop is what memory is worth;
4. images (first frames of other held-out videos): mIoU from one centre click (the mask the
   IoU head ranks first), from the true box, and how often the IoU head ranks the best of
   the 3 masks first;
5. object score: on the tracked frames of (1), "absent" (object score logit <= 0) against
   "the object is entirely hidden or outside the frame", precision and recall;
6. speed on this machine: per tracked frame and per image encode, next to sam2.1_hiera_t at
   1024 px (random weights: speed only), `--threads` CPU threads.

Run: `python benchmarks/nano.py` (shipped weights), `--checkpoint runs/x/model.pt` for a
training run's model, `--quick` for a smoke run, `--json FILE` to keep the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from masklet.bench import PhotoLibrary, SyntheticVideo, SyntheticVideoConfig, make_synthetic_video
from masklet.build import build_sam2
from masklet.eval.metrics import region_similarity
from masklet.io import ArraySource
from masklet.model.sam2 import SAM2Model
from masklet.predictors.image import SAM2ImagePredictor
from masklet.session import MaskPrompt, PointPrompt, SessionOptions, VideoSession
from masklet.train.prompts import sample_click
from masklet.train.validation import (
    Tracks,
    object_masks,
    prompt_with_masks,
    resized_mask,
    score_video,
    track_video,
)

#: Seeds of the benchmark's videos and images (distinct from training's and validation's).
VIDEO_SEED = 910_001
IMAGE_SEED = 910_002

TARGETS = {
    "vos_mask_jf": 0.85,
    "vos_click_jf": 0.75,
    "memory_drop_jf": 0.10,
    "image_click_miou": 0.75,
    "image_box_miou": 0.85,
    "iou_head_best_first": 0.60,
    "absent_precision": 0.90,
    "absent_recall": 0.90,
}


def held_out_videos(count: int, num_frames: int, seed: int) -> list[SyntheticVideo]:
    """`count` videos of the evaluation photo split at the generator's default difficulty."""
    library = PhotoLibrary.from_folder(None).split("eval")
    config = SyntheticVideoConfig(width=320, height=180, num_frames=num_frames, num_objects=3)
    return [make_synthetic_video(library, config, seed, i) for i in range(count)]


def centre_click(mask: np.ndarray) -> tuple[float, float]:
    """xy of the pixel of `mask (H, W)` farthest from its boundary (the evaluation click)."""
    coords, _ = sample_click(torch.from_numpy(mask)[None], None, np.random.default_rng(0), "center")
    return float(coords[0, 0, 0]), float(coords[0, 0, 1])


def prompt_with_clicks(session: VideoSession, truth: Tracks, size: int) -> None:
    for obj_id, masks in truth.items():
        height, width = masks[0].shape
        x, y = centre_click(masks[0])
        # In model-input pixels (the session's frame).
        coords = torch.tensor([[[x * size / width, y * size / height]]])
        session.add_points(0, obj_id, PointPrompt(coords, torch.ones(1, 1, dtype=torch.int32)))


def mean_j_and_f(model: SAM2Model, videos: list[SyntheticVideo], **options: Any) -> float:
    results = []
    for video in videos:
        tracked = track_video(model, video, **options)
        results += [(j + f) / 2 for j, f in score_video(tracked.masks, object_masks(video))]
    return float(np.mean(results))


def absent_flags(model: SAM2Model, videos: list[SyntheticVideo]) -> dict[str, float]:
    """Precision and recall of "absent" (object score <= 0) for fully hidden objects, and
    J&F of the same mask-prompted runs."""
    flagged_and_hidden = flagged = hidden = 0
    results = []
    for video in videos:
        truth = object_masks(video)
        tracked = track_video(model, video)
        results += [(j + f) / 2 for j, f in score_video(tracked.masks, truth)]
        for obj_id, true_masks in truth.items():
            for frame_idx in range(1, len(true_masks)):
                is_hidden = not true_masks[frame_idx].any()
                is_flagged = tracked.object_scores[obj_id][frame_idx] <= 0
                hidden += is_hidden
                flagged += is_flagged
                flagged_and_hidden += is_hidden and is_flagged
    return {
        "vos_mask_jf": float(np.mean(results)),
        "absent_precision": flagged_and_hidden / flagged if flagged else float("nan"),
        "absent_recall": flagged_and_hidden / hidden if hidden else float("nan"),
        "hidden_frames": float(hidden),
    }


def image_scores(model: SAM2Model, count: int) -> dict[str, float]:
    """Click / box mIoU and IoU-head ranking on the first frames of `count` held-out videos."""
    predictor = SAM2ImagePredictor(model)
    click_ious, box_ious, best_first = [], [], []
    for video in held_out_videos(count, 8, IMAGE_SEED):
        predictor.set_image(video.frames[0])
        for mask in (m[0] for m in object_masks(video).values()):
            x, y = centre_click(mask)
            masks, scores, _ = predictor.predict(
                point_coords=np.array([[x, y]]), point_labels=np.array([1])
            )
            ious = [region_similarity(candidate, mask) for candidate in masks.astype(bool)]
            click_ious.append(ious[int(np.argmax(scores))])
            best_first.append(float(np.argmax(scores) == np.argmax(ious)))
            rows, cols = np.nonzero(mask)
            box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=float)
            boxed, _, _ = predictor.predict(box=box, multimask_output=False)
            box_ious.append(region_similarity(boxed[0].astype(bool), mask))
    return {
        "image_click_miou": float(np.mean(click_ious)),
        "image_box_miou": float(np.mean(box_ious)),
        "iou_head_best_first": float(np.mean(best_first)),
        "image_objects": float(len(click_ious)),
    }


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def speed(model: SAM2Model, video: SyntheticVideo, repeats: int) -> dict[str, float]:
    """Seconds per image encode and per tracked frame (1 object, full memory bank)."""
    frame = np.asarray(video.frames[0])
    predictor = SAM2ImagePredictor(model)
    encode = median_seconds(lambda: predictor.set_image(frame), repeats)
    frames = [np.asarray(f) for f in video.frames]
    session = VideoSession(model, ArraySource(frames), SessionOptions())
    mask = np.zeros(frame.shape[:2], dtype=bool)
    mask[40:100, 60:140] = True
    session.add_mask(0, 1, MaskPrompt(resized_mask(mask, model.image_size)))
    times = []
    for frame_idx in range(len(frames)):
        started = time.perf_counter()
        session.step(frame_idx)
        times.append(time.perf_counter() - started)
    # From frame 7 on the memory bank is full: what every frame of a long video costs.
    return {"encode_s": encode, "tracked_frame_s": statistics.median(times[7:])}


def report(figures: dict[str, float]) -> str:
    lines = [f"{'metric':<24}{'value':>9}{'target':>9}  result"]
    for key, target in TARGETS.items():
        value = figures[key]
        if np.isnan(value):
            verdict = "undefined (nothing flagged)"
        else:
            verdict = "meets" if value >= target else f"misses by {target - value:.3f}"
        lines.append(f"{key:<24}{value:>9.3f}{target:>9.2f}  {verdict}")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None, help="model.pt (default: shipped)")
    parser.add_argument("--videos", type=int, default=12, help="held-out videos (12)")
    parser.add_argument("--frames", type=int, default=32, help="frames per video (32)")
    parser.add_argument("--images", type=int, default=24, help="held-out images (24)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (2)")
    parser.add_argument("--skip-speed", action="store_true", help="no speed table")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 videos, 4 images")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.quick:
        args.videos, args.frames, args.images = 2, 12, 4
    torch.set_num_threads(args.threads)
    model = build_sam2("masklet_nano", checkpoint=args.checkpoint)
    videos = held_out_videos(args.videos, args.frames, VIDEO_SEED)
    figures: dict[str, float] = {}
    with torch.inference_mode():
        figures |= absent_flags(model, videos)
        figures["vos_click_jf"] = mean_j_and_f(model, videos, prompt=prompt_with_clicks)
        without_memory = mean_j_and_f(
            model, videos, prompt=prompt_with_masks, prompted_frame_only=True
        )
        figures["vos_mask_prompted_frame_only_jf"] = without_memory
        figures["memory_drop_jf"] = figures["vos_mask_jf"] - without_memory
        figures |= image_scores(model, args.images)
    print(
        f"masklet_nano ({args.checkpoint or 'shipped weights'}), {args.videos} held-out "
        f"videos x {args.frames} frames, {int(figures['image_objects'])} image objects"
    )
    print(report(figures))
    if not args.skip_speed:
        with torch.inference_mode():
            nano = speed(model, videos[0], 5)
            tiny = speed(build_sam2("sam2.1_hiera_t", random_init=True), videos[0], 3)
        figures |= {f"nano_{k}": v for k, v in nano.items()}
        figures |= {f"hiera_t_{k}": v for k, v in tiny.items()}
        print(f"\nspeed, {args.threads} CPU threads       encode s   tracked frame s")
        for name, row in (("masklet_nano, 256 px", nano), ("sam2.1_hiera_t, 1024 px", tiny)):
            print(f"{name:<29}{row['encode_s']:>9.3f} {row['tracked_frame_s']:>13.3f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
