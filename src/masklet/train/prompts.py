"""Prompt simulation for training: which frames are prompted, with what, and where a simulated
user clicks to correct an error (facts of the SAM 2 training recipe).

Conventions: `T` frames, `K` objects, masks `(K, S, S)` / `(T, K, S, S)` bool at the model's
input size. Points are xy pixel indices of that input (`x` = column, `y` = row), float32
`(K, N, 2)`, with int32 labels `(K, N)`: 1 positive click, 0 negative click, 2 / 3 the top-left
/ bottom-right corner of a box. Every random choice comes from the caller's
`numpy.random.Generator`, so a plan and its clicks are reproducible from the generator alone.
Uniform clicks and boxes run in torch on the masks' device without a host synchronisation;
centre clicks (evaluation) need an exact distance transform, computed in numpy on the host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from masklet.errors import ConfigError, InputError

CLICK_METHODS = ("uniform", "center")
BOX_TOP_LEFT, BOX_BOTTOM_RIGHT = 2, 3  # point labels of box corners (clicks: 1 / 0)
#: Multi-mask output settings of the recipe (`multimask_output_in_sam`,
#: `multimask_output_for_tracking`, `multimask_min_pt_num`, `multimask_max_pt_num`).
MULTIMASK_IN_DECODER = True
MULTIMASK_FOR_TRACKING = True
MULTIMASK_MIN_CLICKS, MULTIMASK_MAX_CLICKS = 0, 1

#: Centre clicks: pixels whose exact distance is computed in one batch.
CANDIDATE_CHUNK = 2048
SQRT2 = math.sqrt(2.0)

Points = tuple[Tensor, Tensor]  # coords (K, N, 2) float32 xy input pixels, labels (K, N) int32


@dataclass(frozen=True)
class PromptOptions:
    """How prompts are simulated (`[prompts]`); defaults are the reference's training values."""

    prob_points: float = 0.5
    """Probability that a clip is prompted with clicks or a box (else the initial conditioning
    frames get the ground-truth mask and no correction clicks)."""
    prob_box: float = 0.5
    """Within point prompts, probability that an initial frame gets a box instead of a click."""
    max_init_conditioning_frames: int = 2
    """Initial conditioning frames: 1 to this many (random), frame 0 always among them."""
    max_correction_frames: int = 2
    """Frames that get correction clicks: the initial frames plus random others, in all a
    random number from #initial frames to this (point prompts only)."""
    correction_clicks: int = 7
    """Correction clicks per corrected frame, each decoded in turn."""
    prob_click_from_truth: float = 0.1
    """While training, probability that a correction click is drawn from the ground-truth
    mask instead of the error region."""
    box_noise: float = 0.1
    """Box corner jitter at most this fraction of the box's width / height (<= 0.5)."""
    box_noise_max: float = 20.0
    """... and at most this many pixels."""
    click_method: str = "uniform"
    """"uniform": a pixel drawn uniformly from the error region (training); "center": the
    error pixel farthest from the region's boundary (evaluation)."""

    def __post_init__(self) -> None:
        for name in ("prob_points", "prob_box", "prob_click_from_truth"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"[prompts] {name} must be in [0, 1], got {getattr(self, name)}")
        if self.max_init_conditioning_frames < 1:
            raise ConfigError("[prompts] max_init_conditioning_frames must be >= 1")
        if self.max_correction_frames < self.max_init_conditioning_frames:
            raise ConfigError(
                "[prompts] max_correction_frames must be >= max_init_conditioning_frames "
                "(the initial frames are always corrected)"
            )
        if self.correction_clicks < 0:
            raise ConfigError("[prompts] correction_clicks must be >= 0")
        if not 0.0 <= self.box_noise <= 0.5:
            raise ConfigError(f"[prompts] box_noise must be in [0, 0.5], got {self.box_noise}")
        if self.box_noise_max < 0:
            raise ConfigError("[prompts] box_noise_max must be >= 0")
        if self.click_method not in CLICK_METHODS:
            raise ConfigError(
                f"[prompts] click_method must be one of {CLICK_METHODS}, got {self.click_method!r}"
            )


