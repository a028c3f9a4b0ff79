"""Test-only access to the reference implementation (PyPI `sam2==1.1.0`), the parity oracle.

The oracle imports torchvision for its image transforms (and NMS in the mask generator); no
CPU torchvision exists here, so `install_torchvision_stand_in` registers a minimal module with
those few names, implemented the way torchvision does for tensors. Nothing here is used by
masklet itself.
"""

from __future__ import annotations

import sys
import types
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ORACLE_CONFIGS = {
    "sam2_hiera_t": "configs/sam2/sam2_hiera_t.yaml",
    "sam2_hiera_s": "configs/sam2/sam2_hiera_s.yaml",
    "sam2_hiera_b+": "configs/sam2/sam2_hiera_b+.yaml",
    "sam2_hiera_l": "configs/sam2/sam2_hiera_l.yaml",
    "sam2.1_hiera_t": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_s": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_b+": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_l": "configs/sam2.1/sam2.1_hiera_l.yaml",
}


class _ToTensor:
    def __call__(self, picture: object) -> Tensor:
        import numpy as np

        array = np.asarray(picture)
        return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255.0)


class _Resize(nn.Module):
    """torchvision's tensor Resize: bilinear with antialias."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = [int(size[0]), int(size[1])]

    def forward(self, image: Tensor) -> Tensor:
        return F.interpolate(
            image[None], size=self.size, mode="bilinear", align_corners=False, antialias=True
        )[0]


class _Normalize(nn.Module):
    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def forward(self, image: Tensor) -> Tensor:
        return (image - self.mean) / self.std


def _batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS per category (a plain reference implementation for the oracle only)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    shifted = boxes + offsets[:, None]
    order = scores.argsort(descending=True)
    keep: list[int] = []
    areas = (shifted[:, 2] - shifted[:, 0]) * (shifted[:, 3] - shifted[:, 1])
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    for index in order.tolist():
        if suppressed[index]:
            continue
        keep.append(index)
        top_left = torch.maximum(shifted[index, :2], shifted[:, :2])
        bottom_right = torch.minimum(shifted[index, 2:], shifted[:, 2:])
        inter = (bottom_right - top_left).clamp(min=0).prod(dim=1)
        iou = inter / (areas[index] + areas - inter)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def install_torchvision_stand_in() -> None:
    """Register a minimal `torchvision` with what the oracle imports (idempotent)."""
    if "torchvision" in sys.modules:
        return
    torchvision = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    transforms.ToTensor = _ToTensor  # type: ignore[attr-defined]
    transforms.Resize = _Resize  # type: ignore[attr-defined]
    transforms.Normalize = _Normalize  # type: ignore[attr-defined]
    ops = types.ModuleType("torchvision.ops")
    boxes = types.ModuleType("torchvision.ops.boxes")
    boxes.batched_nms = _batched_nms  # type: ignore[attr-defined]
    boxes.box_area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # type: ignore[attr-defined]
    ops.boxes = boxes  # type: ignore[attr-defined]
    torchvision.transforms = transforms  # type: ignore[attr-defined]
    torchvision.ops = ops  # type: ignore[attr-defined]
    for name, module in {
        "torchvision": torchvision,
        "torchvision.transforms": transforms,
        "torchvision.ops": ops,
        "torchvision.ops.boxes": boxes,
    }.items():
        sys.modules[name] = module


def oracle_available() -> bool:
    try:
        install_torchvision_stand_in()
        import sam2.build_sam  # noqa: F401
    except Exception:
        return False
    return True


def build_oracle(preset: str, image_size: int, seed: int = 0, video: bool = False) -> nn.Module:
    """The reference model for `preset` with random weights drawn from `seed`, fp32, eval."""
    install_torchvision_stand_in()
    from sam2.build_sam import build_sam2, build_sam2_video_predictor

    torch.manual_seed(seed)
    overrides = [f"++model.image_size={image_size}"]
    builder = build_sam2_video_predictor if video else build_sam2
    model = builder(ORACLE_CONFIGS[preset], None, device="cpu", hydra_overrides_extra=overrides)
    _randomise_zero_initialised(model, seed)
    return model.eval()


def _randomise_zero_initialised(model: nn.Module, seed: int) -> None:
    # Several embeddings/layer scales start at constants; random values make parity stricter.
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if (
                tensor.dtype.is_floating_point
                and tensor.numel() > 1
                and bool((tensor == tensor.flatten()[0]).all())
            ):
                tensor.copy_(
                    torch.randn(tensor.shape, generator=generator) * 0.05
                    + (1.0 if "weight" in name and "norm" in name else 0.0)
                )


@lru_cache(maxsize=8)
def oracle_checkpoint(preset: str, image_size: int, directory: str, seed: int = 0) -> Path:
    """Save the oracle's random weights as an official-format checkpoint; return its path."""
    model = build_oracle(preset, image_size, seed)
    path = Path(directory) / f"{preset}_seed{seed}.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


def oracle_image_predictor(model: nn.Module) -> object:
    """The reference image predictor with feature sizes set for the model's image size."""
    install_torchvision_stand_in()
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    predictor = SAM2ImagePredictor(model)
    size = model.image_size
    predictor._bb_feat_sizes = [
        (size // 4, size // 4),
        (size // 8, size // 8),
        (size // 16, size // 16),
    ]
    return predictor


def build_oracle_video_predictor(preset: str, image_size: int, seed: int = 0) -> nn.Module:
    """The reference `SAM2VideoPredictor` with the same random weights as `build_oracle`.

    Hole filling is turned off (`fill_hole_area=0`), as parity runs do on both sides: the
    reference skips it on CPU anyway. Its builder appends its own `++model.fill_hole_area=8`
    after the caller's overrides, so the value is also set on the instance. Asserts that the
    state dict equals `build_oracle(preset, image_size, seed)`'s, tensor for tensor.
    """
    install_torchvision_stand_in()
    from sam2.build_sam import build_sam2_video_predictor

    torch.manual_seed(seed)
    overrides = [f"++model.image_size={image_size}", "++model.fill_hole_area=0"]
    predictor = build_sam2_video_predictor(
        ORACLE_CONFIGS[preset], None, device="cpu", hydra_overrides_extra=overrides
    )
    predictor.fill_hole_area = 0
    _randomise_zero_initialised(predictor, seed)
    predictor.eval()
    video_state = predictor.state_dict()
    image_state = build_oracle(preset, image_size, seed).state_dict()
    assert video_state.keys() == image_state.keys(), "video and image oracles differ in keys"
    for name, tensor in image_state.items():
        assert torch.equal(video_state[name], tensor), f"oracle weights differ at {name}"
    return predictor
