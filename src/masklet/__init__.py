"""masklet: SAM 2 / SAM 2.1 from scratch in PyTorch.

Public entry points: `build_sam2`, `SAM2ImagePredictor`, the presets in `masklet.config`.
"""

from masklet.build import (
    build_sam2,
    build_sam2_hf,
    build_sam2_video_predictor,
    build_sam2_video_predictor_hf,
)
from masklet.config import PRESETS, SAM2Config, get_config
from masklet.errors import CheckpointError, ConfigError, InputError, MaskletError
from masklet.io.sources import read_frames
from masklet.predictors.automatic import SAM2AutomaticMaskGenerator
from masklet.predictors.image import SAM2ImagePredictor
from masklet.predictors.streaming import StepResult, StreamingTracker
from masklet.predictors.video import SAM2VideoPredictor

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "CheckpointError",
    "ConfigError",
    "InputError",
    "MaskletError",
    "SAM2AutomaticMaskGenerator",
    "SAM2Config",
    "SAM2ImagePredictor",
    "SAM2VideoPredictor",
    "StepResult",
    "StreamingTracker",
    "__version__",
    "build_sam2",
    "build_sam2_hf",
    "build_sam2_video_predictor",
    "build_sam2_video_predictor_hf",
    "get_config",
    "read_frames",
]