@dataclass(frozen=True)
class PromptPlan:
    """The prompts of one clip, decided before it runs through the model.

    Attributes:
        use_mask_input: the initial frames get the ground-truth mask (then no points and no
            corrections).
        init_frames: initial conditioning frames in processing order, frame 0 first.
        correction_frames: frames that get correction clicks, the initial frames first
            (empty with mask input).
        initial_points: per initial frame (point prompts only), `(coords (K, N, 2) float32,
            labels (K, N) int32)`: one click (N = 1) or a box (N = 2, labels 2 and 3).
    """

    use_mask_input: bool
    init_frames: tuple[int, ...]
    correction_frames: tuple[int, ...]
    initial_points: dict[int, Points] = field(default_factory=dict)


def plan_prompts(masks: Tensor, rng: np.random.Generator, options: PromptOptions) -> PromptPlan:
    """Decide a clip's prompts (the reference's draws, in its order).

    Args:
        masks: `(T, K, S, S)` bool ground truth of the clip.
        rng: the source of every random choice.
        options: see `PromptOptions`; a single image (T = 1) always gets point prompts, one
            initial frame and one corrected frame.
    """
    if masks.dim() != 4 or masks.dtype != torch.bool:
        raise InputError(f"masks must be (T, K, S, S) bool, got {tuple(masks.shape)} {masks.dtype}")
    num_frames = int(masks.shape[0])
    prob_points = 1.0 if num_frames == 1 else options.prob_points
    max_init = min(options.max_init_conditioning_frames, num_frames)
    max_correct = min(options.max_correction_frames, num_frames)
    use_points = bool(rng.random() < prob_points)
    num_init = int(rng.integers(1, max_init, endpoint=True)) if max_init > 1 else 1
    num_correct = num_init
    if use_points and max_correct > num_init:
        num_correct = int(rng.integers(num_init, max_correct, endpoint=True))
    init_frames = [0]
    if num_init > 1:
        others = rng.choice(np.arange(1, num_frames), num_init - 1, replace=False)
        init_frames += [int(t) for t in others]
    initial_points: dict[int, Points] = {}
    if use_points:
        for t in init_frames:
            if rng.random() < options.prob_box:
                box_noise, box_noise_max = options.box_noise, options.box_noise_max
                initial_points[t] = noisy_box(masks[t], rng, box_noise, box_noise_max)
            else:
                initial_points[t] = sample_click(masks[t], None, rng, options.click_method)
    correction_frames = list(init_frames) if use_points else []
    if use_points and num_correct > num_init:
        rest = np.array([t for t in range(num_frames) if t not in init_frames])
        extra = rng.choice(rest, num_correct - num_init, replace=False)
        correction_frames += [int(t) for t in extra]
    return PromptPlan(
        use_mask_input=not use_points,
        init_frames=tuple(init_frames),
        correction_frames=tuple(correction_frames),
        initial_points=initial_points,
    )


def sample_click(
    truth: Tensor, prediction: Tensor | None, rng: np.random.Generator, method: str
) -> Points:
    """One click per object that corrects `prediction` towards `truth`.

    Args:
        truth: `(K, H, W)` bool ground truth.
        prediction: `(K, H, W)` bool current mask, or None for an empty prediction (the click
            then lands inside the object).
        rng: draws the uniform pixel.
        method: "uniform" or "center" (see `PromptOptions.click_method`).

    Returns:
        coords `(K, 1, 2)` float32 xy pixels, labels `(K, 1)` int32: 1 in a false negative
        (missed object), 0 in a false positive. With no error at all: "uniform" gives a
        negative click drawn from the background, "center" a negative click at (0, 0) (the
        reference's behaviours; an empty truth with no prediction is "no error").
    """
    if prediction is None:
        prediction = torch.zeros_like(truth)
    if truth.dtype != torch.bool or prediction.dtype != torch.bool or truth.dim() != 3:
        raise InputError("truth and prediction must be (K, H, W) bool masks")
    if prediction.shape != truth.shape:
        raise InputError(f"prediction {tuple(prediction.shape)} != truth {tuple(truth.shape)}")
    false_negative = truth & ~prediction
    false_positive = prediction & ~truth
    if method == "uniform":
        return _uniform_click(truth, false_negative, false_positive, rng)
    if method == "center":
        return _center_click(false_negative, false_positive)
    raise ConfigError(f"click method must be one of {CLICK_METHODS}, got {method!r}")


