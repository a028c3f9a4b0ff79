"""The official sam2 notebooks' call sequences, run on masklet with only the imports changed.

`image_predictor_example.ipynb`, `video_predictor_example.ipynb` and
`automatic_mask_generator_example.ipynb` (facebookresearch/sam2 at 2b90b9f) are each written
once below as a function of the names the notebook imports (`Api`), with the notebook's calls
and keywords in the notebook's order. The tests run them with masklet's names
(`masklet.build_sam`, `masklet.sam2_image_predictor`, ...); where the oracle is installed the
`parity` tests run the same functions with `sam2`'s names on the same checkpoint and compare.

Deviations from the notebooks, for speed: the model input at 128 px through
`hydra_overrides_extra=["++model.image_size=128"]` (exactly how the reference is told), a small
photo and a 3-frame video, prompts placed on them, and 8 grid points per side instead of 64 in
the mask generator. The weights are random, in the official format, with two tweaks that make
the checks bite (see the `checkpoint` fixtures): single-mask answers are unstable, so they
depend on `apply_postprocessing`, and the mask generator's model is sharp and confident, so
masks pass its filters.

Test-only help for the oracle: its image predictor's feature sizes are set for 128 px
(`_bb_feat_sizes`, DESIGN §4), and a stand-in for its CUDA extension `sam2._C` (8-connected
components by max-pooling) lets it run the post-processing the notebooks ask for
(`fill_hole_area=8`, `min_mask_region_area=25`) on CPU, as masklet does.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import masklet
from conftest import PARITY_IMAGE_SIZE
from masklet.build import STABILITY_FALLBACK_OFF, resolve_settings
from masklet.config import canonical_preset_name
from masklet.errors import CheckpointError, ConfigError
from oracle import ORACLE_CONFIGS, install_torchvision_stand_in, oracle_available, oracle_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

IMAGE_SIZE = 128
MODEL_CFG = "configs/sam2.1/sam2.1_hiera_t.yaml"
OVERRIDES = [f"++model.image_size={IMAGE_SIZE}"]
DEVICE = torch.device("cpu")
NUM_FRAMES = 3
SCORE_TOLERANCE = 1e-4
PROPAGATED_TOLERANCE = 1e-3
MIN_BINARY_AGREEMENT = 0.999
HYPERNETWORKS = "sam_mask_decoder.output_hypernetworks_mlps."
# The single-mask token's output layer is scaled by this: its logits become tiny (unstable).
SINGLE_MASK_SCALE = 1e-3
# Scaling the mask hypernetworks' output layers makes a random model's masks sharp (stable),
# and a bias on the IoU head makes it confident, so masks pass the generator's filters.
HYPERNETWORK_SCALE = 40.0
IOU_HEAD_BIAS = 3.0
# What the reference warns when its extension fails: the stand-in must really run.
SKIPPED_POSTPROCESSING = "(?s).*Skipping the post-processing"


# ---------------------------------------------------------------- the two sets of names


@dataclass(frozen=True)
class Api:
    """The names a notebook imports, from `sam2` or from masklet."""

    build_sam2: Callable[..., Any]
    build_sam2_video_predictor: Callable[..., Any]
    SAM2ImagePredictor: Callable[..., Any]
    SAM2AutomaticMaskGenerator: Callable[..., Any]


def masklet_api() -> Api:
    """`from masklet.build_sam import ...` etc.: the notebooks' imports with `sam2` renamed."""
    from masklet.automatic_mask_generator import SAM2AutomaticMaskGenerator
    from masklet.build_sam import build_sam2, build_sam2_video_predictor
    from masklet.sam2_image_predictor import SAM2ImagePredictor

    return Api(
        build_sam2, build_sam2_video_predictor, SAM2ImagePredictor, SAM2AutomaticMaskGenerator
    )


