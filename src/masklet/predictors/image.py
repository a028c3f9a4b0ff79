"""`SAM2ImagePredictor`: encode an image once, then predict masks for many prompts.

Method names and return values follow the reference predictor so user code ports by changing
the import. Coordinates are xy pixels of the original image unless `normalize_coords=False`,
in which case they are fractions of the image size in [0, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from masklet.errors import InputError, PredictorStateError
from masklet.model.sam2 import ImageFeatures, SAM2Model
from masklet.postprocess import fill_holes_and_remove_specks
from masklet.predictors.preprocess import image_to_array
from masklet.predictors.pretrained import load_pretrained
from masklet.predictors.prompts import PromptTensors, prepare_prompts
from masklet.runtime import keep_freed_memory_for
from masklet.session.preprocess import preprocess_image

#: Low-resolution logits returned to the user are clamped to this range (reference behaviour).
LOW_RES_LOGIT_LIMIT = 32.0


class SAM2ImagePredictor:
    """Wraps a `SAM2Model` for single-image (or batched-image) prompting.

    Args:
        sam_model: the model (eval mode); the reference's name for it.
        mask_threshold: logit threshold for binary masks.
        max_hole_area: fill background holes up to this area (low-res pixels) before upsampling.
        max_sprinkle_area: remove foreground specks up to this area before upsampling.
    """

    def __init__(
        self,
        sam_model: SAM2Model,
        mask_threshold: float = 0.0,
        max_hole_area: float = 0.0,
        max_sprinkle_area: float = 0.0,
    ) -> None:
        self.model = sam_model
        keep_freed_memory_for(sam_model)
        self.mask_threshold = mask_threshold
        self.max_hole_area = max_hole_area
        self.max_sprinkle_area = max_sprinkle_area
        self._features: ImageFeatures | None = None
        self._embedding: Tensor | None = None
        self._orig_hw: list[tuple[int, int]] = []
        self._is_batch = False

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs: Any) -> SAM2ImagePredictor:
        """The predictor on the official checkpoint `model_id` names (e.g.
        `"facebook/sam2.1-hiera-tiny"`), from masklet's weights cache (downloaded on first
        use). `masklet.build_sam2`'s keywords (`device`, `image_size`, ...) build the model;
        the others (`mask_threshold`, ...) go to this class."""
        return load_pretrained(cls, model_id, kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def is_image_set(self) -> bool:
        return self._features is not None

    @property
    def orig_hw(self) -> list[tuple[int, int]]:
        """`(H, W)` of each set image."""
        return list(self._orig_hw)

    def reset_predictor(self) -> None:
        """Forget the current image(s) and their embeddings."""
        self._features = None
        self._embedding = None
        self._orig_hw = []
        self._is_batch = False

    @torch.no_grad()
    def set_image(self, image: Any) -> None:
        """Encode one image: `H x W x 3` uint8 RGB numpy array or PIL image."""
        array = image_to_array(image)
        self._encode([array])

    @torch.no_grad()
    def set_image_batch(self, image_list: list[Any]) -> None:
        """Encode several images at once (for `predict_batch`)."""
        if not isinstance(image_list, list) or not image_list:
            raise InputError("set_image_batch expects a non-empty list of images")
        self._encode([image_to_array(image) for image in image_list])
        self._is_batch = True

    def _encode(self, arrays: list[np.ndarray]) -> None:
        self.reset_predictor()
        size = self.model.image_size
        batch = torch.stack([preprocess_image(array, size, self.device) for array in arrays])
        features = self.model.encode_image(batch)
        self._features = features
        self._embedding = self.model.embedding_without_memory(features.image_embedding)
        self._orig_hw = [(int(a.shape[0]), int(a.shape[1])) for a in arrays]

    def get_image_embedding(self) -> Tensor:
        """Image embedding `(B, 256, S/16, S/16)` of the set image(s), as used by the decoder."""
        if self._embedding is None:
            raise PredictorStateError("an image must be set with set_image(...) first")
        return self._embedding

    def get_high_res_features(self) -> tuple[Tensor, Tensor]:
        """The decoder's stride-4 `(B, 32, S/4, S/4)` and stride-8 `(B, 64, S/8, S/8)` features
        of the set image(s)."""
        high_res = self._require_image(None).high_res_features
        return high_res[0], high_res[1]

    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predict masks for prompts on the set image.

        Args:
            point_coords: `(N, 2)` or `(B, N, 2)` xy points.
            point_labels: `(N,)` or `(B, N)`: 1 foreground, 0 background.
            box: `(4,)` or `(B, 4)` xyxy boxes.
            mask_input: `(1, 256, 256)` or `(B, 1, 256, 256)` low-res logits from a previous
                call (256 = image_size / 4).
            multimask_output: return 3 candidate masks instead of 1.
            return_logits: return logits instead of boolean masks.
            normalize_coords: coordinates are pixels (True) or fractions in [0, 1] (False).

        Returns:
            masks `(C, H, W)` (or `(B, C, H, W)`), bool or float32 logits at the image size;
            IoU predictions `(C,)`; low-res logits `(C, 256, 256)` float32.
        """
        self._require_image(batched=False)
        return self._predict_numpy(
            len(self._orig_hw) - 1,
            point_coords,
            point_labels,
            box,
            mask_input,
            multimask_output,
            return_logits,
            normalize_coords,
        )

    def predict_batch(
        self,
        point_coords_batch: list[np.ndarray] | None = None,
        point_labels_batch: list[np.ndarray] | None = None,
        box_batch: list[np.ndarray] | None = None,
        mask_input_batch: list[np.ndarray] | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """`predict` for each image set with `set_image_batch`; lists are indexed by image."""
        self._require_image(batched=True)
        results: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
        for index in range(len(self._orig_hw)):
            outputs = self._predict_numpy(
                index,
                _pick(point_coords_batch, index),
                _pick(point_labels_batch, index),
                _pick(box_batch, index),
                _pick(mask_input_batch, index),
                multimask_output,
                return_logits,
                normalize_coords,
            )
            for target, value in zip(results, outputs):
                target.append(value)
        return results

    def _predict_numpy(
        self,
        index: int,
        point_coords: np.ndarray | None,
        point_labels: np.ndarray | None,
        box: np.ndarray | None,
        mask_input: np.ndarray | None,
        multimask_output: bool,
        return_logits: bool,
        normalize_coords: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        prompts = self.model_input_prompts(
            point_coords, point_labels, box, mask_input, normalize_coords, index
        )
        masks, iou, low_res = self.predict_torch(prompts, multimask_output, return_logits, index)

        def to_numpy(tensor: Tensor) -> np.ndarray:
            tensor = tensor.squeeze(0).cpu()
            return tensor.numpy() if tensor.dtype == torch.bool else tensor.float().numpy()

        return to_numpy(masks), to_numpy(iou), to_numpy(low_res)

    def model_input_prompts(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        normalize_coords: bool = True,
        image_index: int = 0,
    ) -> PromptTensors:
        """Check prompts given as to `predict` (xy pixels of set image `image_index`, or
        fractions with `normalize_coords=False`) and map them to model-input pixels, for
        `predict_torch` and `decode_low_res`: coords `(B, N, 2)` float32 (box corners, labels
        2 and 3, first), labels `(B, N)` int32, mask logits `(B, 1, S/4, S/4)` float32."""
        self._require_image(batched=None)
        return prepare_prompts(
            point_coords,
            point_labels,
            box,
            mask_input,
            self._orig_hw[image_index],
            self.model.image_size,
            normalize_coords,
            self.device,
        )

    @torch.no_grad()
    def decode_low_res(
        self, prompts: PromptTensors, multimask_output: bool = True, image_index: int = 0
    ) -> tuple[Tensor, Tensor]:
        """Decode prompts in model-input coordinates (`model_input_prompts`) on set image
        `image_index`, a batch of `B` prompts at once.

        Returns the decoder's low-resolution logits `(B, C, S/4, S/4)` as they come (not
        clamped, no hole or speck clean-up, not resized; the decoder's dtype) and its IoU
        predictions `(B, C)`; `C` is 3 with `multimask_output`, else 1.
        """
        features = self._require_image(batched=None)
        embedding = self.get_image_embedding()[image_index : image_index + 1]
        high_res = tuple(
            level[image_index : image_index + 1] for level in features.high_res_features
        )
        decoded = self.model.decode_prompts(
            embedding,
            (high_res[0], high_res[1]),
            prompts.coords,
            prompts.labels,
            prompts.mask_input,
            multimask_output,
        )
        return decoded.masks, decoded.iou_scores

    @torch.no_grad()
    def predict_torch(
        self,
        prompts: PromptTensors,
        multimask_output: bool = True,
        return_logits: bool = False,
        image_index: int = 0,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Tensor-level prediction on prompts already in model-input coordinates
        (`model_input_prompts`).

        Returns masks `(B, C, H, W)` at the original size (bool unless `return_logits`),
        IoU `(B, C)` and clamped low-res logits `(B, C, S/4, S/4)`.
        """
        low_res, iou = self.decode_low_res(prompts, multimask_output, image_index)
        masks = self._postprocess(low_res, self._orig_hw[image_index])
        clamped = low_res.float().clamp(-LOW_RES_LOGIT_LIMIT, LOW_RES_LOGIT_LIMIT)
        if not return_logits:
            masks = masks > self.mask_threshold
        return masks, iou, clamped

    def _postprocess(self, low_res: Tensor, orig_hw: tuple[int, int]) -> Tensor:
        """Low-res logits `(B, C, h, w)` -> hole/speck clean-up (the predictor's areas, in
        low-res pixels) -> bilinear float32 logits `(B, C, H, W)` at `orig_hw`."""
        masks = fill_holes_and_remove_specks(
            low_res.float(), self.max_hole_area, self.max_sprinkle_area, self.mask_threshold
        )
        return F.interpolate(masks, orig_hw, mode="bilinear", align_corners=False)

    def _require_image(self, batched: bool | None) -> ImageFeatures:
        if self._features is None:
            raise PredictorStateError(
                "an image must be set with set_image(...) or set_image_batch(...) first"
            )
        if batched is True and not self._is_batch:
            raise PredictorStateError("predict_batch needs images set with set_image_batch(...)")
        return self._features


def _pick(values: list[np.ndarray] | None, index: int) -> np.ndarray | None:
    return values[index] if values is not None else None
