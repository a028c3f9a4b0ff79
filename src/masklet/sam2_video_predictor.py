"""The reference's `sam2.sam2_video_predictor` name, for porting by changing the import only.

The one implementation is `masklet.predictors.video` (see docs/porting.md).
"""

from masklet.predictors.video import SAM2VideoPredictor

__all__ = ["SAM2VideoPredictor"]