def oracle_api() -> Api:
    """The reference's names; its image predictors get feature sizes for `IMAGE_SIZE`."""
    install_torchvision_stand_in()
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
    from sam2.build_sam import build_sam2, build_sam2_video_predictor
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    sizes = [(IMAGE_SIZE // 4,) * 2, (IMAGE_SIZE // 8,) * 2, (IMAGE_SIZE // 16,) * 2]

    class SizedImagePredictor(SAM2ImagePredictor):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._bb_feat_sizes = sizes

    class SizedMaskGenerator(SAM2AutomaticMaskGenerator):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.predictor._bb_feat_sizes = sizes

    return Api(build_sam2, build_sam2_video_predictor, SizedImagePredictor, SizedMaskGenerator)


def _connected_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stand-in for `sam2._C.get_connected_componnets` (the reference's spelling): 8-connected
    labels of `mask (N, 1, H, W)` by growing each pixel's index with 3x3 max-pooling inside
    the foreground until nothing changes, and each pixel's component area."""
    foreground = mask.bool().cpu()
    index = torch.arange(1, foreground.numel() + 1, dtype=torch.float64)
    labels = torch.where(foreground, index.view(foreground.shape), 0.0)
    while True:
        grown = F.max_pool2d(labels, kernel_size=3, stride=1, padding=1)
        grown = torch.where(foreground, grown, 0.0)
        if torch.equal(grown, labels):
            break
        labels = grown
    labels_long = labels.long()
    areas = torch.bincount(labels_long.flatten())[labels_long]
    areas = torch.where(foreground, areas, 0)
    return labels_long.to(mask.device), areas.to(mask.device)


@contextmanager
def oracle_extension() -> Iterator[None]:
    """Give the oracle its post-processing on CPU for the duration (see the module note)."""
    extension = types.ModuleType("sam2._C")
    extension.get_connected_componnets = _connected_components  # type: ignore[attr-defined]
    previous = sys.modules.get("sam2._C")
    sys.modules["sam2._C"] = extension
    try:
        yield
    finally:
        if previous is None:
            sys.modules.pop("sam2._C", None)
        else:
            sys.modules["sam2._C"] = previous


# ---------------------------------------------------------------- inputs


def _tweaked(source: Path, target: Path, factors: dict[str, float], iou_bias: float = 0.0) -> Path:
    """`source` with the tensors whose names start with a key of `factors` scaled by its value
    and `iou_bias` added to the IoU head's output bias; saved as `target`."""
    state = torch.load(source, map_location="cpu", weights_only=True)["model"]
    for name in list(state):
        for prefix, factor in factors.items():
            if name.startswith(prefix):
                state[name] = state[name] * factor
    state["sam_mask_decoder.iou_prediction_head.layers.2.bias"] += iou_bias
    torch.save({"model": state}, target)
    return target


@pytest.fixture(scope="module")
def checkpoint(checkpoint_dir: Path, random_checkpoint: Path) -> Path:
    """Random weights in the official format (the oracle's, richer, when it is installed), with
    the single-mask token's hypernetwork output scaled down: its masks are then unstable, so
    every single-mask answer depends on the dynamic multi-mask fallback, the setting that
    `apply_postprocessing` controls."""
    source = random_checkpoint
    if oracle_available():
        source = oracle_checkpoint("sam2.1_hiera_t", PARITY_IMAGE_SIZE, str(checkpoint_dir))
    factors = {f"{HYPERNETWORKS}0.layers.2.": SINGLE_MASK_SCALE}
    return _tweaked(source, checkpoint_dir / "dropin_unstable_single_mask.pt", factors)


@pytest.fixture(scope="module")
def confident_checkpoint(checkpoint: Path, checkpoint_dir: Path) -> Path:
    """Random weights with sharp, confident masks, for the mask generator (see the constants):
    every hypernetwork output `HYPERNETWORK_SCALE` times its original value (which undoes
    `checkpoint`'s change to the single-mask token) and the IoU head's bias raised."""
    factors = {f"{HYPERNETWORKS}{i}.layers.2.": HYPERNETWORK_SCALE for i in range(1, 4)}
    factors[f"{HYPERNETWORKS}0.layers.2."] = HYPERNETWORK_SCALE / SINGLE_MASK_SCALE
    target = checkpoint_dir / "dropin_confident.pt"
    return _tweaked(checkpoint, target, factors, iou_bias=IOU_HEAD_BIAS)


@pytest.fixture(scope="module")
def images(photo: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """The notebook's `np.array(Image.open(path).convert("RGB"))` for two JPEG photos."""
    folder = tmp_path_factory.mktemp("images")
    arrays = []
    for index, array in enumerate([photo, np.ascontiguousarray(photo[::-1, ::-1])]):
        Image.fromarray(array).save(folder / f"{index}.jpg", quality=95)
        arrays.append(np.array(Image.open(folder / f"{index}.jpg").convert("RGB")))
    return arrays


def render_frame(index: int) -> np.ndarray:
    """A `IMAGE_SIZE` square RGB frame: a textured disk moving right over a gradient."""
    ys, xs = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float64)
    frame = np.stack([xs * 1.5, ys * 1.5, 128 + 60 * np.sin(xs / 7 + ys / 11)], axis=-1)
    disk = (xs - 40 - 10 * index) ** 2 + (ys - 60) ** 2 <= 22**2
    frame[disk] = (230, 40, 40)
    frame[disk, 1] += 40 * (1 + np.sin(xs[disk] / 3))
    return np.clip(frame, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The notebook's folder of `<frame_index>.jpg` frames (`ffmpeg ... '%05d.jpg'`)."""
    folder = tmp_path_factory.mktemp("bedroom")
    for index in range(NUM_FRAMES):
        Image.fromarray(render_frame(index)).save(folder / f"{index:05d}.jpg", quality=95)
    return folder


# ---------------------------------------------------------------- the notebooks


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

    predictor = api.build_sam2_video_predictor(
        MODEL_CFG, str(checkpoint), device=device, hydra_overrides_extra=OVERRIDES
    )
    inference_state = predictor.init_state(video_path=str(video_dir))
    predictor.reset_state(inference_state)

    ann_frame_idx, ann_obj_id = 0, 1
    points, labels = np.array([[40, 60]], dtype=np.float32), np.array([1], np.int32)
    _, out_obj_ids, out_mask_logits = predictor.add_new_points_or_box(
        inference_state=inference_state,
        frame_idx=ann_frame_idx,
        obj_id=ann_obj_id,
        points=points,
        labels=labels,
    )
    shown("one click", ann_frame_idx, out_obj_ids, out_mask_logits)
    points, labels = np.array([[40, 60], [50, 50]], dtype=np.float32), np.array([1, 1], np.int32)
    _, out_obj_ids, out_mask_logits = predictor.add_new_points_or_box(
        inference_state=inference_state,
        frame_idx=ann_frame_idx,
        obj_id=ann_obj_id,
        points=points,
        labels=labels,
    )
    shown("two clicks", ann_frame_idx, out_obj_ids, out_mask_logits)
    propagate("propagate clicks")

    ann_frame_idx = 2  # a refinement click on a later frame
    points, labels = np.array([[100, 100]], dtype=np.float32), np.array([0], np.int32)
    _, out_obj_ids, out_mask_logits = predictor.add_new_points_or_box(
        inference_state=inference_state,
        frame_idx=ann_frame_idx,
        obj_id=ann_obj_id,
        points=points,
        labels=labels,
    )
    shown("negative click", ann_frame_idx, out_obj_ids, out_mask_logits)
    propagate("propagate the refinement")

    predictor.reset_state(inference_state)
    ann_frame_idx, ann_obj_id = 0, 4
    box = np.array([15, 35, 65, 85], dtype=np.float32)
    _, out_obj_ids, out_mask_logits = predictor.add_new_points_or_box(
        inference_state=inference_state, frame_idx=ann_frame_idx, obj_id=ann_obj_id, box=box
    )
    shown("box", ann_frame_idx, out_obj_ids, out_mask_logits)
    points, labels = np.array([[40, 45]], dtype=np.float32), np.array([1], np.int32)
    _, out_obj_ids, out_mask_logits = predictor.add_new_points_or_box(
        inference_state=inference_state,
        frame_idx=ann_frame_idx,
        obj_id=ann_obj_id,
        points=points,
        labels=labels,
        box=box,
    )
    shown("box and a click", ann_frame_idx, out_obj_ids, out_mask_logits)
    propagate("propagate the box")

    predictor.reset_state(inference_state)
    prompts = {}  # hold all the clicks we add for visualization
    for ann_obj_id, clicks, click_labels in (
        (2, [[40, 60]], [1]),
        (3, [[100, 20], [110, 30]], [1, 1]),
    ):
        points, labels = np.array(clicks, dtype=np.float32), np.array(click_labels, np.int32)
        prompts[ann_obj_id] = points, labels
        _, out_obj_ids, out_mask_logits = predictor.add_new_points_or_box(
            inference_state=inference_state,
            frame_idx=0,
            obj_id=ann_obj_id,
            points=points,
            labels=labels,
        )
        shown(f"object {ann_obj_id}", 0, out_obj_ids, out_mask_logits)
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


def automatic_notebook(
    api: Api, checkpoint: Path, image: np.ndarray, device: torch.device = DEVICE
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    """automatic_mask_generator_example.ipynb: the default generator's and the tuned
    generator's masks, and the model."""
    sam2 = api.build_sam2(
        MODEL_CFG,
        str(checkpoint),
        device=device,
        apply_postprocessing=False,
        hydra_overrides_extra=OVERRIDES,
    )
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
    sam2 = api.build_sam2(
        MODEL_CFG,
        str(checkpoint),
        device=DEVICE,
        apply_postprocessing=False,
        hydra_overrides_extra=OVERRIDES,
    )
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


# ---------------------------------------------------------------- masklet runs (shared)


@pytest.fixture(scope="module")
def image_ours(checkpoint: Path, images: list[np.ndarray]) -> dict[str, Any]:
    return image_notebook(masklet_api(), checkpoint, images)


@pytest.fixture(scope="module")
def video_ours(checkpoint: Path, video_dir: Path) -> list[tuple[str, Any]]:
    return video_notebook(masklet_api(), checkpoint, video_dir)


@pytest.fixture(scope="module")
def automatic_ours(
    confident_checkpoint: Path, images: list[np.ndarray]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    return automatic_notebook(masklet_api(), confident_checkpoint, images[0])


@pytest.fixture(scope="module")
def single_ours(checkpoint: Path, images: list[np.ndarray]) -> list[Any]:
    return single_masks(masklet_api(), checkpoint, images[0])


def test_image_notebook_runs(image_ours: dict[str, Any], images: list[np.ndarray]) -> None:
    height, width = images[0].shape[:2]
    low_res = IMAGE_SIZE // 4
    masks, scores, logits = image_ours["one click"]
    assert masks.shape == (3, height, width) and masks.dtype == np.bool_
    assert scores.shape == (3,) and logits.shape == (3, low_res, low_res)
    assert list(scores) == sorted(scores, reverse=True)
    for name in ("two clicks and the best mask", "box", "box and a negative click"):
        masks, scores, logits = image_ours[name]
        assert masks.shape == (1, height, width) and scores.shape == (1,), name
    masks, scores, _ = image_ours["batched boxes"]
    assert masks.shape == (3, 1, height, width) and scores.shape == (3, 1)
    for a, b in zip(image_ours["one click, PIL image"], image_ours["one click"]):
        assert a.shape == b.shape
    masks_batch, _, _ = image_ours["image batch, boxes"]
    # One box: the batch axis is squeezed away, as in the reference.
    assert [m.shape for m in masks_batch] == [(2, 1, height, width), (1, height, width)]
    best = image_ours["best masks"]
    assert [m.shape for m in best] == [(2, height, width)] * 2
    assert not image_ours["model"].training


def test_apply_postprocessing_false_turns_the_fallback_off(
    single_ours: list[Any], image_ours: dict[str, Any]
) -> None:
    """Same checkpoint, same box: with post-processing (the image notebook) the unstable
    single mask is replaced by the best of three; without, it is kept."""
    with_fallback, without_fallback = image_ours["box"], single_ours[1]
    assert with_fallback[0].shape == without_fallback[0].shape
    assert (with_fallback[0] != without_fallback[0]).mean() > 0.01
    assert not np.allclose(with_fallback[1], without_fallback[1])


def test_video_notebook_runs(video_ours: list[tuple[str, Any]]) -> None:
    names = [name for name, _ in video_ours]
    assert names.count("propagate three objects") == NUM_FRAMES
    last_ids = video_ours[-1][1][1]
    assert last_ids == [2, 3, 5]
    logits = video_ours[-1][1][2]
    assert logits.shape == (3, 1, IMAGE_SIZE, IMAGE_SIZE) and logits.dtype == np.float32


def test_automatic_notebook_runs(
    automatic_ours: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
    images: list[np.ndarray],
) -> None:
    masks, masks2, sam2 = automatic_ours
    assert len(masks) > 0 and len(masks2) > 0, "the confident random model yields masks"
    expected = {
        "segmentation",
        "area",
        "bbox",
        "predicted_iou",
        "point_coords",
        "stability_score",
        "crop_box",
    }
    assert masks[0].keys() == expected
    for ann in masks2:
        assert ann["segmentation"].shape == images[0].shape[:2]
        assert ann["area"] == int(ann["segmentation"].sum())
    # apply_postprocessing=False: no dynamic multi-mask fallback (the reference's meaning).
    assert sam2.config.dynamic_multimask_stability_thresh == STABILITY_FALLBACK_OFF


def _check_autocast_results(image: dict[str, Any], video: list[tuple[str, Any]]) -> None:
    masks, scores, logits = image["one click"]
    assert masks.dtype == np.bool_ and np.isfinite(scores).all() and np.isfinite(logits).all()
    assert [name for name, _ in video].count("propagate three objects") == NUM_FRAMES
    assert all(np.isfinite(step[2]).all() for _, step in video)


def test_notebooks_under_cpu_bfloat16_autocast(
    checkpoint: Path, images: list[np.ndarray], video_dir: Path
) -> None:
    """The notebooks run everything inside `torch.autocast(device_type, dtype=torch.bfloat16)`
    (on CUDA); on CPU the same context must work too."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        image = image_notebook(masklet_api(), checkpoint, images)
        video = video_notebook(masklet_api(), checkpoint, video_dir)
    _check_autocast_results(image, video)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_notebooks_on_cuda_as_the_notebooks_run_them(
    checkpoint: Path, images: list[np.ndarray], video_dir: Path
) -> None:
    """`device = torch.device("cuda")` and bfloat16 autocast, the notebooks' GPU set-up."""
    cuda = torch.device("cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        image = image_notebook(masklet_api(), checkpoint, images, cuda)
        video = video_notebook(masklet_api(), checkpoint, video_dir, cuda)
        masks, _, _ = automatic_notebook(masklet_api(), checkpoint, images[0], cuda)[:3]
    _check_autocast_results(image, video)
    assert isinstance(masks, list)


# ---------------------------------------------------------------- parity with the oracle


def _assert_arrays_close(ours: Any, theirs: Any, name: str, tolerance: float) -> None:
    if isinstance(ours, (list, tuple)):
        assert len(ours) == len(theirs), name
        for a, b in zip(ours, theirs):
            _assert_arrays_close(a, b, name, tolerance)
        return
    assert ours.shape == theirs.shape, name
    if ours.dtype == np.bool_:
        agreement = (ours == theirs).mean() if ours.size else 1.0
        assert agreement >= MIN_BINARY_AGREEMENT, (name, agreement)
    else:
        worst = float(np.abs(ours - theirs).max()) if ours.size else 0.0
        assert worst <= tolerance, (name, worst)


@pytest.mark.parity
def test_image_notebook_matches_the_reference(
    image_ours: dict[str, Any], checkpoint: Path, images: list[np.ndarray]
) -> None:
    theirs = image_notebook(oracle_api(), checkpoint, images)
    assert image_ours.keys() == theirs.keys()
    for name in image_ours:
        if name != "model":
            _assert_arrays_close(image_ours[name], theirs[name], name, SCORE_TOLERANCE)


@pytest.mark.parity
def test_video_notebook_matches_the_reference(
    video_ours: list[tuple[str, Any]], checkpoint: Path, video_dir: Path
) -> None:
    with oracle_extension(), warnings.catch_warnings():
        warnings.filterwarnings("error", message=SKIPPED_POSTPROCESSING)
        theirs = video_notebook(oracle_api(), checkpoint, video_dir)
    assert [name for name, _ in video_ours] == [name for name, _ in theirs]
    for (name, (frame, ids, ours)), (_, (their_frame, their_ids, reference)) in zip(
        video_ours, theirs
    ):
        assert (frame, ids) == (their_frame, their_ids), name
        tolerance = PROPAGATED_TOLERANCE if name.startswith("propagate") else SCORE_TOLERANCE
        _assert_arrays_close(ours, reference, name, tolerance)
        _assert_arrays_close(ours > 0, reference > 0, name, tolerance)


def _assert_same_annotations(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    assert len(ours) == len(theirs) > 0
    for mine, reference in zip(ours, theirs):
        assert mine.keys() == reference.keys()
        a, b = mine["segmentation"], reference["segmentation"]
        assert (a & b).sum() / max((a | b).sum(), 1) >= 0.99
        for key in ("predicted_iou", "stability_score"):
            assert abs(mine[key] - reference[key]) <= SCORE_TOLERANCE, key
        for key in ("area", "bbox", "point_coords", "crop_box"):
            assert mine[key] == reference[key], key


@pytest.mark.parity
def test_automatic_notebook_matches_the_reference(
    automatic_ours: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
    confident_checkpoint: Path,
    images: list[np.ndarray],
) -> None:
    with oracle_extension(), warnings.catch_warnings():
        warnings.filterwarnings("error", message=SKIPPED_POSTPROCESSING)
        masks, masks2, _ = automatic_notebook(oracle_api(), confident_checkpoint, images[0])
    _assert_same_annotations(automatic_ours[0], masks)
    _assert_same_annotations(automatic_ours[1], masks2)


@pytest.mark.parity
def test_single_masks_without_postprocessing_match_the_reference(
    single_ours: list[Any], checkpoint: Path, images: list[np.ndarray]
) -> None:
    theirs = single_masks(oracle_api(), checkpoint, images[0])
    _assert_arrays_close(single_ours, theirs, "single masks", SCORE_TOLERANCE)


# ---------------------------------------------------------------- names and arguments


@pytest.mark.parametrize(
    ("name", "preset"),
    [
        ("configs/sam2.1/sam2.1_hiera_l.yaml", "sam2.1_hiera_l"),
        ("configs/sam2/sam2_hiera_t.yaml", "sam2_hiera_t"),
        ("sam2_hiera_l.yaml", "sam2_hiera_l"),
        ("sam2.1_hiera_b+.yaml", "sam2.1_hiera_b+"),
        ("facebook/sam2.1-hiera-base-plus", "sam2.1_hiera_b+"),
        *((config, preset) for preset, config in ORACLE_CONFIGS.items()),
    ],
)
def test_reference_config_names_map_to_presets(name: str, preset: str) -> None:
    assert canonical_preset_name(name) == preset


@pytest.mark.parametrize(
    "name", ["configs/sam2.1_training/sam2.1_hiera_b+_MOSE_finetune.yaml", "sam3_hiera_l.yaml"]
)
def test_unknown_config_is_a_one_line_config_error(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        masklet.build_sam2(name)
    message = str(caught.value)
    assert name in message and "\n" not in message and "configs/sam2.1/" in message


def test_apply_postprocessing_maps_to_masklet_settings() -> None:
    preset, on = resolve_settings(MODEL_CFG, video=True)
    assert (on.dynamic_multimask_via_stability, on.binarize_mask_from_pts_for_mem_enc) == (
        True,
        True,
    )
    assert (
        on.fill_hole_area == 8
        and on.model_config(preset).dynamic_multimask_stability_thresh == 0.98
    )
    _, off = resolve_settings(MODEL_CFG, apply_postprocessing=False, video=True)
    assert not off.dynamic_multimask_via_stability and not off.binarize_mask_from_pts_for_mem_enc
    assert off.fill_hole_area == 0
    assert off.model_config(preset).dynamic_multimask_stability_thresh == STABILITY_FALLBACK_OFF


def test_overrides_apply_in_the_reference_order() -> None:
    overrides = [
        "++model.image_size=512",
        "++model.fill_hole_area=0",
        "model.non_overlap_masks=true",
    ]
    preset, settings = resolve_settings(MODEL_CFG, overrides, video=True)
    assert settings.model_config(preset).image_size == 512 and settings.non_overlap_masks
    assert settings.fill_hole_area == 8, "post-processing comes after the caller's overrides"
    _, plain = resolve_settings(MODEL_CFG, overrides, apply_postprocessing=False, video=True)
    assert plain.fill_hole_area == 0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: masklet.build_sam2(MODEL_CFG, hydra_overrides_extra=["++model.num_maskmem=3"]),
            "model.num_maskmem=3' has no masklet equivalent",
        ),
        (
            lambda: masklet.build_sam2(
                MODEL_CFG, hydra_overrides_extra=["++model.fill_hole_area=4"]
            ),
            "video predictor only",
        ),
        (
            lambda: masklet.build_sam2(MODEL_CFG, hydra_overrides_extra=["~model.image_size"]),
            "cannot apply the Hydra override",
        ),
        (
            lambda: masklet.build_sam2(MODEL_CFG, hydra_overrides_extra=["++model.image_size=abc"]),
            "bad value",
        ),
        (
            lambda: masklet.build_sam2(MODEL_CFG, hydra_overrides_extra=["++model.image_size=100"]),
            "multiple of 32",
        ),
        (
            lambda: masklet.build_sam2(MODEL_CFG, hydra_overrides_extra="++model.image_size=64"),
            "list of strings",
        ),
        (lambda: masklet.build_sam2(MODEL_CFG, mode="test"), "mode must be"),
        (lambda: masklet.build_sam2(MODEL_CFG, device="tpu:x"), "unknown device"),
    ],
)
def test_bad_builder_arguments_raise_config_errors(call: Callable[[], Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as caught:
        call()
    assert "\n" not in str(caught.value)


def test_checkpoint_given_twice_is_a_type_error(random_checkpoint: Path) -> None:
    with pytest.raises(TypeError, match="once"):
        masklet.build_sam2(MODEL_CFG, random_checkpoint, checkpoint=random_checkpoint)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="CUDA is not available") as caught:
        masklet.build_sam2_video_predictor(
            MODEL_CFG, hydra_overrides_extra=OVERRIDES, device="cuda"
        )
    assert "\n" not in str(caught.value)


def test_train_mode_and_vos_optimized(random_checkpoint: Path) -> None:
    with pytest.warns(UserWarning, match="vos_optimized=True"):
        predictor = masklet.build_sam2_video_predictor(
            MODEL_CFG,
            random_checkpoint,
            device="cpu",
            mode="train",
            hydra_overrides_extra=OVERRIDES,
            vos_optimized=True,
        )
    assert predictor.model.training and predictor.model.image_size == IMAGE_SIZE
    assert predictor.tracker.fill_hole_area == 8
    assert not predictor._binarize_prompted_masks, "the reference binarises in eval mode only"


# ---------------------------------------------------------------- from_pretrained


@pytest.fixture
def empty_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty weights cache and a download URL nothing listens on (offline)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv(masklet.weights.HOME_ENV, str(tmp_path / "home"))
    monkeypatch.setenv(masklet.weights.BASE_URL_ENV, f"http://127.0.0.1:{port}")
    return tmp_path / "home"


@pytest.mark.parametrize(
    "cls",
    [masklet.SAM2ImagePredictor, masklet.SAM2VideoPredictor, masklet.SAM2AutomaticMaskGenerator],
)
def test_from_pretrained_offline_is_a_one_line_error(cls: Any, empty_cache: Path) -> None:
    with pytest.raises(CheckpointError) as caught:
        cls.from_pretrained("facebook/sam2.1-hiera-tiny")
    message = str(caught.value)
    assert "\n" not in message and "sam2.1_hiera_t" in message
    assert str(empty_cache / "sam2.1_hiera_tiny.pt") in message


def test_from_pretrained_unknown_id_is_a_config_error(empty_cache: Path) -> None:
    with pytest.raises(ConfigError, match="facebook/sam-vit-huge"):
        masklet.SAM2ImagePredictor.from_pretrained("facebook/sam-vit-huge")


def test_from_pretrained_resolves_through_the_weights_cache(
    empty_cache: Path, random_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requested: list[str] = []

    def fake_download(entry: Any, *args: Any, **kwargs: Any) -> Path:
        requested.append(entry.name)
        return random_checkpoint

    # `masklet.weights.download` is also the name of the function the package exports.
    monkeypatch.setattr(
        importlib.import_module("masklet.weights.download"), "download", fake_download
    )
    predictor = masklet.SAM2ImagePredictor.from_pretrained(
        "facebook/sam2.1-hiera-tiny",
        device="cpu",
        hydra_overrides_extra=OVERRIDES,
        mask_threshold=0.5,
    )
    assert requested == ["sam2.1_hiera_t"]
    assert predictor.model.image_size == IMAGE_SIZE and predictor.mask_threshold == 0.5
    with pytest.raises(TypeError, match="points_per_sid"):
        masklet.SAM2AutomaticMaskGenerator.from_pretrained(
            "facebook/sam2.1-hiera-tiny", points_per_sid=8
        )
    assert requested == ["sam2.1_hiera_t"], "a misspelt keyword fails before any download"
