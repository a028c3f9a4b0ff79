"""`masklet demo` end to end on random weights, and its one-line failure offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from masklet.cli import main
from masklet.config import PRESETS
from masklet.model.sam2 import SAM2Model


def test_demo_writes_mask_overlay_and_scores(tmp_path: Path) -> None:
    torch.manual_seed(0)
    checkpoint = tmp_path / "random.pt"
    torch.save({"model": SAM2Model(PRESETS["sam2.1_hiera_t"]).state_dict()}, checkpoint)
    out = tmp_path / "out"
    code = main(
        [
            "demo",
            "--checkpoint",
            str(checkpoint),
            "--image-size",
            "256",
            "--dtype",
            "float32",
            "--point",
            "200,150",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    mask = np.asarray(Image.open(out / "mask.png"))
    assert mask.shape == (300, 451)
    overlay = np.asarray(Image.open(out / "overlay.png"))
    assert overlay.shape == (300, 451, 3)
    summary = json.loads((out / "scores.json").read_text())
    assert len(summary["scores"]) == 3 and summary["point"] == [200.0, 150.0]


def test_demo_offline_without_checkpoint_says_so_in_one_line(tmp_path: Path) -> None:
    env = dict(
        os.environ, MASKLET_HOME=str(tmp_path), MASKLET_WEIGHTS_BASE_URL="http://127.0.0.1:9"
    )
    result = subprocess.run(
        [sys.executable, "-m", "masklet", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "sam2.1_hiera_tiny.pt" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_demo_rejects_bad_point(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pt"
    assert main(["demo", "--checkpoint", str(missing)]) == 2
