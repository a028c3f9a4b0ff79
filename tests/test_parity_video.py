"""Parity of the video predictor with the reference (sam2==1.1.0) on shared random weights.

Protocol (DESIGN §4): the oracle `SAM2VideoPredictor` is built with random weights, saved as an
official-format checkpoint and loaded into `masklet.build_sam2_video_predictor`; hole filling is
off on both sides (`fill_hole_area=0`); both read the same generated JPEG folder (frames exactly
`image_size` square, so no resize is involved) and run fp32 on CPU.

Each scenario is one function that drives a predictor through the reference's public API and
returns a list of `Step`s (every tensor the API returned, in order). It runs once on each side and
the two lists are compared step by step: same kind, frame index and object ids; logits from
prompting calls within 1e-4 max |diff|, propagated frames within 1e-3 with binary masks
(logits > 0) identical on >= 99.9% of pixels.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import masklet
from oracle import build_oracle_video_predictor, oracle_checkpoint

pytestmark = [pytest.mark.parity, pytest.mark.usefixtures("one_thread")]

IMAGE_SIZE = 256
NUM_FRAMES = 12
LAST_FRAME = NUM_FRAMES - 1
PROMPT_TOLERANCE = 1e-4
PROPAGATE_TOLERANCE = 1e-3
MIN_BINARY_AGREEMENT = 0.999
# A mask the reference computed must cover between 1% and 99% of the frame: an empty or full
# mask on both sides agrees whatever the mask path did.
MIN_FOREGROUND, MAX_FOREGROUND = 0.01, 0.99
# The reference's logits for "no mask here" (an absent object, or an object without output on
# the frame); any logit above half of it is a computed one.
NO_OBJECT_LOGIT = -1024.0


# ---------------------------------------------------------------- the generated video


def disk_centre(frame: int) -> tuple[float, float]:
    """(x, y) centre of the disk (radius 28), moving right and slightly down."""
    return 50.0 + 9.0 * frame, 70.0 + 2.0 * frame


def rectangle_box(frame: int) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the 56x44 rectangle, moving down and left."""
    x0, y0 = 170.0 - 3.0 * frame, 30.0 + 9.0 * frame
    return x0, y0, x0 + 56.0, y0 + 44.0


def ellipse_centre(frame: int) -> tuple[float, float]:
    """(x, y) centre of the ellipse (semi-axes 34 x 20), moving up and right."""
    return 40.0 + 6.0 * frame, 210.0 - 5.0 * frame


def shape_masks(frame: int) -> dict[str, np.ndarray]:
    """Boolean HxW masks of the three shapes on `frame` (drawn in this order, later on top)."""
    ys, xs = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float64)
    cx, cy = disk_centre(frame)
    x0, y0, x1, y1 = rectangle_box(frame)
    ex, ey = ellipse_centre(frame)
    return {
        "disk": (xs - cx) ** 2 + (ys - cy) ** 2 <= 28.0**2,
        "rectangle": (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1),
        "ellipse": ((xs - ex) / 34.0) ** 2 + ((ys - ey) / 20.0) ** 2 <= 1.0,
    }


