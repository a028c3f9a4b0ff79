"""Strict checkpoint loading: wrong preset, SAM 2.0 vs 2.1 files, corrupt and truncated files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import masklet
from masklet.checkpoint import identify_preset, read_state_dict
from masklet.config import PRESETS
from masklet.errors import CheckpointError
from masklet.model.sam2 import SAM2Model


def _save(model: SAM2Model, path: Path) -> Path:
    torch.save({"model": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("ckpt")
    return _save(SAM2Model(PRESETS["sam2.1_hiera_t"]), directory / "sam2.1_hiera_tiny.pt")


def test_round_trip_loads_every_tensor(tiny_checkpoint: Path) -> None:
    model = masklet.build_sam2("sam2.1_hiera_t", checkpoint=tiny_checkpoint, image_size=256)
    saved = read_state_dict(tiny_checkpoint)
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_wrong_preset_names_the_right_one(tiny_checkpoint: Path) -> None:
    with pytest.raises(CheckpointError) as error:
        masklet.build_sam2("sam2.1_hiera_s", checkpoint=tiny_checkpoint)
    message = str(error.value)
    assert "'sam2.1_hiera_s'" in message and "looks like preset 'sam2.1_hiera_t'" in message
    assert "unexpected keys" in message or "missing keys" in message


def test_sam2_file_into_sam21_preset(tmp_path: Path) -> None:
    with torch.device("cpu"):
        v20 = SAM2Model(PRESETS["sam2_hiera_t"])
    path = _save(v20, tmp_path / "sam2_hiera_tiny.pt")
    assert identify_preset(read_state_dict(path)) == "sam2_hiera_t"
    with pytest.raises(CheckpointError, match="missing keys: no_obj_embed_spatial, obj_ptr_tpos"):
        masklet.build_sam2("sam2.1_hiera_t", checkpoint=path)


def test_shape_mismatch_is_reported(tiny_checkpoint: Path, tmp_path: Path) -> None:
    state = read_state_dict(tiny_checkpoint)
    state["no_mem_embed"] = torch.zeros(1, 1, 128)
    path = tmp_path / "bad.pt"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError, match=r"shape mismatches.*no_mem_embed \(1, 1, 128\)"):
        masklet.build_sam2("sam2.1_hiera_t", checkpoint=path)


def test_missing_truncated_and_foreign_files(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        masklet.build_sam2("sam2.1_hiera_t", checkpoint=tmp_path / "nope.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(tiny_checkpoint.read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        masklet.build_sam2("sam2.1_hiera_t", checkpoint=truncated)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        masklet.build_sam2("sam2.1_hiera_t", checkpoint=text)
    other = tmp_path / "other.pt"
    torch.save({"model": [1, 2, 3]}, other)
    with pytest.raises(CheckpointError, match="does not hold a SAM 2 state dict"):
        masklet.build_sam2("sam2.1_hiera_t", checkpoint=other)
