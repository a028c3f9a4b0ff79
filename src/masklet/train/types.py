"""The typed values that travel through training: a clip, the predictions of one decoder call,
and what a clip's rollout returns.

Conventions: `T` frames, `K` objects, `S` the model's square input side, `M` masks per decoder
call (3 with multi-mask output, else 1). Images are RGB uint8 at `S x S`; masks are bool at
`S x S`; coordinates are xy pixels of the `S x S` input.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class TrainClip:
    """One training sample after augmentation: `T` frames (T = 1 for an image) and `K >= 1`
    objects, at least one of them visible on frame 0.

    Attributes:
        name: where it came from (`"<dataset>/<video>@<first frame>"`), for logs and errors.
        images: `(T, 3, S, S)` uint8 RGB.
        masks: `(T, K, S, S)` bool, object k's mask on frame t (all False where it is absent).
        obj_ids: the K objects' ids in the source annotation.
    """

    name: str
    images: Tensor
    masks: Tensor
    obj_ids: tuple[int, ...]

    @property
    def num_frames(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_objects(self) -> int:
        return int(self.masks.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])


@dataclass
class DecoderStep:
    """The outputs of one decoder call for the K objects of a frame (one prompt step).

    Attributes:
        multimask_logits: `(K, M, S, S)` float32 mask logits upsampled to the input size (masks
            of objects judged absent hold the no-object score, as in the model).
        iou_scores: `(K, M)` predicted IoU of each mask.
        object_score_logits: `(K, 1)` object presence logits.
    """

    multimask_logits: Tensor
    iou_scores: Tensor
    object_score_logits: Tensor


@dataclass
class FramePrediction:
    """Every decoder call made on one frame of a clip, in order (1 + correction clicks).

    Attributes:
        frame_idx: the frame in the clip.
        steps: the decoder calls; losses are summed over them.
        conditioning: the frame entered memory as a conditioning (prompted) frame.
        num_clicks: clicks given on this frame (0 for a tracked frame or a mask prompt;
            a box counts as 2).
    """

    frame_idx: int
    steps: list[DecoderStep]
    conditioning: bool
    num_clicks: int
