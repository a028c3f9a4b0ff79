"""Evaluator on the committed synthetic sample (DAVIS layout, and converted to SA-V), reports
and the `masklet eval` command."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import masklet.cli
from masklet.errors import InputError
from masklet.eval.evaluator import evaluate, evaluate_davis, evaluate_sav, read_label_png
from masklet.eval.report import format_table, write_reports

SAMPLE = Path(__file__).parent / "data" / "synthetic_davis"
ANNOTATIONS = SAMPLE / "Annotations" / "480p"


def write_labels(path: Path, labels: np.ndarray, palette: list[int] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(labels.astype(np.uint8))
    if palette is not None:
        image.putpalette(palette)
    image.save(path)


def shifted_copy(out: Path, shift: int) -> None:
    """Copy of the sample's annotations with every mask moved ``shift`` pixels right."""
    for png in sorted(ANNOTATIONS.glob("*/*.png")):
        with Image.open(png) as image:
            palette = image.getpalette()
            labels = np.array(image)
        moved = np.zeros_like(labels)
        moved[:, shift:] = labels[:, :-shift]
        write_labels(out / png.parent.name / png.name, moved, palette)


def test_sample_has_multi_object_sequences() -> None:
    sequences = sorted(path.name for path in ANNOTATIONS.iterdir())
    assert sequences == ["synth_000", "synth_001", "synth_002"]
    labels = read_label_png(ANNOTATIONS / "synth_000" / "00000.png")
    assert set(np.unique(labels)) == {0, 1, 2, 3}


def test_ground_truth_against_itself_scores_one() -> None:
    result = evaluate_davis(ANNOTATIONS, SAMPLE)  # the DAVIS root resolves to Annotations/480p
    assert len(result.videos) == 3
    assert len(result.objects) == 9
    assert result.j_and_f == 1.0
    assert result.j.recall == 1.0 and result.j.decay == 0.0
    assert result.missing_files == ()
    for obj in result.objects:
        assert obj.frames == tuple(f"{t:05d}" for t in range(1, 9))  # first and last skipped


def test_all_frames_option_keeps_first_and_last() -> None:
    result = evaluate(ANNOTATIONS, ANNOTATIONS, "davis", skip_first_last=False)
    assert len(result.objects[0].frames) == 10


def test_shifted_predictions_score_less(tmp_path: Path) -> None:
    shifted_copy(tmp_path / "shift2", 2)
    shifted_copy(tmp_path / "shift6", 6)
    small = evaluate_davis(tmp_path / "shift2", ANNOTATIONS)
    large = evaluate_davis(tmp_path / "shift6", ANNOTATIONS)
    assert 0.3 < large.j_and_f < small.j_and_f < 1.0
    assert large.j.mean < small.j.mean < 1.0
    assert large.f.mean < small.f.mean <= 1.0


