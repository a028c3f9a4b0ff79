"""How the reference (`sam2.build_sam.build_sam2`) builds the same model as a masklet config.

The official presets are the reference's own YAML files. Any other config (`masklet_nano`, or a
preset at another image size) is the SAM 2.1 tiny file plus Hydra overrides for every shape
field, so that weights trained by masklet load strictly into the reference:

    from sam2.build_sam import build_sam2
    config_file, overrides = reference_build_arguments(get_config("masklet_nano"))
    model = build_sam2(config_file, None, hydra_overrides_extra=overrides, device="cpu")
    model.load_state_dict(torch.load(path, weights_only=True)["model"])
"""

from __future__ import annotations

from masklet.config import PRESETS, SAM2Config

#: The reference's config file of each official preset.
_SIZES = ("t", "s", "b+", "l")
REFERENCE_CONFIG_FILES = {
    **{f"sam2_hiera_{size}": f"configs/sam2/sam2_hiera_{size}.yaml" for size in _SIZES},
    **{f"sam2.1_hiera_{size}": f"configs/sam2.1/sam2.1_hiera_{size}.yaml" for size in _SIZES},
}

#: The file other configs start from (SAM 2.1: temporal pointer encoding, no-object embedding).
BASE_CONFIG_FILE = REFERENCE_CONFIG_FILES["sam2.1_hiera_t"]


def reference_build_arguments(config: SAM2Config) -> tuple[str, list[str]]:
    """`(config_file, hydra_overrides_extra)` for the reference's `build_sam2` to build a model
    with exactly `config`'s architecture (same state-dict keys and shapes)."""
    official = PRESETS.get(config.name) if config.name in REFERENCE_CONFIG_FILES else None
    if official is not None and official.with_image_size(config.image_size) == config:
        return REFERENCE_CONFIG_FILES[config.name], [f"++model.image_size={config.image_size}"]
    if not (config.object_pointer_temporal_encoding and config.no_object_embed_spatial):
        raise ValueError(f"{config.name}: only SAM 2.1-style configs have a reference mapping")
    return BASE_CONFIG_FILE, _shape_overrides(config)


def _shape_overrides(config: SAM2Config) -> list[str]:
    hiera, hidden, memory = config.hiera, config.hidden_dim, config.memory_dim
    trunk = "++model.image_encoder.trunk"
    layer = "++model.memory_attention.layer"
    values = {
        "++model.image_size": config.image_size,
        f"{trunk}.embed_dim": hiera.embed_dim,
        f"{trunk}.num_heads": hiera.num_heads,
        f"{trunk}.stages": list(hiera.stages),
        f"{trunk}.global_att_blocks": list(hiera.global_attention_blocks),
        f"{trunk}.window_spec": list(hiera.window_spec),
        f"{trunk}.window_pos_embed_bkg_spatial_size": list(hiera.window_pos_embed_background_size),
        "++model.image_encoder.neck.d_model": hidden,
        "++model.image_encoder.neck.backbone_channel_list": hiera.channel_list,
        "++model.image_encoder.neck.position_encoding.num_pos_feats": hidden,
        "++model.memory_attention.d_model": hidden,
        "++model.memory_attention.num_layers": config.memory_attention_layers,
        f"{layer}.d_model": hidden,
        f"{layer}.dim_feedforward": config.memory_attention_feedforward,
        f"{layer}.self_attention.embedding_dim": hidden,
        f"{layer}.cross_attention.embedding_dim": hidden,
        f"{layer}.cross_attention.kv_in_dim": memory,
        "++model.memory_encoder.in_dim": hidden,
        "++model.memory_encoder.out_dim": memory,
        "++model.memory_encoder.position_encoding.num_pos_feats": memory,
        "++model.memory_encoder.mask_downsampler.embed_dim": hidden,
        "++model.memory_encoder.fuser.layer.dim": hidden,
        "++model.num_maskmem": config.num_maskmem,
        "++model.max_obj_ptrs_in_encoder": config.max_object_pointers,
        "++model.sigmoid_scale_for_mem_enc": config.sigmoid_scale_for_mem_enc,
        "++model.sigmoid_bias_for_mem_enc": config.sigmoid_bias_for_mem_enc,
        "++model.max_cond_frames_in_attn": config.max_cond_frames_in_attn,
    }
    return [f"{key}={_hydra_value(value)}" for key, value in values.items()]


def _hydra_value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ",".join(str(item) for item in value) + "]"
    return str(value)