def correction_click(
    truth: Tensor,
    prediction: Tensor,
    rng: np.random.Generator,
    options: PromptOptions,
    training: bool,
) -> Points:
    """The next correction click on a frame (`truth`, `prediction` `(K, S, S)` bool): from the
    error region, or (training only, with probability `prob_click_from_truth`, one draw for all
    K objects as in the reference) from the ground truth as if nothing were predicted.
    Returns `sample_click`'s `(coords (K, 1, 2), labels (K, 1))`."""
    from_truth = False
    if training and options.prob_click_from_truth > 0:
        from_truth = bool(rng.random() < options.prob_click_from_truth)
    return sample_click(truth, None if from_truth else prediction, rng, options.click_method)


def noisy_box(truth: Tensor, rng: np.random.Generator, noise: float, noise_max: float) -> Points:
    """A box prompt per object from its mask's bounds, each coordinate moved uniformly by up to
    `min(noise * side, noise_max)` pixels (side = max - min pixel index along that axis), then
    clamped to `[0, S - 1]`; the corners of a non-empty mask stay ordered.

    An empty mask follows the reference: its bounds are (W, H) to (-1, -1), so the box comes
    out inverted (top-left near the bottom-right of the image and vice versa).

    Args:
        truth: `(K, H, W)` bool.
    Returns:
        coords `(K, 2, 2)` float32 xy (top-left, bottom-right), labels `(K, 2)` int32 (2, 3).
    """
    if truth.dtype != torch.bool or truth.dim() != 3:
        raise InputError(f"truth must be (K, H, W) bool, got {tuple(truth.shape)} {truth.dtype}")
    num_objects, height, width = truth.shape
    device = truth.device
    columns = truth.any(dim=1)  # (K, W)
    rows = truth.any(dim=2)  # (K, H)
    xs = torch.arange(width, device=device)
    ys = torch.arange(height, device=device)
    x0 = torch.where(columns, xs, width).amin(dim=1)
    x1 = torch.where(columns, xs, -1).amax(dim=1)
    y0 = torch.where(rows, ys, height).amin(dim=1)
    y1 = torch.where(rows, ys, -1).amax(dim=1)
    box = torch.stack([x0, y0, x1, y1], dim=1).float()  # (K, 4)
    jitter = torch.from_numpy(rng.uniform(-1.0, 1.0, size=(num_objects, 4))).float().to(device)
    if noise > 0:
        cap = torch.tensor(float(noise_max), device=device)
        max_dx = torch.minimum((x1 - x0).float() * noise, cap)
        max_dy = torch.minimum((y1 - y0).float() * noise, cap)
        box = box + jitter * torch.stack([max_dx, max_dy, max_dx, max_dy], dim=1)
    upper = torch.tensor([width - 1, height - 1] * 2, device=device, dtype=torch.float32)
    box = torch.clamp(box, min=torch.zeros_like(upper), max=upper)
    present = columns.any(dim=1)[:, None]
    top_left, bottom_right = box[:, :2], box[:, 2:]
    ordered = torch.cat(
        [torch.minimum(top_left, bottom_right), torch.maximum(top_left, bottom_right)], 1
    )
    box = torch.where(present, ordered, box)
    labels = torch.tensor([BOX_TOP_LEFT, BOX_BOTTOM_RIGHT], dtype=torch.int32, device=device)
    return box.reshape(num_objects, 2, 2), labels.expand(num_objects, 2).clone()


