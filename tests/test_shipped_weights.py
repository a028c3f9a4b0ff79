"""The embedded default model (DESIGN §11): `masklet_nano`'s weights in the package, the tool
that makes them, the builders loading them, and which model a command runs by default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import masklet
import masklet.build
from masklet import weights
from masklet.checkpoint import read_state_dict
from masklet.cli import build_parser, main
from masklet.cli.common import check_runtime_arguments
from masklet.errors import CheckpointError
from masklet.weights.shipped import assets_dir

pytestmark = pytest.mark.usefixtures("one_thread")

NANO = "masklet_nano"
PROVENANCE = weights.Provenance(
    steps=12, train_hours=0.5, config="configs/train/masklet-nano.toml", date="2000-01-02", note="t"
)


@pytest.fixture(scope="module")
def nano_float32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random masklet_nano in the official float32 format (a training run's `model.pt`)."""
    torch.manual_seed(1)
    model = masklet.build_sam2(NANO, random_init=True)
    path = tmp_path_factory.mktemp("run") / "model.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


@pytest.fixture
def shipped_copy(nano_float32: Path, tmp_path: Path) -> Path:
    """A folder with weights made from `nano_float32` by the ship tool."""
    weights.write_shipped_weights(nano_float32, PROVENANCE, folder=tmp_path)
    return tmp_path


def test_build_sam2_loads_the_shipped_weights_as_float32() -> None:
    stored = read_state_dict(assets_dir() / "masklet_nano.pt")
    model = masklet.build_sam2(NANO)
    state = model.state_dict()
    assert set(state) == set(stored)
    for key, value in state.items():
        if value.is_floating_point():
            assert stored[key].dtype == torch.float16 and value.dtype == torch.float32, key
        assert torch.equal(value, stored[key].to(value.dtype)), key
    assert model.image_size == 256


def test_video_predictor_loads_them_too_and_random_init_skips_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = read_state_dict(assets_dir() / "masklet_nano.pt")
    predictor = masklet.build_sam2_video_predictor(NANO)
    key = "image_encoder.trunk.pos_embed"
    assert torch.equal(predictor.model.state_dict()[key], stored[key].float())

    def refuse(name: str) -> Path:
        raise AssertionError(f"read the shipped weights of {name}")

    monkeypatch.setattr(masklet.build, "shipped_checkpoint", refuse)
    masklet.build_sam2(NANO, random_init=True)
    masklet.build_sam2("sam2.1_hiera_t", image_size=64)  # official: random, as before
    with pytest.raises(TypeError, match="random_init"):
        masklet.build_sam2(NANO, checkpoint=assets_dir() / "masklet_nano.pt", random_init=True)


def test_shipped_manifest_describes_the_file() -> None:
    manifest = weights.read_manifest(NANO)
    text = json.loads((assets_dir() / "masklet_nano.json").read_text())
    for field in ("sha256", "bytes", "steps", "train_hours", "config", "date", "note"):
        assert field in text, field
    path = weights.shipped_checkpoint(NANO)
    assert path.stat().st_size == manifest.bytes <= weights.shipped.MAX_SHIPPED_BYTES
    assert manifest.dtype == "float16"


def test_ship_tool_round_trips(nano_float32: Path, tmp_path: Path) -> None:
    out = tmp_path / "assets"
    args = ["weights", "ship", str(nano_float32), "--steps", "12", "--train-hours", "0.5"]
    args += ["--config", "c.toml", "--note", "a test", "--date", "2000-01-02"]
    assert main([*args, "--out-dir", str(out)]) == 0
    manifest = weights.read_manifest(NANO, out)
    assert manifest.provenance == weights.Provenance(12, 0.5, "c.toml", "2000-01-02", "a test")
    source = read_state_dict(nano_float32)
    shipped = read_state_dict(weights.shipped_checkpoint(NANO, out))
    assert set(shipped) == set(source)
    for key, value in source.items():
        expected = value.half() if value.is_floating_point() else value
        assert torch.equal(shipped[key], expected), key
    model = masklet.build_sam2(NANO, checkpoint=out / "masklet_nano.pt")
    assert next(model.parameters()).dtype == torch.float32
    first = (out / "masklet_nano.pt").read_bytes()
    assert main([*args, "--out-dir", str(out)]) == 0  # the same weights give the same bytes
    assert (out / "masklet_nano.pt").read_bytes() == first
    assert sorted(p.name for p in out.iterdir()) == ["masklet_nano.json", "masklet_nano.pt"]


def test_ship_refuses_weights_of_another_model(tmp_path: Path) -> None:
    source = tmp_path / "model.pt"
    torch.save({"model": {"image_encoder.trunk.pos_embed": torch.zeros(1, 96, 7, 7)}}, source)
    with pytest.raises(CheckpointError, match="does not match preset 'masklet_nano'"):
        weights.write_shipped_weights(source, PROVENANCE, folder=tmp_path / "out")
    assert not (tmp_path / "out" / "masklet_nano.json").exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[: len(data) // 2], "truncated or damaged"),
        (lambda data: b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\n", "Git LFS"),
    ],
)
def test_a_file_that_does_not_match_its_manifest_is_refused(
    shipped_copy: Path, damage: object, message: str
) -> None:
    path = shipped_copy / "masklet_nano.pt"
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    with pytest.raises(CheckpointError) as error:
        weights.shipped_checkpoint(NANO, shipped_copy)
    text = str(error.value)
    assert str(path) in text and "SHA-256" in text and message in text and "\n" not in text


def _choice(*options: str) -> tuple[str, int, bool]:
    args = build_parser().parse_args(["segment", "photo.png", "--out", "o", *options])
    choice = check_runtime_arguments(args)
    return choice.preset, choice.image_size, choice.by_default


def test_commands_default_to_nano_unless_an_official_file_is_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(weights.HOME_ENV, str(tmp_path))
    assert weights.default_model() == NANO
    assert _choice() == (NANO, 256, True)
    for name in ("sam2_hiera_t", "sam2.1_hiera_l"):  # sparse files of the right size
        with (tmp_path / weights.WEIGHTS[name].file_name).open("wb") as stream:
            stream.truncate(weights.WEIGHTS[name].size)
    (tmp_path / weights.WEIGHTS["sam2.1_hiera_t"].file_name).write_bytes(b"partial")
    assert weights.default_model() == "sam2.1_hiera_l"
    assert _choice() == ("sam2.1_hiera_l", 1024, True)
    assert _choice("--model", "masklet_nano", "--image-size", "128") == (NANO, 128, False)
    assert _choice("--model", "facebook/sam2-hiera-tiny") == ("sam2_hiera_t", 1024, False)
