"""The reference's `sam2.sam2_image_predictor` name, for porting by changing the import only.

The one implementation is `masklet.predictors.image` (see docs/porting.md).
"""

from masklet.predictors.image import SAM2ImagePredictor

__all__ = ["SAM2ImagePredictor"]
