"""The reference's `sam2.build_sam` names, for porting by changing the import only.

`from sam2.build_sam import build_sam2` becomes `from masklet.build_sam import build_sam2`;
the one implementation is `masklet.build` (see docs/porting.md).
"""

from masklet.build import (
    build_sam2,
    build_sam2_hf,
    build_sam2_video_predictor,
    build_sam2_video_predictor_hf,
)

__all__ = [
    "build_sam2",
    "build_sam2_hf",
    "build_sam2_video_predictor",
    "build_sam2_video_predictor_hf",
]
