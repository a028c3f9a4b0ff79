"""`masklet bench vos` end to end on the committed synthetic DAVIS sample (random weights)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from masklet.cli import main
from masklet.io import read_indexed_png

DATASET = Path(__file__).parent / "data" / "synthetic_davis"


def test_bench_vos_runs_end_to_end(
    random_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    args = ["bench", "vos", "--dataset", str(DATASET), "--checkpoint", str(random_checkpoint)]
    args += ["--image-size", "64", "--dtype", "float32", "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0].split() == ["Video", "Objects", "J", "F", "J&F"]
    assert [line.split()[0] for line in lines[2:5]] == ["synth_000", "synth_001", "synth_002"]
    assert "Overall" in printed and "fps; peak RSS" in printed
    summary = json.loads((out / "bench_vos.json").read_text())
    assert summary["frames"] == 30 and summary["fps"] > 0 and summary["peak_rss_bytes"] > 2**20
    assert 0.0 <= summary["j_and_f"] <= 1.0
    assert (out / "global_results.csv").is_file() and (out / "results.json").is_file()
    for sequence in ("synth_000", "synth_001", "synth_002"):
        predictions = sorted((out / "predictions" / sequence).glob("*.png"))
        assert len(predictions) == 10
        labels, palette = read_indexed_png(predictions[5])
        gt_labels, gt_palette = read_indexed_png(
            DATASET / "Annotations/480p" / sequence / "00005.png"
        )
        assert labels.shape == gt_labels.shape
        assert palette is not None and gt_palette is not None
        assert np.array_equal(palette[: len(gt_palette)], gt_palette)
        assert set(np.unique(labels)) <= set(range(4))


def test_bench_vos_rejects_a_folder_that_is_not_davis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bench", "vos", "--dataset", str(tmp_path), "--checkpoint", str(tmp_path / "x.pt")]
    assert main(args) == 2
    assert "checkpoint file not found" in capsys.readouterr().err
    (tmp_path / "x.pt").write_bytes(b"")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"masklet: error: {tmp_path} is not a DAVIS-layout dataset "
        "(needs JPEGImages/480p and Annotations/480p)"
    )
    args[3] = str(DATASET)
    assert main([*args, "--sequences", "synth_000,nope"]) == 2
    assert "no annotations for sequence nope" in capsys.readouterr().err
