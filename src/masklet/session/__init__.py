"""Session layer: typed tracking state with methods (`VideoSession`), its objects, memory rule,
per-frame engine and bounded feature cache. Imports only the model layer."""

from masklet.session.objects import Direction, MaskPrompt, PointPrompt
from masklet.session.video_session import (
    FrameProvider,
    SessionOptions,
    StepResult,
    VideoSession,
)

__all__ = [
    "Direction",
    "FrameProvider",
    "MaskPrompt",
    "PointPrompt",
    "SessionOptions",
    "StepResult",
    "VideoSession",
]
