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
from masklet.postprocess import fill_holes, small_components
from masklet.predictors.preprocess import image_to_array, preprocess_image
from masklet.predictors.prompts import PromptTensors, prepare_prompts
from masklet.runtime import keep_freed_memory_for

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
        # Resolving and downloading checkpoints is `masklet.build`'s job, a layer above the
        # predictors (DESIGN §13): imported here, when called, not by this module.
        from masklet.build import pretrained_model

        model, options = pretrained_model(model_id, kwargs, cls)
        return cls(model, **options)

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
        prompts = prepare_prompts(
            point_coords,
            point_labels,
            box,
            mask_input,
            self._orig_hw[index],
            self.model.image_size,
            normalize_coords,
            self.device,
        )
        masks, iou, low_res = self.predict_torch(prompts, multimask_output, return_logits, index)

        def to_numpy(tensor: Tensor) -> np.ndarray:
            tensor = tensor.squeeze(0).cpu()
            return tensor.numpy() if tensor.dtype == torch.bool else tensor.float().numpy()

        return to_numpy(masks), to_numpy(iou), to_numpy(low_res)

    @torch.no_grad()
    def predict_torch(
        self,
        prompts: PromptTensors,
        multimask_output: bool = True,
        return_logits: bool = False,
        image_index: int = 0,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Tensor-level prediction on prompts already in model-input coordinates.

        Returns masks `(B, C, H, W)` at the original size (bool unless `return_logits`),
        IoU `(B, C)` and clamped low-res logits `(B, C, S/4, S/4)`.
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
        masks = self._postprocess(decoded.masks, self._orig_hw[image_index])
        low_res = decoded.masks.float().clamp(-LOW_RES_LOGIT_LIMIT, LOW_RES_LOGIT_LIMIT)
        if not return_logits:
            masks = masks > self.mask_threshold
        return masks, decoded.iou_scores, low_res

    def _postprocess(self, low_res: Tensor, orig_hw: tuple[int, int]) -> Tensor:
        masks = low_res.float()
        # Holes and specks are both found on the decoder's logits (as the reference does),
        # then holes are filled and specks removed.
        specks = small_components(masks > self.mask_threshold, self.max_sprinkle_area)
        masks = fill_holes(masks, self.max_hole_area, self.mask_threshold)
        masks = torch.where(specks, torch.as_tensor(self.mask_threshold - 10.0), masks)
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