def render_frame(frame: int) -> np.ndarray:
    """One HxWx3 uint8 frame: textured shapes over a drifting textured background."""
    rng = np.random.default_rng(1000 + frame)
    ys, xs = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float64)
    shift = 2.0 * frame
    image = np.stack(
        [
            110 + 60 * np.sin((xs + shift) / 13.0) * np.cos(ys / 29.0),
            120 + 50 * np.cos((ys - shift) / 17.0),
            100 + 40 * np.sin((xs + ys) / 23.0),
        ],
        axis=-1,
    )
    masks = shape_masks(frame)
    stripes = 0.5 + 0.5 * np.sign(np.sin((xs - 9.0 * frame) / 3.0))
    checker = ((xs // 8 + ys // 8) % 2).astype(np.float64)
    rings = 0.5 + 0.5 * np.sin(np.hypot(xs - ellipse_centre(frame)[0], ys) / 4.0)
    textures = {
        "disk": np.stack([200 + 50 * stripes, 40 + 60 * stripes, 30 + 0 * xs], axis=-1),
        "rectangle": np.stack([30 + 0 * xs, 60 + 120 * checker, 200 + 40 * checker], axis=-1),
        "ellipse": np.stack([60 + 150 * rings, 210 + 0 * xs, 50 + 100 * rings], axis=-1),
    }
    for name, mask in masks.items():
        image[mask] = textures[name][mask]
    image += rng.normal(0.0, 6.0, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_video_folder(directory: Path) -> Path:
    """Write the generated frames as `00000.jpg`, ... into `directory`; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for frame in range(NUM_FRAMES):
        Image.fromarray(render_frame(frame)).save(directory / f"{frame:05d}.jpg", quality=95)
    return directory


# ---------------------------------------------------------------- recording API results


@dataclass
class Step:
    """One API result: `kind` names the call, `frames` its frame indices (in order), `logits`
    one `(num_objects, 1, H, W)` tensor per frame. `strict_rows` are the object rows held to
    the prompt tolerance (a fresh prompt on a frame the object was not tracked on, which uses
    no memory); every other row went through the memory and gets the propagation tolerance.
    `absent_rows` are rows the scenario expects the reference to call absent (-1024 masks)."""

    kind: str
    obj_ids: list[int]
    frames: list[int] = field(default_factory=list)
    logits: list[torch.Tensor] = field(default_factory=list)
    strict_rows: tuple[int, ...] = ()
    absent_rows: tuple[int, ...] = ()


def as_tensor(value: Any) -> torch.Tensor:
    """A float32 CPU copy of a returned tensor or array."""
    tensor = value if torch.is_tensor(value) else torch.as_tensor(np.asarray(value))
    return tensor.detach().to("cpu", torch.float32).clone()


def prompt_step(kind: str, result: tuple[Any, Any, Any], fresh_obj_id: int | None = None) -> Step:
    """Record a prompting call's `(frame_idx, obj_ids, video_res_logits)`."""
    frame_idx, obj_ids, logits = result
    obj_ids = list(obj_ids)
    strict = (obj_ids.index(fresh_obj_id),) if fresh_obj_id in obj_ids else ()
    return Step(kind, obj_ids, [int(frame_idx)], [as_tensor(logits)], strict)


def propagate_steps(predictor: Any, state: Any, **options: Any) -> list[Step]:
    """One step per yielded frame (the reference yields its live obj_ids list: copy it)."""
    return [
        Step("propagate", list(obj_ids), [int(frame_idx)], [as_tensor(logits)])
        for frame_idx, obj_ids, logits in predictor.propagate_in_video(state, **options)
    ]


def removal_step(result: tuple[Any, Any]) -> Step:
    """Record `remove_object`'s `(obj_ids, [(frame_idx, logits), ...])`. The reference lists
    the updated frames in the iteration order of a Python set; they are compared sorted."""
    obj_ids, updated_frames = result
    ordered = sorted(updated_frames, key=lambda item: int(item[0]))
    return Step(
        "remove",
        list(obj_ids),
        [int(frame_idx) for frame_idx, _ in ordered],
        [as_tensor(logits) for _, logits in ordered],
    )


def clicks(*points: tuple[float, float, int]) -> dict[str, np.ndarray]:
    """`points`/`labels` keyword arguments for clicks given as (x, y, label)."""
    return {
        "points": np.array([[x, y] for x, y, _ in points], dtype=np.float32),
        "labels": np.array([label for _, _, label in points], dtype=np.int32),
    }


def centre(box: tuple[float, float, float, float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def add_clicks(
    predictor: Any,
    state: Any,
    frame: int,
    obj_id: int,
    *points: tuple[float, float, int],
    kind: str = "points",
    fresh: bool = True,
    **options: Any,
) -> Step:
    """Add clicks and record the result (`fresh`: the frame is new to this object)."""
    result = predictor.add_new_points_or_box(state, frame, obj_id, **clicks(*points), **options)
    return prompt_step(kind, result, obj_id if fresh else None)


# ---------------------------------------------------------------- scenarios

Scenario = Callable[[Any, Any], list[Step]]


def prompt_two_objects_on_first_frame(predictor: Any, state: Any) -> list[Step]:
    """Object 1: two positive clicks and a negative one on the disk; object 2: a positive
    click on the rectangle and a negative one beside it."""
    x, y = disk_centre(0)
    _, y0, x1, _ = rectangle_box(0)
    return [
        add_clicks(predictor, state, 0, 1, (x, y, 1), (x + 40, y + 40, 0), (x - 10, y + 5, 1)),
        add_clicks(predictor, state, 0, 2, (*centre(rectangle_box(0)), 1), (x1 + 15, y0, 0)),
    ]


def two_clicked_objects_tracked_forward(predictor: Any, state: Any) -> list[Step]:
    """Two objects clicked on frame 0, propagated forward through the whole video."""
    return prompt_two_objects_on_first_frame(predictor, state) + propagate_steps(predictor, state)


def new_object_boxed_later_tracked_before_its_prompt(predictor: Any, state: Any) -> list[Step]:
    """A click on frame 0, then a box for a new object on frame 5; propagation starts at
    frame 0, so object 7 is tracked on frames 0-4 from its later prompt alone."""
    steps = [add_clicks(predictor, state, 0, 1, (*disk_centre(0), 1))]
    x, y = ellipse_centre(5)
    box = np.array([x - 36, y - 22, x + 36, y + 22], dtype=np.float32)
    steps.append(prompt_step("box", predictor.add_new_points_or_box(state, 5, 7, box=box), 7))
    return steps + propagate_steps(predictor, state, max_frame_num_to_track=7)


def box_only_prompt_tracked_forward_then_backward(predictor: Any, state: Any) -> list[Step]:
    """A box on frame 5 as the only prompt: forward from 5, then back to frame 0."""
    box = np.array(rectangle_box(5), dtype=np.float32)
    steps = [prompt_step("box", predictor.add_new_points_or_box(state, 5, 4, box=box), 4)]
    steps += propagate_steps(predictor, state)
    return steps + propagate_steps(predictor, state, reverse=True)


def mask_and_box_prompts_tracked_forward_then_reverse(predictor: Any, state: Any) -> list[Step]:
    """A mask prompt for one object, a box plus a negative click for another on frame 3;
    propagated forward, then in reverse."""
    mask = shape_masks(3)["disk"]
    steps = [prompt_step("mask", predictor.add_new_mask(state, 3, 1, mask), 1)]
    box = np.array(rectangle_box(3), dtype=np.float32)
    ex, ey = ellipse_centre(3)
    result = predictor.add_new_points_or_box(state, 3, 2, box=box, **clicks((ex, ey, 0)))
    steps.append(prompt_step("box", result, 2))
    steps += propagate_steps(predictor, state, max_frame_num_to_track=5)
    return steps + propagate_steps(predictor, state, reverse=True)


def corrective_clicks_on_tracked_frame_then_repropagation(predictor: Any, state: Any) -> list[Step]:
    """Corrective clicks on tracked frame 6: one, one more with clear_old_points=False,
    re-propagation from frame 7 (the correction is memory there), a replacing click with
    clear_old_points=True, re-propagation from frame 7 and from 5 (re-tracking frame 6)."""
    steps = prompt_two_objects_on_first_frame(predictor, state)
    steps += propagate_steps(predictor, state, max_frame_num_to_track=7)
    x, y = disk_centre(6)
    steps.append(add_clicks(predictor, state, 6, 1, (x + 30, y, 0), kind="correct", fresh=False))
    steps.append(
        add_clicks(
            predictor,
            state,
            6,
            1,
            (x - 5, y - 5, 1),
            kind="correct",
            fresh=False,
            clear_old_points=False,
        )
    )
    steps += propagate_steps(predictor, state, start_frame_idx=7)
    steps.append(
        add_clicks(
            predictor,
            state,
            6,
            1,
            (x, y + 8, 1),
            kind="correct",
            fresh=False,
            clear_old_points=True,
        )
    )
    steps += propagate_steps(predictor, state, start_frame_idx=7, max_frame_num_to_track=2)
    return steps + propagate_steps(predictor, state, start_frame_idx=5, max_frame_num_to_track=2)


def click_on_last_frame_tracked_in_reverse(predictor: Any, state: Any) -> list[Step]:
    """A click on the last frame, propagated in reverse to frame 0."""
    steps = [add_clicks(predictor, state, LAST_FRAME, 1, (*centre(rectangle_box(LAST_FRAME)), 1))]
    return steps + propagate_steps(predictor, state, reverse=True)


def reverse_from_last_frame_without_object_pointer(predictor: Any, state: Any) -> list[Step]:
    """A click on frame 0, then reverse tracking from the last frame: no object pointer
    joins the memory there (only pointers of prompts at or after the frame count when going
    backwards), which crashes the reference in fp32."""
    steps = [add_clicks(predictor, state, 0, 1, (*disk_centre(0), 1))]
    return steps + propagate_steps(
        predictor, state, start_frame_idx=LAST_FRAME, max_frame_num_to_track=5, reverse=True
    )


def third_object_added_after_tracking(predictor: Any, state: Any) -> list[Step]:
    """Track two objects over frames 0-5, add a third on frame 4, propagate again."""
    steps = prompt_two_objects_on_first_frame(predictor, state)
    steps += propagate_steps(predictor, state, max_frame_num_to_track=5)
    steps.append(add_clicks(predictor, state, 4, 3, (*ellipse_centre(4), 1)))
    return steps + propagate_steps(predictor, state, max_frame_num_to_track=7)


def objects_removed_between_runs(predictor: Any, state: Any) -> list[Step]:
    """Three objects (object 2 prompted on frames 0 and 8), tracked; remove object 2, an
    unknown id (strict=False: no-op), track; remove object 1, track."""
    steps = prompt_two_objects_on_first_frame(predictor, state)
    steps.append(add_clicks(predictor, state, 2, 3, (*ellipse_centre(2), 1)))
    x0, y0, x1, _ = rectangle_box(8)
    steps.append(add_clicks(predictor, state, 8, 2, ((x0 + x1) / 2, y0 + 6, 1)))
    steps += propagate_steps(predictor, state, max_frame_num_to_track=5)
    steps.append(removal_step(predictor.remove_object(state, 2)))
    steps.append(removal_step(predictor.remove_object(state, 99)))
    steps += propagate_steps(predictor, state, max_frame_num_to_track=5)
    steps.append(removal_step(predictor.remove_object(state, 1)))
    return steps + propagate_steps(predictor, state, max_frame_num_to_track=5)


def start_frame_and_length_limits_forward_and_reverse(predictor: Any, state: Any) -> list[Step]:
    """`start_frame_idx` / `max_frame_num_to_track` forward and reverse, including a
    zero-length run, one past the end, and a reverse run from frame 0 (yields nothing)."""
    steps = [add_clicks(predictor, state, 6, 1, (*disk_centre(6), 1))]
    for options in (
        {"max_frame_num_to_track": 3},
        {"start_frame_idx": 6, "max_frame_num_to_track": 0},
        {"max_frame_num_to_track": 4, "reverse": True},
        {"start_frame_idx": 9, "max_frame_num_to_track": 20},
        {"start_frame_idx": 4, "max_frame_num_to_track": 10, "reverse": True},
        {"start_frame_idx": 0, "reverse": True},
    ):
        steps += propagate_steps(predictor, state, **options)
    return steps


def prompts_cleared_before_and_after_tracking(predictor: Any, state: Any) -> list[Step]:
    """clear_all_prompts_in_frame before tracking (the prompt vanishes) and after it
    (frame 7 of object 2 is downgraded to an ordinary tracked frame)."""
    steps = prompt_two_objects_on_first_frame(predictor, state)
    steps.append(add_clicks(predictor, state, 7, 2, (*centre(rectangle_box(7)), 1)))
    steps.append(add_clicks(predictor, state, 9, 1, (*disk_centre(9), 1)))
    steps.append(prompt_step("clear", predictor.clear_all_prompts_in_frame(state, 9, 1)))
    steps += propagate_steps(predictor, state, max_frame_num_to_track=7)
    steps.append(prompt_step("clear", predictor.clear_all_prompts_in_frame(state, 7, 2)))
    return steps + propagate_steps(predictor, state, start_frame_idx=6, max_frame_num_to_track=3)


def object_absent_on_prompted_frame_then_tracked(predictor: Any, state: Any) -> list[Step]:
    """For weights whose object-score head calls the clicked object absent on frame 0: the
    reference returns -1024 masks there, the memory takes the no-object path (SAM 2.1's
    spatial no-object embedding) and tracking from that memory finds masks on frames 1-6.
    One object: two objects absent on the same frame leave identical memories."""
    x, y = disk_centre(0)
    steps = [add_clicks(predictor, state, 0, 1, (x, y, 1), (x + 40, y + 40, 0), (x - 10, y + 5, 1))]
    steps += propagate_steps(predictor, state, max_frame_num_to_track=7)
    for step in steps:
        if step.frames == [0]:
            step.absent_rows = (0,)
    return steps


# ---------------------------------------------------------------- comparison


def binary_agreement(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float(((ours > 0) == (theirs > 0)).float().mean())


def row_problems(where: str, step: Step, ours: torch.Tensor, theirs: torch.Tensor) -> list[str]:
    """Mismatches of one returned tensor, object row by object row."""
    if ours.shape != theirs.shape:
        return [f"{where}: shape masklet {tuple(ours.shape)} vs reference {tuple(theirs.shape)}"]
    problems = []
    for row in range(theirs.shape[0]):
        strict = row in step.strict_rows
        tolerance = PROMPT_TOLERANCE if strict else PROPAGATE_TOLERANCE
        diff = float((ours[row] - theirs[row]).abs().max())
        agree = binary_agreement(ours[row], theirs[row])
        if not diff <= tolerance or (not strict and agree < MIN_BINARY_AGREEMENT):
            problems.append(
                f"{where} obj {step.obj_ids[row] if row < len(step.obj_ids) else row}: "
                f"max|diff| {diff:.3g} (tol {tolerance:g}), binary agreement {agree:.5f}"
            )
    return problems


def compare_steps(ours: list[Step], theirs: list[Step]) -> list[str]:
    """Every mismatch between the two runs, one line each (empty when they agree)."""
    calls = ([(s.kind, s.frames) for s in ours], [(s.kind, s.frames) for s in theirs])
    if calls[0] != calls[1]:
        return [f"calls/frame order differ:\n masklet   {calls[0]}\n reference {calls[1]}"]
    problems: list[str] = []
    for index, (a, b) in enumerate(zip(ours, theirs)):
        if a.obj_ids != b.obj_ids:
            problems.append(f"step {index} ({a.kind}): obj_ids {a.obj_ids} vs {b.obj_ids}")
            continue
        for frame, x, y in zip(a.frames, a.logits, b.logits):
            problems += row_problems(f"step {index} ({a.kind}) frame {frame}", b, x, y)
    return problems


def foreground(row: torch.Tensor) -> float:
    return float((row > 0).float().mean())


def is_placeholder(row: torch.Tensor) -> bool:
    """All logits at the reference's no-mask value (bilinear resizing keeps a constant)."""
    return bool((row <= NO_OBJECT_LOGIT / 2).all())


def triviality_problems(steps: list[Step]) -> list[str]:
    """Reasons why agreement on the reference's `steps` could be an accident, one line each.

    Every row that the call computed (fresh prompts, every propagated frame) must have between
    1% and 99% foreground, unless the scenario declared it absent, in which case it must be
    the no-mask placeholder. Calls that return every object (a prompt or clear for one object,
    a removal) may hold placeholders for objects without output on that frame, nothing else
    empty. Rows of different objects on one frame must differ by more than the propagation
    tolerance, so that swapped or mixed-up objects could not pass.
    """
    problems = []
    for index, step in enumerate(steps):
        for frame, logits in zip(step.frames, step.logits):
            where = f"step {index} ({step.kind}) frame {frame}"
            computed = [row for row in range(logits.shape[0]) if row not in step.absent_rows]
            for row in step.absent_rows:
                if not is_placeholder(logits[row]):
                    problems.append(f"{where} row {row}: declared absent, has a mask")
            for row in computed:
                share = foreground(logits[row])
                must_compute = step.kind == "propagate" or row in step.strict_rows
                if MIN_FOREGROUND <= share <= MAX_FOREGROUND:
                    continue
                if must_compute or not is_placeholder(logits[row]):
                    problems.append(f"{where} row {row}: trivial mask ({share:.2%} foreground)")
            masks = [row for row in computed if not is_placeholder(logits[row])]
            for first, second in itertools.pairwise(masks):
                if float((logits[first] - logits[second]).abs().max()) <= PROPAGATE_TOLERANCE:
                    problems.append(f"{where}: rows {first} and {second} are indistinguishable")
    return problems


def max_diffs(ours: list[Step], theirs: list[Step]) -> str:
    """A summary: the largest |diff| on fresh prompts and on everything else."""
    worst = {"prompt": 0.0, "tracked": 0.0}
    for a, b in zip(ours, theirs):
        for x, y in zip(a.logits, b.logits):
            if x.shape != y.shape:
                continue
            for row in range(y.shape[0]):
                key = "prompt" if row in b.strict_rows else "tracked"
                worst[key] = max(worst[key], float((x[row] - y[row]).abs().max()))
    return f"max|diff| fresh prompts {worst['prompt']:.3g}, tracked {worst['tracked']:.3g}"


@contextmanager
def memory_promoted_to_fp32(predictor: Any) -> Iterator[None]:
    """Make the reference cast its memory to fp32 before memory attention (a test-only patch
    of one instance). The reference stores memory features in bf16; whenever an object pointer
    joins the memory, `torch.cat` promotes them to fp32 exactly like this, so the patch changes
    nothing there. Where no pointer joins, the unpatched reference crashes (DESIGN §4); the
    patch gives the values it would compute without the crash."""
    original = predictor.memory_attention.forward

    def forward(*args: Any, memory: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return original(*args, memory=memory.to(torch.float32), **kwargs)

    predictor.memory_attention.forward = forward
    try:
        yield
    finally:
        del predictor.memory_attention.forward


class Pair:
    """A masklet and a reference video predictor sharing one set of random weights."""

    def __init__(
        self, preset: str, checkpoint_dir: Path, video: Path, objects_present: bool = True
    ) -> None:
        self.video = str(video)
        self.theirs = build_oracle_video_predictor(
            preset, IMAGE_SIZE, objects_present=objects_present
        )
        checkpoint = oracle_checkpoint(
            preset, IMAGE_SIZE, str(checkpoint_dir), objects_present=objects_present
        )
        self.ours = masklet.build_sam2_video_predictor(
            preset, checkpoint=checkpoint, image_size=IMAGE_SIZE, fill_hole_area=0
        )

    def run_ours(self, scenario: Scenario) -> list[Step]:
        with torch.inference_mode():
            return scenario(self.ours, self.ours.init_state(self.video))

    def run_theirs(self, scenario: Scenario, promote_memory: bool = False) -> list[Step]:
        with torch.inference_mode():
            if not promote_memory:
                return scenario(self.theirs, self.theirs.init_state(self.video))
            with memory_promoted_to_fp32(self.theirs):
                return scenario(self.theirs, self.theirs.init_state(self.video))

    def check(
        self, scenario: Scenario, promote_memory: bool = False, require_non_trivial: bool = True
    ) -> None:
        theirs = self.run_theirs(scenario, promote_memory)
        ours = self.run_ours(scenario)
        problems = compare_steps(ours, theirs)
        if require_non_trivial:
            problems = triviality_problems(theirs) + problems
        summary = f"{scenario.__name__}: {max_diffs(ours, theirs)}"
        assert not problems, summary + "\n" + "\n".join(problems[:25])
        print(summary)


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video_folder(tmp_path_factory.mktemp("parity_video") / "frames")


@pytest.fixture(scope="module")
def tiny_pair(checkpoint_dir: Path, video_folder: Path) -> Pair:
    return Pair("sam2.1_hiera_t", checkpoint_dir, video_folder)


def test_generated_video_is_what_the_scenarios_click_on(video_folder: Path) -> None:
    """The clicks land on the intended shapes; the JPEG folder has every frame at full size."""
    names = sorted(path.name for path in video_folder.iterdir())
    assert names == [f"{frame:05d}.jpg" for frame in range(NUM_FRAMES)]
    for frame in range(NUM_FRAMES):
        masks = shape_masks(frame)
        for name, (x, y) in (
            ("disk", disk_centre(frame)),
            ("rectangle", centre(rectangle_box(frame))),
            ("ellipse", ellipse_centre(frame)),
        ):
            assert masks[name][int(y), int(x)], (frame, name)
        assert all(0 < mask.sum() < IMAGE_SIZE**2 // 4 for mask in masks.values())
    assert Image.open(video_folder / "00000.jpg").size == (IMAGE_SIZE, IMAGE_SIZE)


def test_triviality_check_catches_accidental_agreement() -> None:
    """Empty or full computed masks, undeclared placeholders and identical objects fail."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 8, 8, generator=generator) * 5
    assert triviality_problems([Step("propagate", [1, 2], [3], [logits])]) == []
    empty = logits.clone()
    empty[0] = -3.0
    assert triviality_problems([Step("propagate", [1, 2], [3], [empty])])
    placeholder = logits.clone()
    placeholder[0] = NO_OBJECT_LOGIT
    assert triviality_problems([Step("propagate", [1, 2], [3], [placeholder])])
    assert triviality_problems([Step("points", [1, 2], [3], [placeholder], (0,))])
    assert triviality_problems([Step("points", [1, 2], [3], [placeholder], (1,))]) == []
    assert triviality_problems([Step("points", [1, 2], [3], [placeholder], absent_rows=(0,))]) == []
    assert triviality_problems([Step("points", [1, 2], [3], [logits], absent_rows=(0,))])
    twins = logits[:1].repeat(2, 1, 1, 1)
    assert triviality_problems([Step("propagate", [1, 2], [3], [twins])])


def test_comparison_catches_mismatches() -> None:
    """The comparison itself: tolerances per row, binary agreement, ids and frame order."""
    logits = torch.randn(2, 1, 8, 8) * 5
    step = Step("points", [1, 2], [0], [logits], strict_rows=(0,))
    assert compare_steps([step], [step]) == []
    nudged = logits.clone()
    nudged[1, 0, 0, 0] += 5e-4  # within the tracked tolerance
    assert compare_steps([Step("points", [1, 2], [0], [nudged])], [step]) == []
    nudged[0, 0, 0, 0] += 5e-4  # beyond the prompt tolerance on the fresh row
    assert len(compare_steps([Step("points", [1, 2], [0], [nudged])], [step])) == 1
    flipped = logits.clone()
    flipped[1] = flipped[1].abs() + 1e-4  # all positive: binary masks differ
    flipped[1, 0, 0, 0] = logits[1, 0, 0, 0]
    assert compare_steps([Step("points", [1, 2], [0], [flipped])], [step])
    assert compare_steps([Step("points", [2, 1], [0], [logits])], [step])
    assert compare_steps([Step("points", [1, 2], [1], [logits])], [step])


# Scenarios the unpatched reference runs in fp32 on CPU.
RUNNABLE = [
    two_clicked_objects_tracked_forward,
    box_only_prompt_tracked_forward_then_backward,
    mask_and_box_prompts_tracked_forward_then_reverse,
    corrective_clicks_on_tracked_frame_then_repropagation,
    click_on_last_frame_tracked_in_reverse,
    start_frame_and_length_limits_forward_and_reverse,
    prompts_cleared_before_and_after_tracking,
]
# Scenarios in which some object is tracked on a frame before its first prompt (or backwards
# from a frame after every prompt): no object pointer joins there and the reference crashes.
CRASHING = [
    new_object_boxed_later_tracked_before_its_prompt,
    reverse_from_last_frame_without_object_pointer,
    third_object_added_after_tracking,
    objects_removed_between_runs,
]


@pytest.mark.parametrize("scenario", RUNNABLE, ids=lambda scenario: scenario.__name__)
def test_scenario_matches_reference(tiny_pair: Pair, scenario: Scenario) -> None:
    tiny_pair.check(scenario)


@pytest.mark.parametrize("scenario", CRASHING, ids=lambda scenario: scenario.__name__)
def test_scenario_matches_reference_with_promoted_memory(
    tiny_pair: Pair, scenario: Scenario
) -> None:
    """masklet must not crash where the reference does; it must equal the reference with its
    bf16 memory promoted to fp32 (what the reference computes whenever a pointer joins)."""
    tiny_pair.check(scenario, promote_memory=True)


def test_reference_crashes_without_object_pointer(tiny_pair: Pair) -> None:
    """Documents the reference's fp32 crash that `CRASHING` works around (cheap: it fails on
    the first tracked frame). If a future oracle fixes it, move the scenarios to RUNNABLE."""
    with pytest.raises(RuntimeError, match=r"dtype"):
        tiny_pair.run_theirs(new_object_boxed_later_tracked_before_its_prompt)
    with pytest.raises(RuntimeError, match=r"dtype"):
        tiny_pair.run_theirs(reverse_from_last_frame_without_object_pointer)


def test_objects_absent_on_prompted_frame(checkpoint_dir: Path, video_folder: Path) -> None:
    """The no-object path: weights whose object-score head is left unbiased call the clicked
    object absent on frame 0 (asserted), then tracking from that memory must match."""
    pair = Pair("sam2.1_hiera_t", checkpoint_dir, video_folder, objects_present=False)
    pair.check(object_absent_on_prompted_frame_then_tracked)


def test_sam2_small_two_objects(checkpoint_dir: Path, video_folder: Path) -> None:
    """Two clicked objects tracked forward on the SAM 2.0 small preset."""
    Pair("sam2_hiera_s", checkpoint_dir, video_folder).check(two_clicked_objects_tracked_forward)


def three_prompted_frames_two_attended(predictor: Any, state: Any) -> list[Step]:
    """One object clicked on frames 0, 5 and 10, tracked forward through the video and back
    from frame 10: with `max_cond_frames_in_attn=2` each frame attends to two of the three."""
    steps = [add_clicks(predictor, state, f, 1, (*disk_centre(f), 1)) for f in (0, 5, 10)]
    steps += propagate_steps(predictor, state)
    return steps + propagate_steps(predictor, state, start_frame_idx=10, reverse=True)


def test_limited_conditioning_frames(checkpoint_dir: Path, video_folder: Path) -> None:
    """`max_cond_frames_in_attn` with the reference's meaning: the closest prompted frame
    before, the closest at or after, then the nearest others; the rest still serve as recent
    frames and pointers."""
    pair = Pair("sam2.1_hiera_t", checkpoint_dir, video_folder)
    pair.theirs.max_cond_frames_in_attn = 2
    model = pair.ours.model
    model.config = replace(model.config, max_cond_frames_in_attn=2)
    pair.check(three_prompted_frames_two_attended)


class ShippedPair(Pair):
    """masklet and the reference video predictors on masklet_nano's shipped weights."""

    def __init__(self, video: Path) -> None:
        from oracle import build_oracle_with_shipped_weights

        self.video = str(video)
        self.theirs = build_oracle_with_shipped_weights(video=True)
        self.ours = masklet.build_sam2_video_predictor("masklet_nano", fill_hole_area=0)


def test_shipped_nano_weights_track_like_the_reference(video_folder: Path) -> None:
    """Two clicked objects tracked forward with the shipped masklet_nano weights; masks are
    checked for triviality once the shipped weights are trained."""
    from oracle import shipped_is_trained

    pair = ShippedPair(video_folder)
    pair.check(two_clicked_objects_tracked_forward, require_non_trivial=shipped_is_trained())