def test_missing_prediction_files_are_reported_and_scored_empty(tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    shutil.copytree(ANNOTATIONS, pred)
    (pred / "synth_001" / "00002.png").unlink()
    shutil.rmtree(pred / "synth_002")
    result = evaluate_davis(pred, ANNOTATIONS)
    by_name = {video.name: video for video in result.videos}
    assert by_name["synth_000"].missing_files == ()
    assert by_name["synth_001"].missing_files == ("synth_001/00002.png",)
    assert len(by_name["synth_002"].missing_files) == 8
    assert by_name["synth_000"].j_and_f == 1.0
    frame = by_name["synth_001"].objects[0].frames.index("00002")
    gt = read_label_png(ANNOTATIONS / "synth_001" / "00002.png")
    for obj in by_name["synth_001"].objects:
        expected = 0.0 if np.any(gt == obj.object_id) else 1.0
        assert obj.j_per_frame[frame] == expected
    assert "Missing prediction files (scored as empty): 9" in format_table(result)


def test_size_mismatch_names_the_file(tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    shutil.copytree(ANNOTATIONS, pred)
    bad = pred / "synth_000" / "00003.png"
    write_labels(bad, np.zeros((10, 12), dtype=np.uint8))
    with pytest.raises(InputError, match=r"synth_000/00003\.png"):
        evaluate_davis(pred, ANNOTATIONS)


def test_void_label_is_ignored(tmp_path: Path) -> None:
    gt = np.zeros((3, 32, 32), dtype=np.uint8)
    gt[:, 4:12, 4:12] = 1
    gt[:, 20:30, 20:30] = 255  # void
    pred = gt.copy()
    pred[pred == 255] = 0
    pred[:, 22:28, 22:28] = 1  # a false positive, but only inside the void region
    for t in range(3):
        write_labels(tmp_path / "gt" / "seq" / f"{t:05d}.png", gt[t])
        write_labels(tmp_path / "pred" / "seq" / f"{t:05d}.png", pred[t])
    result = evaluate_davis(tmp_path / "pred", tmp_path / "gt")
    assert [obj.object_id for obj in result.objects] == [1]
    assert result.j_and_f == 1.0


def to_sav_layout(out: Path, step: int = 2) -> None:
    """Write the sample as SA-V per-object binary PNGs on every ``step``-th frame."""
    for seq_dir in sorted(ANNOTATIONS.iterdir()):
        frames = sorted(seq_dir.glob("*.png"))[::step]
        for png in frames:
            labels = read_label_png(png)
            for obj in (1, 2, 3):
                mask = (labels == obj).astype(np.uint8) * 255
                write_labels(out / seq_dir.name / f"{obj:03d}" / png.name, mask)


def test_sav_layout(tmp_path: Path) -> None:
    to_sav_layout(tmp_path / "gt")
    result = evaluate_sav(tmp_path / "gt", tmp_path / "gt")
    assert result.j_and_f == 1.0
    assert [obj.object_id for obj in result.videos[0].objects] == [1, 2, 3]
    # Annotated frames 0, 2, 4, 6, 8: the first and last annotated frame are skipped.
    assert result.objects[0].frames == ("00002", "00004", "00006")
    shutil.copytree(tmp_path / "gt", tmp_path / "pred")
    (tmp_path / "pred" / "synth_000" / "002" / "00004.png").unlink()
    partial = evaluate_sav(tmp_path / "pred", tmp_path / "gt")
    assert partial.missing_files == ("synth_000/002/00004.png",)
    assert partial.j_and_f < 1.0


def test_wrong_layout_is_a_clear_error(tmp_path: Path) -> None:
    to_sav_layout(tmp_path / "sav")
    with pytest.raises(InputError, match="--format sav"):
        evaluate_davis(tmp_path / "sav", tmp_path / "sav")
    with pytest.raises(InputError, match="--format davis"):
        evaluate_sav(ANNOTATIONS, ANNOTATIONS)
    with pytest.raises(InputError, match="does not exist"):
        evaluate_davis(tmp_path / "nowhere", ANNOTATIONS)


def test_reports(tmp_path: Path) -> None:
    shifted_copy(tmp_path / "pred", 3)
    result = evaluate_davis(tmp_path / "pred", ANNOTATIONS)
    paths = write_reports(result, tmp_path / "out")
    assert [path.name for path in paths] == [
        "global_results.csv",
        "per_object_results.csv",
        "results.json",
    ]
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["J&F"] == pytest.approx(result.j_and_f, abs=1e-6)
    assert len(data["videos"]) == 3 and len(data["videos"][0]["objects"]) == 3
    with (tmp_path / "out" / "per_object_results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 9
    assert float(rows[0]["J-Mean"]) == pytest.approx(result.objects[0].j.mean, abs=1e-6)
    with (tmp_path / "out" / "global_results.csv").open() as handle:
        (global_row,) = list(csv.DictReader(handle))
    assert float(global_row["J&F-Mean"]) == pytest.approx(result.j_and_f, abs=1e-6)


@pytest.fixture
def cli_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register this package's commands whether or not COMMAND_MODULES lists them yet."""
    modules = tuple(masklet.cli.COMMAND_MODULES)
    extra = tuple(m for m in ("masklet.cli.evaluate", "masklet.cli.bench") if m not in modules)
    present = tuple(m for m in modules if _importable(m))
    monkeypatch.setattr(masklet.cli, "COMMAND_MODULES", present + extra)


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.mark.usefixtures("cli_modules")
def test_cli_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shifted_copy(tmp_path / "pred", 3)
    pred, out_dir = str(tmp_path / "pred"), str(tmp_path / "o")
    code = masklet.cli.main(["eval", "--pred", pred, "--gt", str(SAMPLE), "--out", out_dir])
    out = capsys.readouterr().out
    assert code == 0
    assert "synth_000" in out and "Overall" in out and "J&F" in out
    assert (tmp_path / "o" / "results.json").is_file()
    assert (tmp_path / "o" / "global_results.csv").is_file()


@pytest.mark.usefixtures("cli_modules")
def test_cli_eval_identical_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert masklet.cli.main(["eval", "--pred", str(ANNOTATIONS), "--gt", str(ANNOTATIONS)]) == 0
    overall = [line for line in capsys.readouterr().out.splitlines() if "Overall" in line]
    assert overall[0].split()[-3:] == ["1.000", "1.000", "1.000"]
    code = masklet.cli.main(["eval", "--pred", str(tmp_path / "none"), "--gt", str(ANNOTATIONS)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("masklet: error:") and "does not exist" in err
