"""Model configurations: frozen dataclasses, the eight official presets and `masklet_nano`.

Values are those of the official SAM 2 / SAM 2.1 configs. SAM 2 vs 2.1 differences are two
fields: `object_pointer_temporal_encoding` and `no_object_embed_spatial`. `masklet_nano` is
masklet's own model (DESIGN §11): SAM 2.1's architecture at smaller widths, depths and image
size, trained by masklet and shipped in the package (docs/models.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from masklet.errors import ConfigError

#: The image must be divisible by the trunk's total stride (4 x 2 x 2 x 2).
BACKBONE_TOTAL_STRIDE = 32


@dataclass(frozen=True)
class HieraConfig:
    """Hiera trunk shape. `stages` = blocks per stage; `global_attention_blocks` = indices of
    blocks with global (not windowed) attention; `window_spec` = window size per stage."""

    embed_dim: int
    num_heads: int
    stages: tuple[int, ...]
    global_attention_blocks: tuple[int, ...]
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    window_pos_embed_background_size: tuple[int, int] = (14, 14)

    @property
    def channel_list(self) -> list[int]:
        """Output widths, coarsest level first (as the neck expects)."""
        return [self.embed_dim * 2**i for i in range(len(self.stages))][::-1]


@dataclass(frozen=True)
class SAM2Config:
    """A full SAM 2 model configuration.

    Attributes:
        name: preset name, e.g. `"sam2.1_hiera_t"`.
        hiera: trunk shape.
        image_size: side of the square model input in pixels (multiple of 32).
        num_maskmem: memory slots (1 prompted/current + 6 previous frames).
        max_object_pointers: object pointers attended to (frames within this distance).
        object_pointer_temporal_encoding: SAM 2.1: add a projected, signed temporal sine
            encoding to object-pointer tokens (SAM 2.0: zeros).
        no_object_embed_spatial: SAM 2.1: add a learned embedding to memories of frames
            where the object is absent.
        hidden_dim: width of the neck, prompt encoder, mask decoder and memory attention.
        memory_dim: width of a memory frame (the memory encoder's output).
        memory_attention_layers: layers of memory attention.
        memory_attention_feedforward: hidden width of each memory-attention layer's MLP.
        max_cond_frames_in_attn: prompted frames a tracked frame attends to as memory (-1 =
            all, the released setting; otherwise >= 2: the closest prompted frame before it,
            the closest at or after it, then the temporally closest others). Prompted frames
            left out still serve as recent frames and pointers where those are read.
    """

    name: str
    hiera: HieraConfig
    image_size: int = 1024
    object_pointer_temporal_encoding: bool = True
    no_object_embed_spatial: bool = True
    hidden_dim: int = 256
    memory_dim: int = 64
    num_maskmem: int = 7
    max_object_pointers: int = 16
    memory_attention_layers: int = 4
    memory_attention_feedforward: int = 2048
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    max_cond_frames_in_attn: int = -1
    dynamic_multimask_stability_delta: float = 0.05
    dynamic_multimask_stability_thresh: float = 0.98

    def __post_init__(self) -> None:
        if self.image_size <= 0 or self.image_size % BACKBONE_TOTAL_STRIDE:
            raise ConfigError(
                f"image_size must be a positive multiple of {BACKBONE_TOTAL_STRIDE}, "
                f"got {self.image_size}"
            )
        if self.max_cond_frames_in_attn != -1 and self.max_cond_frames_in_attn < 2:
            raise ConfigError(
                "max_cond_frames_in_attn must be -1 (all prompted frames) or at least 2, "
                f"got {self.max_cond_frames_in_attn}"
            )

    @property
    def embedding_size(self) -> int:
        """Side of the stride-16 image embedding (64 at image_size 1024)."""
        return self.image_size // 16

    def with_image_size(self, image_size: int) -> SAM2Config:
        """Same model at another input resolution (weights are resolution independent)."""
        return dataclasses.replace(self, image_size=image_size)


_TINY = HieraConfig(96, 1, (1, 2, 7, 2), (5, 7, 9), window_pos_embed_background_size=(7, 7))
_SMALL = HieraConfig(96, 1, (1, 2, 11, 2), (7, 10, 13), window_pos_embed_background_size=(7, 7))
_BASE_PLUS = HieraConfig(112, 2, (2, 3, 16, 3), (12, 16, 20))
_LARGE = HieraConfig(144, 2, (2, 6, 36, 4), (23, 33, 43), window_spec=(8, 4, 16, 8))

_SIZES = {"t": _TINY, "s": _SMALL, "b+": _BASE_PLUS, "l": _LARGE}

PRESETS: dict[str, SAM2Config] = {}
for _size, _hiera in _SIZES.items():
    PRESETS[f"sam2_hiera_{_size}"] = SAM2Config(
        f"sam2_hiera_{_size}",
        _hiera,
        object_pointer_temporal_encoding=False,
        no_object_embed_spatial=False,
    )
    PRESETS[f"sam2.1_hiera_{_size}"] = SAM2Config(f"sam2.1_hiera_{_size}", _hiera)

#: Half the tiny trunk's width with 8 blocks; windows that tile its 256 px feature maps.
_NANO = HieraConfig(48, 1, (1, 2, 4, 1), (5,), (8, 4, 16, 8), (8, 8))
PRESETS["masklet_nano"] = SAM2Config(
    "masklet_nano",
    _NANO,
    image_size=256,
    hidden_dim=128,
    memory_attention_feedforward=1024,
)

#: Names users also know the presets by (checkpoint file stems, HF ids).
_ALIASES = {
    "tiny": "t",
    "small": "s",
    "base_plus": "b+",
    "large": "l",
}


#: File endings stripped from a name: checkpoint files and the reference's Hydra config files.
_NAME_SUFFIXES = (".pt", ".yaml", ".yml")


def canonical_preset_name(name: str) -> str:
    """Map any name users know a preset by to the preset name, e.g. `sam2.1_hiera_t` for
    `sam2.1_hiera_tiny`, `sam2.1_hiera_tiny.pt`, `facebook/sam2.1-hiera-tiny` or the
    reference's config names `configs/sam2.1/sam2.1_hiera_t.yaml` and `sam2.1_hiera_t.yaml`.

    Only the last path component counts, so the reference's folders (`configs/sam2/`,
    `configs/sam2.1/`) and top-level `sam2_hiera_{t,s,b+,l}.yaml` names all work. masklet
    reads no YAML: a config it has no preset for (e.g. a training config) is a `ConfigError`.
    """
    key = name.strip().replace("\\", "/").split("/")[-1]
    for suffix in _NAME_SUFFIXES:
        key = key.removesuffix(suffix)
    key = key.replace("-", "_").replace("base_plus", "b+")
    for long, short in _ALIASES.items():
        if key.endswith(f"_{long}"):
            key = key[: -len(long)] + short
    if key not in PRESETS:
        raise ConfigError(_unknown_name_message(name))
    return key


def _unknown_name_message(name: str) -> str:
    known = ", ".join(PRESETS)
    if name.strip().endswith((".yaml", ".yml")):
        return (
            f"no masklet preset for the config {name!r}: masklet reads no Hydra files and "
            f"knows the official model configs configs/sam2.1/sam2.1_hiera_{{t,s,b+,l}}.yaml, "
            f"configs/sam2/sam2_hiera_{{t,s,b+,l}}.yaml and sam2_hiera_{{t,s,b+,l}}.yaml; "
            f"presets: {known}"
        )
    return f"unknown model preset {name!r}; known presets: {known}"


def get_config(name: str, image_size: int | None = None) -> SAM2Config:
    """Return the preset `name` (any alias), optionally at another `image_size`."""
    config = PRESETS[canonical_preset_name(name)]
    return config if image_size is None else config.with_image_size(image_size)
