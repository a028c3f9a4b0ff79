"""`masklet track` end to end on a small generated video with random weights: every output
format, reverse/start/max-frames, mask prompts from a JSON file, Ctrl-C and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

import masklet.cli
from masklet.errors import InputError
from masklet.io import (
    VideoWriter,
    list_object_pngs,
    probe_video,
    read_indexed_png,
    read_sav_json,
    rle_to_mask,
    voc_palette,
    write_indexed_png,
)

NEW_COMMANDS = ("masklet.cli.track", "masklet.cli.segment", "masklet.cli.info")
# Runs the CLI with the new commands registered (a no-op once COMMAND_MODULES lists them).
RUNNER = (
    "import sys, masklet.cli as c; "
    f"c.COMMAND_MODULES = tuple(dict.fromkeys(c.COMMAND_MODULES + {NEW_COMMANDS!r})); "
    "sys.exit(c.main(sys.argv[1:]))"
)
HEIGHT, WIDTH, FPS = 80, 96, 10
MODEL_ARGS = ("--image-size", "64", "--dtype", "float32", "--device", "cpu")


def write_video(path: Path, num_frames: int) -> Path:
    """A red square moving right over a grey gradient, H.264 at FPS."""
    with VideoWriter(path, FPS) as writer:
        for index in range(num_frames):
            frame = np.full((HEIGHT, WIDTH, 3), 60, dtype=np.uint8)
            frame[..., 1] = np.linspace(40, 160, WIDTH, dtype=np.uint8)
            x = 10 + 4 * (index % 12)
            frame[20:50, x : x + 30] = (220, 40, 40)
            writer.write(frame)
    return path


def run_cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-c", RUNNER, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", 6)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the new commands for in-process `masklet.cli.main` calls."""
    modules = tuple(dict.fromkeys(masklet.cli.COMMAND_MODULES + NEW_COMMANDS))
    monkeypatch.setattr(masklet.cli, "COMMAND_MODULES", modules)


