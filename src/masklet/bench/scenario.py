"""Choreography of one synthetic video: which object does what, and when.

Roles (times ``u`` in [0, 1], see ``motion``; ``[u_out, u_in]`` is the exit window of
length ``exit_fraction`` centred on 0.5):

- target (label 1): starts on one side, walks to that edge, is entirely outside the frame
  during ``[u_out, u_in]``, then comes back in from the same edge;
- occluder (label 2): starts on the other side and is drawn above the target; its path
  meets the target's at ``0.55 * u_out`` and again at ``u_in + 0.6 * (1 - u_in)``;
- wanderers (labels 3..N): random paths inside the frame, at random depths;
- distractors (label 0): look-alikes of the target, drawn beneath the annotated objects;
  each enters from the target's exit edge while the target leaves and moves to where the
  target was, so a tracker that follows appearance alone switches to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from masklet.bench.config import SyntheticVideoConfig
from masklet.bench.motion import Stage, Track, outside_x, sprite_radius
from masklet.bench.shapes import Sprite


@dataclass(frozen=True)
class ObjectPlan:
    """One object of a video: its look, its path, its label and its drawing depth.

    Attributes:
        sprite: appearance and exact shape.
        track: keyframed poses over normalised time.
        label: annotation label (0 = not annotated).
        depth: drawing order; larger is drawn later (in front).
        role: ``"target"``, ``"occluder"``, ``"wanderer"`` or ``"distractor"``.
    """

    sprite: Sprite
    track: Track
    label: int
    depth: float
    role: str


def exit_window(config: SyntheticVideoConfig) -> tuple[float, float]:
    """Normalised times ``(u_out, u_in)`` between which the target is out of the frame."""
    return 0.5 - config.exit_fraction / 2.0, 0.5 + config.exit_fraction / 2.0


def _start_range(side: int) -> tuple[float, float]:
    """x range (fraction of width) of a start point on the half opposite ``-side``."""
    return (0.22, 0.35) if side < 0 else (0.65, 0.78)


def plan_target(
    stage: Stage,
    config: SyntheticVideoConfig,
    sprite: Sprite,
    base_scale: float,
    side: int,
    rng: np.random.Generator,
) -> Track:
    """Track of the target: in, out through edge ``side`` (-1 left, +1 right), back in."""
    u_out, u_in = exit_window(config)
    radius = sprite_radius(sprite.mask.shape, base_scale * stage.scale_range[1])
    x_off = outside_x(stage, side, radius)
    near_edge = (0.12, 0.25) if side < 0 else (0.75, 0.88)
    points = [
        stage.inside_point(rng, _start_range(side)),
        stage.inside_point(rng, near_edge),
        (x_off, stage.inside_point(rng)[1]),
        (x_off, stage.inside_point(rng)[1]),
        stage.inside_point(rng),
        stage.inside_point(rng),
    ]
    times = (0.0, u_out / 2.0, u_out, u_in, (u_in + 1.0) / 2.0, 1.0)
    poses = [stage.random_pose(rng, base_scale, x, y) for x, y in points]
    return Track(times, tuple(poses))


def meeting_times(config: SyntheticVideoConfig) -> tuple[float, float]:
    """Times at which the occluder's path crosses the target's."""
    u_out, u_in = exit_window(config)
    return 0.55 * u_out, u_in + 0.6 * (1.0 - u_in)


def plan_occluder(
    stage: Stage,
    config: SyntheticVideoConfig,
    target: Track,
    base_scale: float,
    side: int,
    rng: np.random.Generator,
) -> Track:
    """Track that starts opposite the target and sits on the target at both meeting times."""
    first, second = meeting_times(config)
    meet_1, meet_2 = target.at(first), target.at(second)
    points = [
        stage.inside_point(rng, _start_range(-side)),
        (meet_1.x, meet_1.y),
        stage.inside_point(rng),
        (meet_2.x, meet_2.y),
        stage.inside_point(rng),
    ]
    times = (0.0, first, 0.5, second, 1.0)
    poses = [stage.random_pose(rng, base_scale, x, y) for x, y in points]
    return Track(times, tuple(poses))


def plan_wanderer(stage: Stage, base_scale: float, rng: np.random.Generator) -> Track:
    """Track through four random points inside the frame."""
    times = (0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0)
    poses = [stage.random_pose(rng, base_scale, *stage.inside_point(rng)) for _ in times]
    return Track(times, tuple(poses))


def plan_distractor(
    stage: Stage,
    config: SyntheticVideoConfig,
    target: Track,
    sprite: Sprite,
    base_scale: float,
    side: int,
    rng: np.random.Generator,
) -> Track:
    """Track that comes in through the target's exit edge and takes the target's place."""
    u_out, u_in = exit_window(config)
    radius = sprite_radius(sprite.mask.shape, base_scale * stage.scale_range[1])
    near_edge = (0.1, 0.3) if side < 0 else (0.7, 0.9)
    where_target_was = target.at(u_out / 2.0)
    points = [
        (outside_x(stage, side, radius), stage.inside_point(rng)[1]),
        stage.inside_point(rng, near_edge),
        (where_target_was.x, where_target_was.y),
        stage.inside_point(rng),
    ]
    times = (0.0, u_out, u_in, 1.0)
    poses = [stage.random_pose(rng, base_scale, x, y) for x, y in points]
    return Track(times, tuple(poses))
