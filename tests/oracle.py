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
from typing import Any

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
    """Greedy NMS per category (a plain reference implementation for the oracle only): IoU in
    the boxes' float32, compared with the threshold in float64, as torchvision's kernel does."""
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
        suppressed |= iou.double() > iou_threshold  # float64 compare, as torchvision
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


#: Added to the object-score head's output bias when objects are to be present (see
#: `prepare_test_weights`); random heads give logits of a few units either way.
OBJECT_PRESENCE_BIAS = 20.0
#: Scale of the mask decoder's hypernetwork outputs: random ones give mask logits of about
#: 0.1, so that two objects' masks, or a frame with and without memory, differ by less than
#: the parity tolerances; scaled, they differ by 10-100x the tolerance.
HYPERNETWORK_SCALE = 40.0
#: Scale of memory attention's cross-attention outputs, so that memory moves tracked logits
#: by far more than the tolerance (a tracker ignoring its memory would fail).
MEMORY_CROSS_ATTENTION_SCALE = 4.0


def build_oracle(
    preset: str, image_size: int, seed: int = 0, objects_present: bool = True
) -> nn.Module:
    """The reference model for `preset` with test weights from `seed` (`prepare_test_weights`),
    fp32, eval."""
    install_torchvision_stand_in()
    from sam2.build_sam import build_sam2

    torch.manual_seed(seed)
    overrides = [f"++model.image_size={image_size}"]
    model = build_sam2(ORACLE_CONFIGS[preset], None, device="cpu", hydra_overrides_extra=overrides)
    prepare_test_weights(model, seed, objects_present)
    return model.eval()


def prepare_test_weights(model: nn.Module, seed: int, objects_present: bool) -> None:
    """Make random weights whose parity proves something.

    Constant-initialised tensors become random (`_randomise_zero_initialised`); the mask
    decoder's hypernetwork outputs and memory attention's cross-attention outputs are scaled
    up (`HYPERNETWORK_SCALE`, `MEMORY_CROSS_ATTENTION_SCALE`). With
    `objects_present`, the object-score head is biased towards "present": a random head
    otherwise calls objects absent on some frames at random, and the reference then returns
    all-background masks (-1024 everywhere), which agree on both sides whatever the mask path
    computed. Parity on the absent path is tested separately with `objects_present=False`.
    """
    _randomise_zero_initialised(model, seed)
    with torch.no_grad():
        for mlp in model.sam_mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(HYPERNETWORK_SCALE)
            mlp.layers[-1].bias.mul_(HYPERNETWORK_SCALE)
        for layer in model.memory_attention.layers:
            layer.cross_attn_image.out_proj.weight.mul_(MEMORY_CROSS_ATTENTION_SCALE)
        if objects_present:
            head = model.sam_mask_decoder.pred_obj_score_head
            last = head.layers[-1] if hasattr(head, "layers") else head
            last.bias.add_(OBJECT_PRESENCE_BIAS)


def _randomise_zero_initialised(model: nn.Module, seed: int) -> None:
    """Replace every constant-initialised tensor (embeddings, layer scales, norms) by random
    values: constants would hide mistakes such as a swapped or missing embedding. Norm weights
    become 1 + noise, found by module type (the mask downsampler's `LayerNorm2d`s have no
    "norm" in their parameter names); noise near 0 there would erase the mask from memory."""
    generator = torch.Generator().manual_seed(seed + 1)
    norm_weights = {
        f"{module_name}.weight"
        for module_name, module in model.named_modules()
        if "Norm" in type(module).__name__
    }
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if (
                tensor.dtype.is_floating_point
                and tensor.numel() > 1
                and bool((tensor == tensor.flatten()[0]).all())
            ):
                tensor.copy_(
                    torch.randn(tensor.shape, generator=generator) * 0.05
                    + (1.0 if name in norm_weights else 0.0)
                )


@lru_cache(maxsize=8)
def oracle_checkpoint(
    preset: str, image_size: int, directory: str, seed: int = 0, objects_present: bool = True
) -> Path:
    """Save the oracle's test weights as an official-format checkpoint; return its path."""
    model = build_oracle(preset, image_size, seed, objects_present)
    presence = "" if objects_present else "_absent"
    path = Path(directory) / f"{preset}_seed{seed}{presence}.pt"
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


def build_oracle_video_predictor(
    preset: str, image_size: int, seed: int = 0, objects_present: bool = True
) -> nn.Module:
    """The reference `SAM2VideoPredictor` with the same test weights as `build_oracle`.

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
    prepare_test_weights(predictor, seed, objects_present)
    predictor.eval()
    video_state = predictor.state_dict()
    image_state = build_oracle(preset, image_size, seed, objects_present).state_dict()
    assert video_state.keys() == image_state.keys(), "video and image oracles differ in keys"
    for name, tensor in image_state.items():
        assert torch.equal(video_state[name], tensor), f"oracle weights differ at {name}"
    return predictor


def shipped_state_dict(name: str = "masklet_nano") -> dict[str, Tensor]:
    """The shipped weights of `name` (checked against their manifest), as float32."""
    from masklet.checkpoint import read_state_dict
    from masklet.weights.shipped import shipped_checkpoint

    state = read_state_dict(shipped_checkpoint(name))
    return {key: value.float() for key, value in state.items()}


def shipped_is_trained(name: str = "masklet_nano") -> bool:
    """Whether the shipped weights are trained (their manifest records training steps)."""
    from masklet.weights.shipped import read_manifest

    return read_manifest(name).provenance.steps > 0


def build_oracle_with_shipped_weights(name: str = "masklet_nano", video: bool = False) -> Any:
    """The reference model (or video predictor, hole filling off) built from its own config
    plus `reference_build_arguments`, with masklet's shipped weights loaded strictly."""
    install_torchvision_stand_in()
    from sam2.build_sam import build_sam2, build_sam2_video_predictor

    from masklet.config import get_config
    from masklet.reference_config import reference_build_arguments

    config_file, overrides = reference_build_arguments(get_config(name))
    if video:
        model = build_sam2_video_predictor(
            config_file,
            None,
            device="cpu",
            hydra_overrides_extra=[*overrides, "++model.fill_hole_area=0"],
        )
        model.fill_hole_area = 0
    else:
        model = build_sam2(config_file, None, device="cpu", hydra_overrides_extra=overrides)
    model.load_state_dict(shipped_state_dict(name), strict=True)
    return model.eval()
