"""Object and camera motion for the synthetic benchmark.

Time is normalised: ``u = t / (T - 1)`` in [0, 1] over a T-frame video. Object poses are in
output-frame pixels (x right, y down; the pose's (x, y) is the sprite centre) and are
keyframed; between keyframes every quantity follows a smoothstep ``3s^2 - 2s^3`` curve, so
motion eases in and out and never overshoots (an object placed outside the frame at two
consecutive keyframes stays outside in between). The camera is a window on the background
photo (photo pixels) that pans along a straight line while it zooms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pose:
    """Placement of a sprite in the frame.

    Attributes:
        x: sprite centre, output pixels from the left edge.
        y: sprite centre, output pixels from the top edge.
        scale: output pixels per sprite pixel.
        angle_deg: rotation in degrees (positive turns clockwise on screen, y down).
    """

    x: float
    y: float
    scale: float
    angle_deg: float


def _smoothstep(s: float) -> float:
    return s * s * (3.0 - 2.0 * s)


@dataclass(frozen=True)
class Track:
    """Keyframed poses at increasing normalised times (first time 0, last time 1)."""

    times: tuple[float, ...]
    poses: tuple[Pose, ...]

    def __post_init__(self) -> None:
        if len(self.times) != len(self.poses) or len(self.times) < 2:
            raise ValueError("a track needs at least two keyframes, one pose per time")
        if any(b <= a for a, b in zip(self.times, self.times[1:], strict=False)):
            raise ValueError(f"keyframe times must increase: {self.times}")

    def at(self, u: float) -> Pose:
        """Pose at normalised time ``u`` (clamped to [first, last] keyframe time)."""
        u = min(max(u, self.times[0]), self.times[-1])
        index = int(np.searchsorted(self.times, u, side="right")) - 1
        index = min(index, len(self.times) - 2)
        start, end = self.poses[index], self.poses[index + 1]
        span = self.times[index + 1] - self.times[index]
        weight = _smoothstep((u - self.times[index]) / span)

        def mix(a: float, b: float) -> float:
            return a + (b - a) * weight

        return Pose(
            x=mix(start.x, end.x),
            y=mix(start.y, end.y),
            scale=mix(start.scale, end.scale),
            angle_deg=mix(start.angle_deg, end.angle_deg),
        )


@dataclass(frozen=True)
class CameraPath:
    """A window on the background photo: centre moves linearly, zoom changes smoothly.

    Attributes:
        start: window centre (x, y) at u=0, photo pixels.
        end: window centre (x, y) at u=1, photo pixels.
        base_width: window width at zoom 1, photo pixels.
        aspect: output width / height.
        zoom_start: zoom at u=0 (window width = base_width / zoom).
        zoom_end: zoom at u=1.
    """

    start: tuple[float, float]
    end: tuple[float, float]
    base_width: float
    aspect: float
    zoom_start: float
    zoom_end: float

    def window(self, u: float) -> tuple[float, float, float, float]:
        """Photo-pixel box ``(left, top, right, bottom)`` seen by the camera at time ``u``."""
        zoom = self.zoom_start + (self.zoom_end - self.zoom_start) * _smoothstep(u)
        cx = self.start[0] + (self.end[0] - self.start[0]) * u
        cy = self.start[1] + (self.end[1] - self.start[1]) * u
        half_w = self.base_width / zoom / 2.0
        half_h = half_w / self.aspect
        return cx - half_w, cy - half_h, cx + half_w, cy + half_h


def plan_camera(
    photo_size: tuple[int, int],
    aspect: float,
    pan: float,
    zoom: float,
    rng: np.random.Generator,
) -> CameraPath:
    """Camera over a photo of ``photo_size`` (width, height) that stays inside it.

    The view travels ``pan`` view-widths horizontally (direction random) with a small
    vertical drift, and zooms between 1 and ``zoom`` (in or out, random).
    """
    photo_w, photo_h = photo_size
    base_w = min(photo_w / (1.0 + pan), photo_h * aspect)
    base_h = base_w / aspect
    travel = pan * base_w
    left_centre = base_w / 2.0 + rng.uniform(0, max(photo_w - base_w - travel, 0.0))
    drift = rng.uniform(-0.5, 0.5) * max(photo_h - base_h, 0.0)
    cy_start = photo_h / 2.0 - drift / 2.0
    cy_end = photo_h / 2.0 + drift / 2.0
    start, end = (left_centre, cy_start), (left_centre + travel, cy_end)
    if rng.random() < 0.5:
        start, end = end, start
    zooms = (1.0, zoom) if rng.random() < 0.5 else (zoom, 1.0)
    return CameraPath(start, end, base_w, aspect, zooms[0], zooms[1])


@dataclass(frozen=True)
class Stage:
    """Frame geometry and motion limits shared by the trajectory planners.

    Attributes:
        width: output width in pixels.
        height: output height in pixels.
        scale_range: (min, max) multiplier of an object's base scale.
        max_rotation_deg: largest absolute rotation.
    """

    width: int
    height: int
    scale_range: tuple[float, float]
    max_rotation_deg: float

    def random_pose(self, rng: np.random.Generator, base_scale: float, x: float, y: float) -> Pose:
        """Pose at (x, y) with a random scale change and rotation within the limits."""
        low, high = self.scale_range
        return Pose(
            x=x,
            y=y,
            scale=base_scale * float(rng.uniform(low, high)),
            angle_deg=float(rng.uniform(-self.max_rotation_deg, self.max_rotation_deg)),
        )

    def inside_point(
        self, rng: np.random.Generator, x_range: tuple[float, float] = (0.2, 0.8)
    ) -> tuple[float, float]:
        """A random point with x in ``x_range`` widths and y in the middle 60% of the height."""
        x = float(rng.uniform(*x_range)) * self.width
        y = float(rng.uniform(0.3, 0.7)) * self.height
        return x, y


def outside_x(stage: Stage, side: int, sprite_radius: float) -> float:
    """An x at which a sprite of bounding radius ``sprite_radius`` is fully off ``side``.

    Args:
        side: -1 for the left edge, +1 for the right edge.
        sprite_radius: half the sprite diagonal at the largest scale, output pixels.
    """
    margin = sprite_radius + 2.0
    return -margin if side < 0 else stage.width + margin


def sprite_radius(sprite_shape: tuple[int, ...], scale: float) -> float:
    """Half the diagonal of a sprite of ``sprite_shape`` (H, W, ...) drawn at ``scale``."""
    return 0.5 * math.hypot(sprite_shape[0], sprite_shape[1]) * scale
