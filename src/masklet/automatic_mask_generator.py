"""The reference's `sam2.automatic_mask_generator` name, for porting by changing the import
only.

The one implementation is `masklet.predictors.automatic` (see docs/porting.md).
"""

from masklet.predictors.automatic import SAM2AutomaticMaskGenerator

__all__ = ["SAM2AutomaticMaskGenerator"]
