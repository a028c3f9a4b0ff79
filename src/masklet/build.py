"""Model construction from a preset (or a reference config name) and an optional checkpoint.

`build_sam2` and `build_sam2_video_predictor` take the reference's arguments, in its order
(`config_file, ckpt_path, device, mode, hydra_overrides_extra, apply_postprocessing`, and
`vos_optimized` for video), so scripts written for `sam2.build_sam` run with only their imports
changed; masklet's own keywords (`checkpoint`, `image_size`, `fill_hole_area`,
`non_overlap_masks`) are keyword-only. How each reference argument maps onto masklet is in
docs/porting.md. The one deliberate difference: `device` defaults to `"cpu"`, not `"cuda"`.

The reference expresses its settings as Hydra overrides (`++model.<key>=<value>`); masklet
applies the ones it has an equivalent for (`masklet.build_settings`), then its own keywords
when given. Any other override is a `ConfigError` that names it.

Weights: the checkpoint given, else the weights shipped in the package for a masklet preset
(`masklet_nano`, DESIGN §11; `random_init=True` skips them), else the random initialisation
(the official presets: their files are not in the package).

`build_sam2_hf` / `build_sam2_video_predictor_hf` (and the predictors' `from_pretrained`,
which call them) resolve an official checkpoint through masklet's weights cache, downloading
it there on first use; `"masklet_nano"` names the shipped weights.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from masklet.build_settings import BuildSettings, resolve_settings
from masklet.checkpoint import load_checkpoint
from masklet.config import SAM2Config
from masklet.errors import ConfigError
from masklet.model.sam2 import SAM2Model
from masklet.predictors.pretrained import register_pretrained_loader
from masklet.predictors.video import SAM2VideoPredictor
from masklet.runtime import compute_options
from masklet.weights import (
    has_shipped_weights,
    model_name,
    resolve_checkpoint,
    shipped_checkpoint,
)

DEFAULT_PRESET = "sam2.1_hiera_t"

#: Keywords of `build_sam2` that `from_pretrained` passes to the builder; the other keywords
#: go to the predictor's constructor.
MODEL_KEYWORDS = ("device", "mode", "hydra_overrides_extra", "apply_postprocessing", "image_size")


def _checked_device(device: str | torch.device) -> torch.device:
    """`device` checked: `"auto"` picks cuda when available; an unavailable backend is a
    one-line `ConfigError` (the reference fails deep inside torch instead)."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"unknown device {name!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={name!r} was requested but CUDA is not available here; pass device='cpu' "
            "(masklet's default) or device='auto'"
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={name!r} was requested but MPS is not available here")
    return resolved


def _weights_file(
    preset: str, ckpt_path: str | Path | None, checkpoint: str | Path | None, random_init: bool
) -> str | Path | None:
    """The file to load: the checkpoint given, else a masklet preset's shipped weights
    (checked against their manifest) unless `random_init`, else None (random init)."""
    if ckpt_path is not None and checkpoint is not None:
        raise TypeError("give the checkpoint once: ckpt_path (the reference's name) or checkpoint")
    given = ckpt_path if ckpt_path is not None else checkpoint
    if given is not None and random_init:
        raise TypeError("random_init=True and a checkpoint: give one or the other")
    if given is None and not random_init and has_shipped_weights(preset):
        return shipped_checkpoint(preset)
    return given


def _check_mode(mode: str) -> None:
    if mode not in ("eval", "train"):
        raise ConfigError(f"mode must be 'eval' or 'train', got {mode!r}")


def _warn_uncompiled(compiled: bool, what: str) -> None:
    """Say that a compiled model was asked for (called by the builders: the warning points at
    their caller)."""
    if not compiled:
        return
    warnings.warn(
        f"{what}: the reference compiles its modules with torch.compile; masklet runs them "
        "as they are (same results)",
        UserWarning,
        stacklevel=3,
    )


def _make_model(
    config: SAM2Config, checkpoint: str | Path | None, device: torch.device, mode: str
) -> SAM2Model:
    # The kernels are chosen for the target device here: the model never reads the host.
    model = SAM2Model(config, compute_options(device))
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, config.name)
    model = model.to(device)
    return model.train() if mode == "train" else model.eval()


def _resolved_config(
    config_file: str,
    hydra_overrides_extra: Sequence[str],
    apply_postprocessing: bool,
    video: bool,
    image_size: int | None,
) -> tuple[SAM2Config, BuildSettings]:
    preset, settings = resolve_settings(
        config_file, hydra_overrides_extra, apply_postprocessing, video
    )
    if image_size is not None:
        settings.image_size = image_size
    return settings.model_config(preset), settings


