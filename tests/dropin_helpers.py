"""Shared help for the drop-in tests: the official sam2 notebooks' call sequences, run on masklet
with only the imports changed (test_dropin_image.py, test_dropin_video.py,
test_dropin_automatic.py; the builders' names and arguments in test_dropin_builders.py).

`image_predictor_example.ipynb`, `video_predictor_example.ipynb` and
`automatic_mask_generator_example.ipynb` (facebookresearch/sam2 at 2b90b9f) are each written
once in dropin_notebooks.py as a function of the names the notebook imports (`Api`, here), with
the notebook's calls and keywords in the notebook's order. The tests run them with masklet's names
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

from conftest import PARITY_IMAGE_SIZE
from oracle import install_torchvision_stand_in, oracle_available, oracle_checkpoint

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
    """Give the oracle its post-processing on CPU for the duration (see the module note); its
    warning that it skipped the post-processing is an error (the stand-in must really run)."""
    extension = types.ModuleType("sam2._C")
    extension.get_connected_componnets = _connected_components  # type: ignore[attr-defined]
    previous = sys.modules.get("sam2._C")
    sys.modules["sam2._C"] = extension
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=SKIPPED_POSTPROCESSING)
            yield
    finally:
        if previous is None:
            sys.modules.pop("sam2._C", None)
        else:
            sys.modules["sam2._C"] = previous


# ---------------------------------------------------------------- inputs (module fixtures)
# A test module uses these by naming them at its top level (`checkpoint = dropin.checkpoint`):
# pytest then finds them there, one instance per module.


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


# ---------------------------------------------------------------- comparing with the oracle


def assert_arrays_close(ours: Any, theirs: Any, name: str, tolerance: float) -> None:
    """Arrays (or nested lists and tuples of them) of the same shapes: boolean ones agree on at
    least `MIN_BINARY_AGREEMENT` of their elements, others within `tolerance`."""
    if isinstance(ours, (list, tuple)):
        assert len(ours) == len(theirs), name
        for a, b in zip(ours, theirs):
            assert_arrays_close(a, b, name, tolerance)
        return
    assert ours.shape == theirs.shape, name
    if ours.dtype == np.bool_:
        agreement = (ours == theirs).mean() if ours.size else 1.0
        assert agreement >= MIN_BINARY_AGREEMENT, (name, agreement)
    else:
        worst = float(np.abs(ours - theirs).max()) if ours.size else 0.0
        assert worst <= tolerance, (name, worst)