def use_multimask(num_clicks: int, is_init_frame: bool) -> bool:
    """Whether a decoder call outputs 3 masks: for 0 or 1 clicks (a box counts as 2), on
    initial frames and, with `multimask_output_for_tracking`, on tracked frames too."""
    return (
        MULTIMASK_IN_DECODER
        and (is_init_frame or MULTIMASK_FOR_TRACKING)
        and MULTIMASK_MIN_CLICKS <= num_clicks <= MULTIMASK_MAX_CLICKS
    )


def _uniform_click(
    truth: Tensor, false_negative: Tensor, false_positive: Tensor, rng: np.random.Generator
) -> Points:
    """A pixel drawn uniformly from each object's error region; where there is no error, from
    its background (and pixel 0 when the truth fills the image). All `(K, H, W)` bool."""
    num_objects, _, width = truth.shape
    error = (false_negative | false_positive).flatten(1)  # (K, HW)
    has_error = error.any(dim=1, keepdim=True)
    region = torch.where(has_error, error, ~truth.flatten(1))
    cumulative = region.long().cumsum(dim=1)  # (K, HW)
    count = cumulative[:, -1:]  # (K, 1)
    uniform = torch.from_numpy(rng.random(num_objects)).to(truth.device)[:, None]
    rank = (uniform * count).floor().long()  # (K, 1) in [0, count)
    rank = torch.minimum(rank, (count - 1).clamp(min=0))  # against rounding up to `count`
    index = torch.searchsorted(cumulative, rank + 1)  # first pixel whose count reaches rank + 1
    index = torch.where(count > 0, index, torch.zeros_like(index))
    labels = false_negative.flatten(1).gather(1, index).to(torch.int32)
    return _index_to_xy(index, width), labels


def _center_click(false_negative: Tensor, false_positive: Tensor) -> Points:
    """The error pixel farthest from its region's boundary (first in row-major order among
    equals): positive in the false negatives if their farthest distance is larger, else
    negative in the false positives. `(K, H, W)` bool."""
    num_objects, _, width = false_negative.shape
    best, index = farthest_from_boundary(torch.cat([false_negative, false_positive]))
    is_positive = best[:num_objects] > best[num_objects:]
    chosen = torch.where(is_positive, index[:num_objects], index[num_objects:])[:, None]
    return _index_to_xy(chosen, width), is_positive[:, None].to(torch.int32)


def farthest_from_boundary(regions: Tensor) -> tuple[Tensor, Tensor]:
    """The maximum of the exact Euclidean distance transform of each region and where it is.

    The distance of a True pixel is to the nearest False pixel, the ring just outside the image
    counting as False (a region touching the border is 1 from it), as cv2's precise transform
    of the region padded by one pixel. Computed in numpy on the host. Args: `regions (B, H, W)`
    bool. Returns the squared maximum distance `(B,)` int64 and its first row-major flat index
    `(B,)` int64 (0, 0 for an empty region), on the regions' device.
    """
    pairs = [_farthest_pixel(mask) for mask in regions.detach().cpu().numpy()]
    best = torch.tensor([value for value, _ in pairs], dtype=torch.int64, device=regions.device)
    index = torch.tensor([flat for _, flat in pairs], dtype=torch.int64, device=regions.device)
    return best, index


def _farthest_pixel(mask: np.ndarray) -> tuple[int, int]:
    """`farthest_from_boundary` of one `(H, W)` region, on its bounding box (all outside it is
    False, so the distances are the same) and without the whole transform: the exact value is
    computed only where an upper bound reaches the best exact value found so far."""
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return 0, 0
    top, left = int(rows[0]), int(columns[0])
    crop = mask[top : int(rows[-1]) + 1, left : int(columns[-1]) + 1]
    vertical_squared = _distance_along(crop, axis=0) ** 2  # (h, w) int64
    bound = _path_distance_bound(crop).ravel()  # (h w,) float64 >= the exact values
    seed = np.array([np.argmax(bound)])
    best_value = int(_exact_squared_distance(vertical_squared, seed, bound[seed])[0])
    best_index = -1
    candidates = np.flatnonzero(bound >= best_value)  # row-major order
    for start in range(0, candidates.size, CANDIDATE_CHUNK):
        chunk = candidates[start : start + CANDIDATE_CHUNK]
        chunk = chunk[bound[chunk] >= best_value]
        if chunk.size == 0:
            continue
        values = _exact_squared_distance(vertical_squared, chunk, bound[chunk])
        chunk_value = int(values.max())
        if chunk_value > best_value or (chunk_value == best_value and best_index < 0):
            best_value, best_index = chunk_value, int(chunk[np.argmax(values)])
    y, x = divmod(best_index, crop.shape[1])
    return best_value, (top + y) * mask.shape[1] + left + x


