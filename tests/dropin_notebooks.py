"""The three official notebooks' call sequences, each written once as a function of the names
the notebook imports (`dropin_helpers.Api`), with the notebook's calls and keywords in the
notebook's order (see dropin_helpers for the deviations, for speed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from dropin_helpers import DEVICE, IMAGE_SIZE, MODEL_CFG, NUM_FRAMES, OVERRIDES, Api


def image_notebook(
    api: Api, checkpoint: Path, images: list[np.ndarray], device: torch.device = DEVICE
) -> dict[str, Any]:
    """image_predictor_example.ipynb: every `predict` result, keyed by the notebook section."""
    results: dict[str, Any] = {}
    image = images[0]
    sam2_model = api.build_sam2(
        MODEL_CFG, str(checkpoint), device=device, hydra_overrides_extra=OVERRIDES
    )
    predictor = api.SAM2ImagePredictor(sam2_model)
    predictor.set_image(image)

    input_point = np.array([[120, 90]])
    input_label = np.array([1])
    masks, scores, logits = predictor.predict(
        point_coords=input_point, point_labels=input_label, multimask_output=True
    )
    sorted_ind = np.argsort(scores)[::-1]
    masks, scores, logits = masks[sorted_ind], scores[sorted_ind], logits[sorted_ind]
    results["one click"] = (masks, scores, logits)

    input_point = np.array([[120, 90], [200, 140]])
    input_label = np.array([1, 1])
    mask_input = logits[np.argmax(scores), :, :]  # Choose the model's best mask
    results["two clicks and the best mask"] = predictor.predict(
        point_coords=input_point,
        point_labels=input_label,
        mask_input=mask_input[None, :, :],
        multimask_output=False,
    )

    input_box = np.array([80, 60, 160, 120])
    results["box"] = predictor.predict(
        point_coords=None, point_labels=None, box=input_box[None, :], multimask_output=False
    )
    input_point, input_label = np.array([[150, 100]]), np.array([0])
    results["box and a negative click"] = predictor.predict(
        point_coords=input_point, point_labels=input_label, box=input_box, multimask_output=False
    )
    input_boxes = np.array([[10, 20, 230, 170], [80, 60, 160, 120], [150, 40, 220, 110]])
    results["batched boxes"] = predictor.predict(
        point_coords=None, point_labels=None, box=input_boxes, multimask_output=False
    )

    predictor.set_image(Image.fromarray(image))  # the README's PIL input
    results["one click, PIL image"] = predictor.predict(
        point_coords=np.array([[120, 90]]), point_labels=np.array([1]), multimask_output=True
    )

    img_batch = images
    boxes_batch = [np.array([[10, 20, 230, 170], [80, 60, 160, 120]]), np.array([[30, 30, 90, 90]])]
    predictor.set_image_batch(img_batch)
    results["image batch, boxes"] = predictor.predict_batch(
        None, None, box_batch=boxes_batch, multimask_output=False
    )
    image1_pts, image1_labels = np.array([[[120, 90]], [[60, 150]]]), np.array([[1], [1]])
    image2_pts, image2_labels = np.array([[[40, 50]], [[200, 30]]]), np.array([[1], [1]])
    pts_batch, labels_batch = [image1_pts, image2_pts], [image1_labels, image2_labels]
    masks_batch, scores_batch, logits_batch = predictor.predict_batch(
        pts_batch, labels_batch, box_batch=None, multimask_output=True
    )
    results["image batch, clicks"] = (masks_batch, scores_batch, logits_batch)
    results["best masks"] = [
        masks[range(len(masks)), np.argmax(scores, axis=-1)]
        for masks, scores in zip(masks_batch, scores_batch)
    ]
    results["model"] = sam2_model
    return results


def video_notebook(
    api: Api, checkpoint: Path, video_dir: Path, device: torch.device = DEVICE
) -> list[tuple[str, Any]]:
    """video_predictor_example.ipynb plus `add_new_mask` (tools/vos_inference.py): every
    `(step, frame_idx, obj_ids, logits)` the predictor returned, in order."""
    steps: list[tuple[str, Any]] = []

    def shown(step: str, frame_idx: int, obj_ids: list[int], logits: torch.Tensor) -> None:
        masks = {obj_id: (logits[i] > 0.0).cpu().numpy() for i, obj_id in enumerate(obj_ids)}
        assert all(mask.shape == (1, IMAGE_SIZE, IMAGE_SIZE) for mask in masks.values())
        steps.append((step, (frame_idx, list(obj_ids), logits.float().cpu().numpy())))

    def propagate(step: str) -> dict[int, dict[int, np.ndarray]]:
        video_segments = {}  # video_segments contains the per-frame segmentation results
        for out_frame_idx, out_obj_ids, out_mask_logits in predictor.propagate_in_video(
            inference_state
        ):
            video_segments[out_frame_idx] = {
                out_obj_id: (out_mask_logits[i] > 0.0).cpu().numpy()
                for i, out_obj_id in enumerate(out_obj_ids)
            }
            shown(step, out_frame_idx, out_obj_ids, out_mask_logits)
        assert sorted(video_segments) == list(range(NUM_FRAMES))
        return video_segments

    def add_new_points_or_box(step: str, frame_idx: int, obj_id: int, **prompt: Any) -> None:
        """The notebook's `predictor.add_new_points_or_box(inference_state=inference_state,
        frame_idx=..., obj_id=..., points=..., labels=..., box=...)` and its shown masks."""
        _, out_obj_ids, out_mask_logits = predictor.add_new_points_or_box(
            inference_state=inference_state, frame_idx=frame_idx, obj_id=obj_id, **prompt
        )
        shown(step, frame_idx, out_obj_ids, out_mask_logits)

    predictor = api.build_sam2_video_predictor(
        MODEL_CFG, str(checkpoint), device=device, hydra_overrides_extra=OVERRIDES
    )
    inference_state = predictor.init_state(video_path=str(video_dir))
    predictor.reset_state(inference_state)

    ann_frame_idx, ann_obj_id = 0, 1
    points, labels = np.array([[40, 60]], dtype=np.float32), np.array([1], np.int32)
    add_new_points_or_box("one click", ann_frame_idx, ann_obj_id, points=points, labels=labels)
    points, labels = np.array([[40, 60], [50, 50]], dtype=np.float32), np.array([1, 1], np.int32)
    add_new_points_or_box("two clicks", ann_frame_idx, ann_obj_id, points=points, labels=labels)
    propagate("propagate clicks")

    ann_frame_idx = 2  # a refinement click on a later frame
    points, labels = np.array([[100, 100]], dtype=np.float32), np.array([0], np.int32)
    add_new_points_or_box("negative click", ann_frame_idx, ann_obj_id, points=points, labels=labels)
    propagate("propagate the refinement")

    predictor.reset_state(inference_state)
    ann_frame_idx, ann_obj_id = 0, 4
    box = np.array([15, 35, 65, 85], dtype=np.float32)
    add_new_points_or_box("box", ann_frame_idx, ann_obj_id, box=box)
    points, labels = np.array([[40, 45]], dtype=np.float32), np.array([1], np.int32)
    add_new_points_or_box(
        "box and a click", ann_frame_idx, ann_obj_id, points=points, labels=labels, box=box
    )
    propagate("propagate the box")

    predictor.reset_state(inference_state)
    prompts = {}  # hold all the clicks we add for visualization
    for ann_obj_id, clicks, click_labels in (
        (2, [[40, 60]], [1]),
        (3, [[100, 20], [110, 30]], [1, 1]),
    ):
        points, labels = np.array(clicks, dtype=np.float32), np.array(click_labels, np.int32)
        prompts[ann_obj_id] = points, labels
        add_new_points_or_box(f"object {ann_obj_id}", 0, ann_obj_id, points=points, labels=labels)
    mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    mask[20:60, 80:120] = True
    _, out_obj_ids, out_mask_logits = predictor.add_new_mask(
        inference_state=inference_state, frame_idx=0, obj_id=5, mask=mask
    )
    shown("mask", 0, out_obj_ids, out_mask_logits)
    propagate("propagate three objects")
    return steps


def show_anns(anns: list[dict[str, Any]]) -> np.ndarray | None:
    """The notebook's overlay, without matplotlib: RGBA image of the masks, largest first."""
    if len(anns) == 0:
        return None
    sorted_anns = sorted(anns, key=(lambda x: x["area"]), reverse=True)
    segmentation = sorted_anns[0]["segmentation"]
    img = np.ones((segmentation.shape[0], segmentation.shape[1], 4))
    img[:, :, 3] = 0
    for ann in sorted_anns:
        m = ann["segmentation"]
        img[m] = np.concatenate([np.random.random(3), [0.5]])
    return img


def mask_generator_model(api: Api, checkpoint: Path, device: torch.device = DEVICE) -> Any:
    """The mask generator notebook's model: `build_sam2(..., apply_postprocessing=False)`."""
    return api.build_sam2(
        MODEL_CFG,
        str(checkpoint),
        device=device,
        apply_postprocessing=False,
        hydra_overrides_extra=OVERRIDES,
    )


def automatic_notebook(
    api: Api, checkpoint: Path, image: np.ndarray, device: torch.device = DEVICE
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    """automatic_mask_generator_example.ipynb: the default generator's and the tuned
    generator's masks, and the model."""
    sam2 = mask_generator_model(api, checkpoint, device)
    mask_generator = api.SAM2AutomaticMaskGenerator(sam2, points_per_side=8)
    masks = mask_generator.generate(image)
    show_anns(masks)
    mask_generator_2 = api.SAM2AutomaticMaskGenerator(
        model=sam2,
        points_per_side=8,  # 64 in the notebook
        points_per_batch=128,
        pred_iou_thresh=0.7,
        stability_score_thresh=0.92,
        stability_score_offset=0.7,
        crop_n_layers=1,
        box_nms_thresh=0.7,
        crop_n_points_downscale_factor=2,
        min_mask_region_area=25.0,
        use_m2m=True,
    )
    masks2 = mask_generator_2.generate(image)
    show_anns(masks2)
    return masks, masks2, sam2


def single_masks(api: Api, checkpoint: Path, image: np.ndarray) -> list[Any]:
    """The mask generator notebook's model (`apply_postprocessing=False`) in an image
    predictor: single-mask answers (logits) to a click and to a box."""
    sam2 = mask_generator_model(api, checkpoint)
    predictor = api.SAM2ImagePredictor(sam2)
    predictor.set_image(image)
    click = predictor.predict(
        point_coords=np.array([[120, 90]]),
        point_labels=np.array([1]),
        multimask_output=False,
        return_logits=True,
    )
    box = predictor.predict(box=np.array([80, 60, 160, 120]), multimask_output=False)
    return [click, box]