def build_sam2(
    config_file: str = DEFAULT_PRESET,
    ckpt_path: str | Path | None = None,
    device: str | torch.device = "cpu",
    mode: str = "eval",
    hydra_overrides_extra: Sequence[str] = (),
    apply_postprocessing: bool = True,
    *,
    checkpoint: str | Path | None = None,
    image_size: int | None = None,
    random_init: bool = False,
) -> SAM2Model:
    """Build a SAM 2 model (the reference's `build_sam2` arguments and masklet's).

    Args:
        config_file: a preset (`sam2_hiera_{t,s,b+,l}`, `sam2.1_hiera_{t,s,b+,l}`,
            `masklet_nano`), an alias (`sam2.1_hiera_tiny`, `facebook/sam2.1-hiera-tiny`) or a
            reference config name (`configs/sam2.1/sam2.1_hiera_l.yaml`, `sam2_hiera_l.yaml`).
        ckpt_path / checkpoint: path of an official `.pt` file, loaded strictly. None: the
            weights shipped in the package for `masklet_nano`, the random initialisation for
            the official presets. Two names for one argument: give at most one.
        device: where to put the model (`"auto"`: cuda when available).
        mode: `"eval"` or `"train"` (the model's `nn.Module` mode).
        hydra_overrides_extra: reference overrides such as `"++model.image_size=512"`; those
            without a masklet equivalent raise `ConfigError`.
        apply_postprocessing: the decoder's dynamic multi-mask fallback (a single mask that is
            unstable is replaced by the best of the three); the reference's default.
        image_size: side of the square model input (multiple of 32; official: 1024,
            `masklet_nano`: 256); when given it takes precedence over an `image_size` override.
        random_init: keep the random initialisation even where the preset has shipped
            weights (`masklet_nano`; tests, training from scratch); not with a checkpoint.
    """
    config, settings = _resolved_config(
        config_file, hydra_overrides_extra, apply_postprocessing, False, image_size
    )
    _check_mode(mode)
    resolved = _checked_device(device)
    _warn_uncompiled(settings.compile_image_encoder, "compile_image_encoder=true")
    weights = _weights_file(config.name, ckpt_path, checkpoint, random_init)
    return _make_model(config, weights, resolved, mode)


def build_sam2_video_predictor(
    config_file: str = DEFAULT_PRESET,
    ckpt_path: str | Path | None = None,
    device: str | torch.device = "cpu",
    mode: str = "eval",
    hydra_overrides_extra: Sequence[str] = (),
    apply_postprocessing: bool = True,
    vos_optimized: bool = False,
    *,
    checkpoint: str | Path | None = None,
    image_size: int | None = None,
    random_init: bool = False,
    fill_hole_area: int | None = None,
    non_overlap_masks: bool | None = None,
) -> SAM2VideoPredictor:
    """Build a `SAM2VideoPredictor` (the reference's video API) around a new model.

    Arguments as in `build_sam2`, plus:
        apply_postprocessing: also binarise the masks of prompted frames for the memory
            encoder and fill background holes of up to 8 low-res pixels in the outputs (the
            official video settings); off, holes are kept and masks enter memory through a
            sigmoid, as in the reference.
        vos_optimized: accepted; the reference compiles its modules, masklet warns and runs
            them uncompiled (same results).
        fill_hole_area, non_overlap_masks: masklet's keywords; when given they take
            precedence over overrides and post-processing.
    """
    config, settings = _resolved_config(
        config_file, hydra_overrides_extra, apply_postprocessing, True, image_size
    )
    _check_mode(mode)
    resolved = _checked_device(device)
    what = "vos_optimized=True" if vos_optimized else "compile_image_encoder=true"
    _warn_uncompiled(vos_optimized or settings.compile_image_encoder, what)
    weights = _weights_file(config.name, ckpt_path, checkpoint, random_init)
    model = _make_model(config, weights, resolved, mode)
    return SAM2VideoPredictor(
        model,
        fill_hole_area=settings.fill_hole_area if fill_hole_area is None else fill_hole_area,
        non_overlap_masks=(
            settings.non_overlap_masks if non_overlap_masks is None else non_overlap_masks
        ),
        binarize_mask_from_pts_for_mem_enc=settings.binarize_mask_from_pts_for_mem_enc,
    )


# ---------------------------------------------------------------- official checkpoints by name


def _pretrained_checkpoint(model_id: str) -> tuple[str, Path]:
    """Preset name and file of a shipped model (`masklet_nano`) or of an official checkpoint
    (downloaded on first use; a one-line `CheckpointError` when that fails, e.g. offline)."""
    preset = model_name(model_id)
    return preset, resolve_checkpoint(preset)


def build_sam2_hf(model_id: str, **kwargs: Any) -> SAM2Model:
    """`build_sam2` on the official checkpoint `model_id` names: a Hugging Face id such as
    `"facebook/sam2.1-hiera-tiny"` or any name `masklet weights list` knows; or on the shipped
    weights of `"masklet_nano"`. An official file comes from masklet's weights cache, not from
    the Hugging Face hub."""
    preset, path = _pretrained_checkpoint(model_id)
    return build_sam2(preset, checkpoint=path, **kwargs)


def build_sam2_video_predictor_hf(model_id: str, **kwargs: Any) -> SAM2VideoPredictor:
    """`build_sam2_video_predictor` on the official checkpoint `model_id` names (see
    `build_sam2_hf`)."""
    preset, path = _pretrained_checkpoint(model_id)
    return build_sam2_video_predictor(preset, checkpoint=path, **kwargs)


def _load_pretrained(predictor_class: type[Any], model_id: str, kwargs: dict[str, Any]) -> Any:
    """The loader behind every predictor's `from_pretrained` (registered with
    `masklet.predictors.pretrained` when this module is imported): the video predictor from
    `build_sam2_video_predictor_hf`; any other `predictor_class` around the model
    `build_sam2_hf` builds with the builder keywords among `kwargs` (`MODEL_KEYWORDS`), made
    with the other keywords.

    The reference passes every keyword to both and each silently ignores what it does not
    know; here a keyword neither takes is a `TypeError`, raised before any download.
    """
    if issubclass(predictor_class, SAM2VideoPredictor):
        return build_sam2_video_predictor_hf(model_id, **kwargs)
    model_kwargs = {key: value for key, value in kwargs.items() if key in MODEL_KEYWORDS}
    other_kwargs = {key: value for key, value in kwargs.items() if key not in MODEL_KEYWORDS}
    try:
        inspect.signature(predictor_class).bind_partial(None, **other_kwargs)
    except TypeError as error:
        raise TypeError(f"{predictor_class.__name__}.from_pretrained(): {error}") from None
    return predictor_class(build_sam2_hf(model_id, **model_kwargs), **other_kwargs)


register_pretrained_loader(_load_pretrained)