def _distance_along(region: np.ndarray, axis: int) -> np.ndarray:
    """Distance of each pixel of `region (H, W)` bool to the nearest False pixel in its column
    (`axis=0`) or row (`axis=1`), the ring outside the image counting as False; 0 off the
    region. Returns `(H, W)` int64."""
    length = region.shape[axis]
    position = np.arange(length, dtype=np.int64).reshape((-1, 1) if axis == 0 else (1, -1))
    # Last False position at or before (-1 = the ring), first at or after (length = the ring).
    before = np.maximum.accumulate(np.where(region, -1, position), axis=axis)
    after = np.flip(np.where(region, length, position), axis)
    after = np.flip(np.minimum.accumulate(after, axis=axis), axis)
    return np.minimum(position - before, after - position)


def _path_distance_bound(region: np.ndarray) -> np.ndarray:
    """Upper bounds of the squared distance transform of `region (H, W)` bool: the squared
    length of the shortest 8-connected path (steps 1 and sqrt 2) to a False pixel or the ring,
    at most 8% longer than the straight line. Row sweeps down then up. `(H, W)` float64."""
    height, width = region.shape
    padded = np.zeros((height + 2, width + 2), dtype=bool)
    padded[1:-1, 1:-1] = region
    distance = np.where(padded, np.inf, 0.0)
    columns = np.arange(width + 2, dtype=np.float64)
    diagonal = np.empty(width + 2)
    for rows in (range(1, height + 1), range(height, 0, -1)):
        for y in rows:
            neighbour = distance[y - rows.step]  # the row already swept
            diagonal[0], diagonal[-1] = np.inf, np.inf
            np.minimum(neighbour[:-2], neighbour[2:], out=diagonal[1:-1])
            entry = np.minimum(distance[y], np.minimum(neighbour + 1, diagonal + SQRT2))
            from_left = np.minimum.accumulate(entry - columns) + columns
            from_right = np.minimum.accumulate((entry + columns)[::-1])[::-1] - columns
            distance[y] = np.minimum(from_left, from_right)
    squared = distance[1:-1, 1:-1] ** 2
    return squared * (1 + 1e-9) + 1e-6  # rounding can only loosen the bound


def _exact_squared_distance(
    vertical_squared: np.ndarray, flat: np.ndarray, bound: np.ndarray
) -> np.ndarray:
    """Exact squared distance transform at the pixels `flat (P,)` (row-major indices): the
    minimum over columns x' of `(x - x')^2 + vertical_squared[y, x']`, columns outside the image
    counting as the ring (0). Only |x - x'| <= sqrt(max bound) can reach the minimum, `bound
    (P,)` being upper bounds of the values. `vertical_squared (H, W)` int64 -> `(P,)` int64."""
    width = vertical_squared.shape[1]
    radius = math.isqrt(int(bound.max())) + 1
    offsets = np.arange(-radius, radius + 1)
    ys, xs = np.divmod(flat, width)
    columns = xs[:, None] + offsets  # (P, 2r + 1)
    inside = (columns >= 0) & (columns < width)
    vertical = vertical_squared[ys[:, None], columns.clip(0, width - 1)]
    return (np.where(inside, vertical, 0) + offsets**2).min(axis=1)


def _index_to_xy(index: Tensor, width: int) -> Tensor:
    """Flat pixel indices `(K, 1)` -> xy coords `(K, 1, 2)` float32."""
    return torch.stack([index % width, index // width], dim=-1).to(torch.float32)
