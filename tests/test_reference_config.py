"""`reference_build_arguments`: the reference builds the same architecture as a masklet config."""

from __future__ import annotations

import pytest

from masklet.config import get_config
from masklet.model.sam2 import SAM2Model
from masklet.reference_config import reference_build_arguments
from oracle import oracle_available

pytestmark = [
    pytest.mark.parity,
    pytest.mark.skipif(not oracle_available(), reason="needs the sam2==1.1.0 oracle"),
]


def test_official_preset_is_its_own_file() -> None:
    config_file, overrides = reference_build_arguments(get_config("sam2.1_hiera_s", 512))
    assert config_file == "configs/sam2.1/sam2.1_hiera_s.yaml"
    assert overrides == ["++model.image_size=512"]


def test_nano_builds_in_the_reference_with_the_same_state_dict() -> None:
    from sam2.build_sam import build_sam2

    config = get_config("masklet_nano")
    config_file, overrides = reference_build_arguments(config)
    theirs = build_sam2(config_file, None, device="cpu", hydra_overrides_extra=overrides)
    ours = SAM2Model(config)
    their_shapes = {key: tuple(value.shape) for key, value in theirs.state_dict().items()}
    our_shapes = {key: tuple(value.shape) for key, value in ours.state_dict().items()}
    assert their_shapes == our_shapes
    assert 3e6 < sum(p.numel() for p in ours.parameters()) < 10e6
    ours.load_state_dict(theirs.state_dict(), strict=True)


def test_sam2_0_style_configs_have_no_mapping() -> None:
    import dataclasses

    config = dataclasses.replace(get_config("masklet_nano"), no_object_embed_spatial=False)
    with pytest.raises(ValueError, match=r"SAM 2\.1"):
        reference_build_arguments(config)