@pytest.fixture(scope="module")
def all_formats(
    tmp_path_factory: pytest.TempPathFactory, video: Path, random_checkpoint: Path
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("track") / "out"
    result = run_cli(
        "track",
        video,
        "--prompt",
        "frame=0,obj=1,point=25:35",
        "--prompt",
        "obj=2,box=50:55:90:75,neg=60:60",
        "--out",
        out,
        "--format",
        "davis,pngs,sav,coco,overlay",
        "--checkpoint",
        random_checkpoint,
        *MODEL_ARGS,
    )
    return out, result


def test_track_run_succeeds(all_formats: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, result = all_formats
    assert result.returncode == 0, result.stderr
    assert "tracked 2 objects over 6 frames (0..5)" in result.stdout
    assert "Traceback" not in result.stderr


def test_track_davis_pngs(all_formats: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = all_formats
    for index in range(6):
        labels, palette = read_indexed_png(out / f"{index:05d}.png")
        assert labels.shape == (HEIGHT, WIDTH)
        assert set(np.unique(labels)) <= {0, 1, 2}
        assert palette is not None and np.array_equal(palette[:3], voc_palette()[:3])


def test_track_object_pngs(all_formats: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = all_formats
    assert list_object_pngs(out) == {1: list(range(6)), 2: list(range(6))}
    davis, _ = read_indexed_png(out / "00003.png")
    object_two, _ = read_indexed_png(out / "002" / "00003.png")
    assert np.array_equal(davis == 2, (object_two == 1) & (davis != 1))


def test_track_sav_json(all_formats: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = all_formats
    annotation = read_sav_json(out / "clip_auto.json", frame_stride=1)
    assert annotation.masklet_id == [1, 2] and annotation.num_annotated_frames == 6
    assert annotation.video_frame_count == 6
    davis, _ = read_indexed_png(out / "00002.png")
    masks = annotation.masks_at(2)
    assert masks[1].shape == (HEIGHT, WIDTH)
    assert np.array_equal(masks[1], davis == 1)


def test_track_coco_json(all_formats: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = all_formats
    coco = COCO(str(out / "clip_coco.json"))
    assert sorted(coco.getImgIds()) == list(range(6))
    assert sorted(coco.getCatIds()) == [1, 2]
    davis, _ = read_indexed_png(out / "00004.png")
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[4])):
        mask = rle_to_mask(ann["segmentation"])
        assert mask.shape == (HEIGHT, WIDTH) and ann["area"] == int(mask.sum())
        # DAVIS labels: the smaller id wins where the two objects overlap
        shown = mask if ann["category_id"] == 1 else mask & (davis != 1)
        assert np.array_equal(shown, davis == ann["category_id"])


def test_track_overlay_video(all_formats: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = all_formats
    info = probe_video(out / "clip_overlay.mp4")
    assert (info.frames, info.fps, info.width, info.height) == (6, FPS, WIDTH, HEIGHT)
    assert info.codec == "h264"


def test_reverse_start_max_frames_and_mask_prompts_file(
    cli: None,
    tmp_path: Path,
    video: Path,
    random_checkpoint: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    labels = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    labels[20:50, 30:60] = 3
    palette = voc_palette()
    palette[3] = (10, 200, 30)
    write_indexed_png(tmp_path / "prompt.png", labels, palette)
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"prompts": [{"frame": 4, "obj": 3, "mask": "prompt.png"}]}))
    out = tmp_path / "out"
    args = ["track", str(video), "--prompts", str(prompts), "--out", str(out), "--reverse"]
    args += ["--max-frames", "3", "--checkpoint", str(random_checkpoint), *MODEL_ARGS]
    assert masklet.cli.main(args) == 0
    assert sorted(path.name for path in out.iterdir()) == ["00002.png", "00003.png", "00004.png"]
    written, kept = read_indexed_png(out / "00004.png")
    assert kept is not None and tuple(kept[3]) == (10, 200, 30)
    assert set(np.unique(written)) <= {0, 3}
    assert "over 3 frames (4..2)" in capsys.readouterr().out


def test_ctrl_c_leaves_valid_partial_output(tmp_path: Path, random_checkpoint: Path) -> None:
    video = write_video(tmp_path / "long.mp4", 60)
    out = tmp_path / "out"
    command = [sys.executable, "-c", RUNNER, "track", str(video), "--prompt", "point=25:35"]
    command += ["--out", str(out), "--format", "davis,sav,coco,overlay"]
    command += ["--checkpoint", str(random_checkpoint), *MODEL_ARGS]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 90
    while not (out / "00000.png").exists() and process.poll() is None:
        assert time.monotonic() < deadline, "no frame was written"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and str(out) in lines[0], stderr
    pngs = sorted(out.glob("*.png"))
    assert 1 <= len(pngs) < 60
    assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(len(pngs))]
    for path in pngs:
        assert read_indexed_png(path)[0].shape == (HEIGHT, WIDTH)
    assert f"{len(pngs)} frames (0..{len(pngs) - 1})" in lines[0]
    assert read_sav_json(out / "long_auto.json", frame_stride=1).num_annotated_frames == len(pngs)
    assert len(json.loads((out / "long_coco.json").read_text())["images"]) == len(pngs)
    assert probe_video(out / "long_overlay.mp4").frames == len(pngs)


def _bad_inputs(tmp: Path, video: Path, random_checkpoint: Path) -> list[tuple[list[str], str]]:
    (tmp / "notvideo.mp4").write_text("hello")
    (tmp / "full").mkdir()
    (tmp / "full" / "keep.txt").write_text("x")
    base = ["--out", str(tmp / "out"), "--checkpoint", str(random_checkpoint), *MODEL_ARGS]
    point = ["--prompt", "point=10:10"]
    return [
        ([str(tmp / "missing.mp4"), *point, *base], "not found"),
        ([str(tmp / "notvideo.mp4"), *point, *base], "cannot read video"),
        ([str(video), *point, *base, "--format", "gif"], "unsupported output format 'gif'"),
        ([str(video), "--prompt", "point=10;10", *base], "x:y or x:y:label"),
        ([str(video), "--prompt", "point=500:10", *base], "outside the 96x80 frame"),
        ([str(video), "--prompt", "frame=0,obj=2", *base], "object 2 has no prompt"),
        ([str(video), "--prompt", "frame=9,point=1:1", *base], "frame 9 is out of range"),
        ([str(video), *base], "no prompt given"),
        ([str(video), "--prompts", str(tmp / "none.json"), *base], "prompts file not found"),
        ([str(video), "--prompt", "obj=300,point=1:1", *base], "ids 1..254"),
        ([str(video), *point, *base, "--start", "6"], "--start 6 is out of range"),
        ([str(video), *point, *base, "--reverse"], "nothing to track"),
        ([str(video), *point, *base[:-8], "--checkpoint", str(tmp / "x.pt")], "not found"),
        ([str(video), *point, *base, "--out", str(tmp / "full")], "not empty; pass --overwrite"),
    ]


def test_bad_input_exits_2_with_one_line(
    cli: None,
    tmp_path: Path,
    video: Path,
    random_checkpoint: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for args, message in _bad_inputs(tmp_path, video, random_checkpoint):
        assert masklet.cli.main(["track", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith("masklet: error: "), err
        assert message in err, (message, err)
    assert not (tmp_path / "out").exists()


def test_bad_input_in_a_subprocess_has_no_traceback(video: Path, tmp_path: Path) -> None:
    result = run_cli("track", video, "--prompt", "frame=0,obj=2", "--out", tmp_path / "o")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "masklet: error: --prompt 'frame=0,obj=2': object 2 has no prompt "
        "(give point=, box= or mask=)"
    ]


def test_debug_shows_the_exception(cli: None, video: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not key=value"):
        masklet.cli.main(["--debug", "track", str(video), "--prompt", "x", "--out", str(tmp_path)])
