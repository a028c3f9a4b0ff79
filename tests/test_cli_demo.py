"""`masklet demo` end to end on random weights, and offline on the shipped `masklet_nano`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from masklet.cli import main
from masklet.config import PRESETS
from masklet.model.sam2 import SAM2Model
from masklet.weights import read_manifest


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


def test_demo_runs_offline_on_the_shipped_model(tmp_path: Path) -> None:
    """What `make demo` runs, with an empty cache and no network: masklet_nano at 256 px."""
    env = dict(
        os.environ,
        MASKLET_HOME=str(tmp_path / "cache"),
        MASKLET_WEIGHTS_BASE_URL="http://127.0.0.1:9",
        OMP_NUM_THREADS="1",
    )
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "masklet", "demo", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    manifest = read_manifest("masklet_nano")
    expected = [f"model: masklet_nano (shipped weights, sha256 {manifest.short_sha256}…)"]
    if manifest.provenance.steps == 0:
        expected.append(
            "warning: these shipped weights are an untrained placeholder; masks are noise"
        )
    assert result.stderr.splitlines() == expected
    summary = json.loads((out / "scores.json").read_text())
    assert summary["model"] == "masklet_nano" and summary["image_size"] == 256
    assert np.asarray(Image.open(out / "mask.png")).shape == (300, 451)
    assert not (tmp_path / "cache").exists()  # nothing was downloaded


def test_demo_offline_with_an_official_model_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MASKLET_HOME", str(tmp_path))
    monkeypatch.setenv("MASKLET_WEIGHTS_BASE_URL", "http://127.0.0.1:9")
    assert main(["demo", "--model", "sam2.1_hiera_t", "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "sam2.1_hiera_tiny.pt" in lines[0], lines


def test_demo_rejects_bad_point(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pt"
    assert main(["demo", "--checkpoint", str(missing)]) == 2
