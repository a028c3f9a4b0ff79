"""The builders' settings: the reference's Hydra overrides (`++model.<key>=<value>`) and
post-processing switches, parsed into `BuildSettings` before any model exists.

masklet applies the overrides it has an equivalent for, in the reference's order: the caller's
`hydra_overrides_extra` first, then those that `apply_postprocessing=True` adds (so those win,
as in the reference). Any other override is a `ConfigError` that names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from masklet.config import SAM2Config, get_config
from masklet.errors import ConfigError

#: What the reference's builders append when `apply_postprocessing=True` (sam2 1.1.0 facts).
POSTPROCESSING_OVERRIDES = (
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
)
#: ... and what the video builder appends on top of those.
VIDEO_POSTPROCESSING_OVERRIDES = (
    *POSTPROCESSING_OVERRIDES,
    "++model.binarize_mask_from_pts_for_mem_enc=true",
    "++model.fill_hole_area=8",
)

#: Every stability score lies in [0, 1], so with this threshold each single mask counts as
#: stable: the decoder's dynamic multi-mask fallback is off (`dynamic_multimask_via_stability`
#: false, the reference's setting without post-processing).
STABILITY_FALLBACK_OFF = float("-inf")


@dataclasses.dataclass
class BuildSettings:
    """What the builder arguments decide, before any model exists.

    Field names are the reference's `++model.<key>` names; the defaults are the reference's
    values without post-processing (its config files plus its class defaults).
    """

    image_size: int = 1024
    dynamic_multimask_via_stability: bool = False
    dynamic_multimask_stability_delta: float = 0.05
    dynamic_multimask_stability_thresh: float = 0.98
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    compile_image_encoder: bool = False
    # video predictor only
    binarize_mask_from_pts_for_mem_enc: bool = False
    fill_hole_area: int = 0
    non_overlap_masks: bool = False

    def model_config(self, preset: SAM2Config) -> SAM2Config:
        """`preset` with these settings (raises `ConfigError` on a bad image size)."""
        thresh = self.dynamic_multimask_stability_thresh
        return dataclasses.replace(
            preset,
            image_size=self.image_size,
            dynamic_multimask_stability_delta=self.dynamic_multimask_stability_delta,
            dynamic_multimask_stability_thresh=(
                thresh if self.dynamic_multimask_via_stability else STABILITY_FALLBACK_OFF
            ),
            sigmoid_scale_for_mem_enc=self.sigmoid_scale_for_mem_enc,
            sigmoid_bias_for_mem_enc=self.sigmoid_bias_for_mem_enc,
        )


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"expected true or false, got {text!r}")
    return lowered == "true"


_Parser = Callable[[str], object]
#: Overridable `model.<key>`s that have a masklet equivalent, with the parser of their value.
_MODEL_OVERRIDES: dict[str, _Parser] = {
    "image_size": int,
    "sam_mask_decoder_extra_args.dynamic_multimask_via_stability": _parse_bool,
    "sam_mask_decoder_extra_args.dynamic_multimask_stability_delta": float,
    "sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh": float,
    "sigmoid_scale_for_mem_enc": float,
    "sigmoid_bias_for_mem_enc": float,
    "compile_image_encoder": _parse_bool,
}
_VIDEO_OVERRIDES: dict[str, _Parser] = {
    "binarize_mask_from_pts_for_mem_enc": _parse_bool,
    "fill_hole_area": int,
    "non_overlap_masks": _parse_bool,
}


def _split_override(override: str) -> tuple[str, str]:
    """`"++model.image_size=512"` (or `+model...`, `model...`) -> `("image_size", "512")`."""
    body = override.strip()
    plus_signs = len(body) - len(body.lstrip("+"))
    key, equals, value = body.lstrip("+").partition("=")
    key = key.strip()
    if plus_signs > 2 or not equals or not key.startswith("model."):
        raise ConfigError(
            f"cannot apply the Hydra override {override!r}: masklet understands "
            f"'++<key>=<value>' for the keys {_supported_keys()}"
        )
    return key.removeprefix("model."), value.strip().strip("'\"")


def _supported_keys() -> str:
    return ", ".join(f"model.{key}" for key in (*_MODEL_OVERRIDES, *_VIDEO_OVERRIDES))


def _apply_override(settings: BuildSettings, override: str, video: bool) -> None:
    """Set the field an override names, or raise a `ConfigError` naming the override."""
    if not isinstance(override, str):
        raise ConfigError(f"Hydra overrides must be strings, got {override!r}")
    key, text = _split_override(override)
    parser = _MODEL_OVERRIDES.get(key) or _VIDEO_OVERRIDES.get(key)
    if parser is None:
        raise ConfigError(
            f"the Hydra override {override!r} has no masklet equivalent; supported keys: "
            f"{_supported_keys()}"
        )
    if key in _VIDEO_OVERRIDES and not video:
        raise ConfigError(
            f"the Hydra override {override!r} applies to the video predictor only "
            "(build_sam2_video_predictor)"
        )
    try:
        value = parser(text)
    except ValueError as error:
        raise ConfigError(f"bad value in the Hydra override {override!r}: {error}") from None
    setattr(settings, key.rsplit(".", 1)[-1], value)


def resolve_settings(
    config_file: str,
    hydra_overrides_extra: Sequence[str] = (),
    apply_postprocessing: bool = True,
    video: bool = False,
) -> tuple[SAM2Config, BuildSettings]:
    """The preset `config_file` names and the settings the reference's arguments give.

    Overrides apply in the reference's order: the caller's, then the post-processing ones.
    """
    if isinstance(hydra_overrides_extra, str):
        raise ConfigError(
            f"hydra_overrides_extra must be a list of strings, got the string "
            f"{hydra_overrides_extra!r}"
        )
    preset = get_config(config_file)
    settings = BuildSettings(
        image_size=preset.image_size,
        sigmoid_scale_for_mem_enc=preset.sigmoid_scale_for_mem_enc,
        sigmoid_bias_for_mem_enc=preset.sigmoid_bias_for_mem_enc,
    )
    extra: Sequence[str] = ()
    if apply_postprocessing:
        extra = VIDEO_POSTPROCESSING_OVERRIDES if video else POSTPROCESSING_OVERRIDES
    for override in (*hydra_overrides_extra, *extra):
        _apply_override(settings, override, video)
    return preset, settings
