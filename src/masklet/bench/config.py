"""Difficulty knobs of the synthetic VOS benchmark."""

from __future__ import annotations

from dataclasses import dataclass

from masklet.errors import ConfigError


@dataclass(frozen=True)
class SyntheticVideoConfig:
    """How each synthetic video is made; every field is a difficulty knob.

    Every video has, by construction: a panning and zooming camera, moving objects that
    change scale and rotate, an annotated object (label 1, "the target") that leaves the
    frame and comes back, another annotated object (label 2) that passes in front of the
    target twice, and unannotated distractors that look like the target.
    """

    width: int = 854
    """Output width in pixels (DAVIS 480p is 854x480)."""
    height: int = 480
    """Output height in pixels."""
    num_frames: int = 48
    """Frames per video (at least 8, so every event fits between first and last frame)."""
    num_objects: int = 2
    """Annotated objects (at least 2: the target and its occluder; more objects wander)."""
    object_size: float = 0.3
    """Longer side of an object at scale 1, as a fraction of the frame height."""
    scale_range: tuple[float, float] = (0.7, 1.4)
    """Range of the scale multiplier drawn at each keyframe (wider = harder)."""
    max_rotation_deg: float = 30.0
    """Largest absolute rotation drawn at each keyframe, degrees."""
    camera_pan: float = 0.3
    """Distance the camera travels over the video, in view widths."""
    camera_zoom: float = 1.3
    """Zoom factor reached at one end of the video (1 = no zoom)."""
    exit_fraction: float = 0.25
    """Share of the video during which the target is entirely outside the frame."""
    num_distractors: int = 1
    """Unannotated look-alikes of the target (0 turns them off)."""
    distractor_similarity: float = 0.9
    """1 = exact copy of the target's colours; lower values change its colours more."""
    brightness_change: float = 0.1
    """Amplitude of a slow global brightness change (0.1 = +-10%)."""
    noise_std: float = 2.0
    """Standard deviation of per-pixel Gaussian sensor noise, grey levels."""
    jpeg_quality: int = 90
    """Quality of the written JPEG frames."""

    def __post_init__(self) -> None:
        checks = [
            (self.width >= 32 and self.height >= 32, "width and height must be >= 32"),
            (self.num_frames >= 8, "num_frames must be >= 8"),
            (self.num_objects >= 2, "num_objects must be >= 2 (target and occluder)"),
            (0.05 <= self.object_size <= 0.8, "object_size must be in [0.05, 0.8]"),
            (0 < self.scale_range[0] <= self.scale_range[1], "scale_range must be 0 < min <= max"),
            (0 <= self.max_rotation_deg <= 180, "max_rotation_deg must be in [0, 180]"),
            (0 <= self.camera_pan <= 2, "camera_pan must be in [0, 2]"),
            (1 <= self.camera_zoom <= 4, "camera_zoom must be in [1, 4]"),
            (0.1 <= self.exit_fraction <= 0.5, "exit_fraction must be in [0.1, 0.5]"),
            (self.num_distractors >= 0, "num_distractors must be >= 0"),
            (0 <= self.distractor_similarity <= 1, "distractor_similarity must be in [0, 1]"),
            (0 <= self.brightness_change < 1, "brightness_change must be in [0, 1)"),
            (self.noise_std >= 0, "noise_std must be >= 0"),
            (1 <= self.jpeg_quality <= 100, "jpeg_quality must be in [1, 100]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"SyntheticVideoConfig: {message}")
