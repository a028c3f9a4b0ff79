"""`masklet segment` on a small image with random weights, and its bad-input messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import masklet.cli

NEW_COMMANDS = ("masklet.cli.track", "masklet.cli.segment", "masklet.cli.info")
RUNNER = (
    "import sys, masklet.cli as c; "
    f"c.COMMAND_MODULES = tuple(dict.fromkeys(c.COMMAND_MODULES + {NEW_COMMANDS!r})); "
    "sys.exit(c.main(sys.argv[1:]))"
)
MODEL_ARGS = ("--image-size", "64", "--dtype", "float32", "--device", "cpu")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pixels = np.full((80, 96, 3), 70, dtype=np.uint8)
    pixels[20:50, 10:40] = (220, 40, 40)
    path = tmp_path_factory.mktemp("image") / "photo.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> None:
    modules = tuple(dict.fromkeys(masklet.cli.COMMAND_MODULES + NEW_COMMANDS))
    monkeypatch.setattr(masklet.cli, "COMMAND_MODULES", modules)


def test_multimask_subprocess_keeps_three_masks(
    image: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-c", RUNNER, "segment", str(image), "--point", "25,35"]
    command += [
        "--multimask",
        "--out",
        str(out),
        "--checkpoint",
        str(random_checkpoint),
        *MODEL_ARGS,
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "scores.json").read_text())
    assert summary["masks"] == ["mask_0.png", "mask_1.png", "mask_2.png"]
    assert len(summary["scores"]) == 3 and summary["best"] == int(np.argmax(summary["scores"]))
    assert summary["points"] == [[25.0, 35.0]] and summary["labels"] == [1]
    for name in summary["masks"]:
        mask = np.asarray(Image.open(out / name))
        assert mask.shape == (80, 96) and set(np.unique(mask)) <= {0, 255}
    assert np.asarray(Image.open(out / "overlay.png")).shape == (80, 96, 3)


def test_points_box_and_mask_in_give_one_mask(
    cli: None, image: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    rough = np.zeros((80, 96), dtype=np.uint8)
    rough[22:48, 12:38] = 255
    Image.fromarray(rough).save(tmp_path / "rough.png")
    out = tmp_path / "out"
    args = ["segment", str(image), "--point", "25,35", "--point", "70,60,0"]
    args += ["--box", "5,15,45,55", "--mask-in", str(tmp_path / "rough.png"), "--out", str(out)]
    assert masklet.cli.main([*args, "--checkpoint", str(random_checkpoint), *MODEL_ARGS]) == 0
    summary = json.loads((out / "scores.json").read_text())
    assert summary["masks"] == ["mask.png"] and len(summary["scores"]) == 1
    assert summary["labels"] == [1, 0] and summary["box"] == [5.0, 15.0, 45.0, 55.0]
    assert summary["mask_in"] == str(tmp_path / "rough.png")
    assert np.asarray(Image.open(out / "mask.png")).shape == (80, 96)


def test_bad_input_exits_2_with_one_line(
    cli: None,
    image: Path,
    random_checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    model = ["--out", str(tmp_path / "out"), "--checkpoint", str(random_checkpoint), *MODEL_ARGS]
    cases = [
        ([str(tmp_path / "none.png"), "--point", "1,1"], "image not found"),
        ([str(tmp_path / "broken.png"), "--point", "1,1"], "cannot read image"),
        ([str(image), "--point", "1"], "expected 2 or 3 numbers"),
        ([str(image), "--point", "1,2,7"], "LABEL must be 1"),
        ([str(image), "--point", "200,10"], "outside the 96x80 image"),
        ([str(image), "--box", "10,10,5,20"], "x0 < x1"),
        ([str(image)], "no prompt given"),
        ([str(image), "--mask-in", str(tmp_path / "small.png")], "is 10x10, the image is 96x80"),
        ([str(image), "--mask-in", str(tmp_path / "no.png")], "--mask-in file not found"),
        ([str(image), "--point", "1,1", "--image-size", "100"], "multiple of 32"),
        ([str(image), "--point", "1,1", "--dtype", "int8"], "unknown dtype"),
    ]
    for args, message in cases:
        assert masklet.cli.main(["segment", *model, *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith("masklet: error: ") and message in err, err


def test_an_unnamed_checkpoint_is_identified_by_its_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import masklet.cli.common as common
    from masklet.cli.common import UNNAMED_CHECKPOINT_PRESET, model_preset
    from masklet.config import get_config
    from masklet.model.sam2 import SAM2Model

    trained = tmp_path / "model.pt"  # what `masklet train` writes
    torch.save({"model": SAM2Model(get_config("masklet_nano")).state_dict()}, trained)
    reads: list[Path] = []
    read = common.read_state_dict
    monkeypatch.setattr(common, "read_state_dict", lambda path: reads.append(path) or read(path))
    assert model_preset(None, trained) == "masklet_nano"
    assert model_preset(None, trained) == "masklet_nano"  # checked early, then while loading
    assert reads == [trained.resolve()]
    assert model_preset("sam2.1_hiera_s", trained) == "sam2.1_hiera_s"
    unknown = tmp_path / "other.pt"
    torch.save({"model": {"some.weight": torch.zeros(2)}}, unknown)
    assert model_preset(None, unknown) == UNNAMED_CHECKPOINT_PRESET
