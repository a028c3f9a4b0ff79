"""The drop-in builders' names and arguments: the reference's config names, `build_sam2` and
`build_sam2_video_predictor` with the reference's arguments (`mode`, Hydra overrides,
`apply_postprocessing`, `vos_optimized`) and `from_pretrained` through the weights cache. Bad
arguments are one-line errors."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import masklet
from dropin_helpers import IMAGE_SIZE, MODEL_CFG, OVERRIDES
from masklet.build_settings import STABILITY_FALLBACK_OFF, resolve_settings
from masklet.config import canonical_preset_name
from masklet.errors import CheckpointError, ConfigError
from masklet.runtime import compute_options
from oracle import ORACLE_CONFIGS

pytestmark = pytest.mark.usefixtures("one_thread")


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
    assert predictor.fill_hole_area == 8
    assert not predictor.options.binarizes(predictor.model.training), (
        "the reference binarises in eval mode only"
    )


def test_builders_choose_the_compute_options_for_the_device() -> None:
    # The model never reads the host: the builder passes what the runtime picks for `device`.
    model = masklet.build_sam2(MODEL_CFG, device="cpu", image_size=IMAGE_SIZE)
    assert model.compute_options == compute_options("cpu")
    # A non-CPU device (meta needs no hardware) gets the fused attention path.
    elsewhere = masklet.build_sam2(MODEL_CFG, device="meta", image_size=IMAGE_SIZE)
    assert elsewhere.compute_options == compute_options("meta")
    assert not elsewhere.compute_options.uses_blocked_attention(torch.device("meta"))


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
