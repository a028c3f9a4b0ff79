"""Mask writers of `masklet track` (`masklet.io.mask_writers`) and their notebook mirror
(`masklet.notebook`), `masklet info`, and the Ctrl-C guard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

import masklet.cli
from masklet.cli.interrupts import deferred_interrupt
from masklet.cli.outputs import parse_formats
from masklet.errors import InputError, MaskletError
from masklet.io import VideoWriter, list_object_pngs, read_indexed_png, read_sav_json, rle_to_mask
from masklet.io.mask_writers import SavJsonWriter, VideoMeta
from masklet.notebook import show_masks, write_masks

RUNNER = (
    "import sys, masklet.cli as c; "
    "c.COMMAND_MODULES = tuple(dict.fromkeys(c.COMMAND_MODULES + ('masklet.cli.info',))); "
    "sys.exit(c.main(sys.argv[1:]))"
)


def _masks(frame_idx: int) -> dict[int, np.ndarray]:
    one = np.zeros((40, 50), dtype=bool)
    one[5:15, 5 + frame_idx : 20 + frame_idx] = True
    two = np.zeros((40, 50), dtype=bool)
    two[20:35, 30:45] = frame_idx != 1  # absent on frame 1
    return {1: one, 2: two}


def test_parse_formats() -> None:
    assert parse_formats("davis, overlay,davis") == ("davis", "overlay")
    for bad in ("gif", "", "davis,gif"):
        with pytest.raises(InputError, match="unsupported output format"):
            parse_formats(bad)


def test_write_masks_davis_and_pngs(tmp_path: Path) -> None:
    for frame_idx in range(3):
        write_masks(tmp_path / "davis", frame_idx, _masks(frame_idx))
        write_masks(tmp_path / "pngs", frame_idx, _masks(frame_idx), format="pngs")
    labels, _ = read_indexed_png(tmp_path / "davis" / "00002.png")
    assert np.array_equal(labels == 1, _masks(2)[1])
    assert np.array_equal(labels == 2, _masks(2)[2] & ~_masks(2)[1])
    assert list_object_pngs(tmp_path / "pngs") == {1: [0, 1, 2], 2: [0, 1, 2]}


def test_write_masks_accepts_logit_tensors(tmp_path: Path) -> None:
    logits = torch.full((1, 40, 50), -3.0)
    logits[0, 1:4, 1:4] = 2.0
    (path,) = write_masks(tmp_path, 7, {5: logits})
    labels, _ = read_indexed_png(path)
    assert path.name == "00007.png" and int((labels == 5).sum()) == 9


def test_write_masks_sav_grows_one_frame_at_a_time(tmp_path: Path) -> None:
    for frame_idx in (0, 2, 1):
        write_masks(tmp_path, frame_idx, _masks(frame_idx), format="sav", video_id="clip")
    annotation = read_sav_json(tmp_path / "clip_auto.json", frame_stride=1)
    assert annotation.masklet_id == [1, 2] and annotation.num_annotated_frames == 3
    for frame_idx in range(3):
        masks = annotation.masks_at(frame_idx)
        assert np.array_equal(masks[2], _masks(frame_idx)[2])


def test_write_masks_coco(tmp_path: Path) -> None:
    for frame_idx in range(3):
        write_masks(tmp_path, frame_idx, _masks(frame_idx), format="coco", video_id="clip")
    coco = COCO(str(tmp_path / "clip_coco.json"))
    assert sorted(coco.getImgIds()) == [0, 1, 2] and sorted(coco.getCatIds()) == [1, 2]
    assert coco.getAnnIds(imgIds=[1], catIds=[2]) == []  # absent object: no annotation
    (ann,) = coco.loadAnns(coco.getAnnIds(imgIds=[2], catIds=[1]))
    assert np.array_equal(rle_to_mask(ann["segmentation"]), _masks(2)[1])
    assert ann["bbox"] == [7, 5, 15, 10] and ann["area"] == 150


def test_write_masks_overlay_needs_the_image(tmp_path: Path) -> None:
    image = np.zeros((40, 50, 3), dtype=np.uint8)
    (path,) = write_masks(tmp_path, 3, _masks(0), format="overlay", image=image)
    assert path.name == "overlay_00003.png" and path.is_file()
    with pytest.raises(InputError, match="needs the frame"):
        write_masks(tmp_path, 3, _masks(0), format="overlay")
    with pytest.raises(InputError, match="unsupported format"):
        write_masks(tmp_path, 3, _masks(0), format="gif")


def test_sav_writer_rows_follow_the_stride(tmp_path: Path) -> None:
    meta = VideoMeta("v", 40, 50, 9, 24.0, (1, 2))
    writer = SavJsonWriter(tmp_path / "v.json", meta, stride=4)
    for frame_idx in range(9):
        writer.write(frame_idx, _masks(frame_idx % 3), None)
    writer.close()
    annotation = read_sav_json(tmp_path / "v.json", frame_stride=4)
    assert annotation.frame_indices() == [0, 4, 8] and annotation.video_frame_count == 9
    assert np.array_equal(annotation.masks_at(1)[1], _masks(1)[1])  # frame 4 = 4 % 3


def run_info(path: Path) -> int:
    """`masklet info PATH` in this process (registers the command for the call)."""
    modules = tuple(dict.fromkeys((*masklet.cli.COMMAND_MODULES, "masklet.cli.info")))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(masklet.cli, "COMMAND_MODULES", modules)
        return masklet.cli.main(["info", str(path)])


class _FakeAxes:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def imshow(self, image: np.ndarray) -> None:
        self.calls.append(("imshow", image))

    def axis(self, mode: str) -> None:
        self.calls.append(("axis", mode))


def test_show_masks_draws_on_given_axes() -> None:
    image = np.zeros((40, 50, 3), dtype=np.uint8)
    axes = _FakeAxes()
    assert show_masks(image, _masks(0), ax=axes) is axes
    (_, shown), axis = axes.calls
    assert shown.shape == (40, 50, 3) and shown[10, 10].any() and not shown[0, 0].any()
    assert axis == ("axis", "off")


def test_show_masks_without_matplotlib_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(MaskletError, match="pip install matplotlib"):
        show_masks(np.zeros((40, 50, 3), dtype=np.uint8), _masks(0))


def test_deferred_interrupt_holds_sigint_until_the_block_ends() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt), deferred_interrupt():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("finished the block")
    assert done == ["finished the block"]
    with deferred_interrupt(reraise=False) as caught:
        os.kill(os.getpid(), signal.SIGINT)
    assert caught.received
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_info_reports_frames_fps_size_codec(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "clip.mp4", 12) as writer:
        for _ in range(5):
            writer.write(np.zeros((48, 64, 3), dtype=np.uint8))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-c", RUNNER, "info", str(tmp_path / "clip.mp4"), "--json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert (info["frames"], info["fps"], info["width"], info["height"]) == (5, 12, 64, 48)
    assert info["codec"] == "h264"


def test_info_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run_info(tmp_path / "missing.mp4") == 2
    err = capsys.readouterr().err
    assert err == f"masklet: error: video not found: {tmp_path / 'missing.mp4'}\n"


def test_info_on_a_frame_folder(capsys: pytest.CaptureFixture[str]) -> None:
    folder = Path(__file__).parent / "data/synthetic_davis/JPEGImages/480p/synth_000"
    assert run_info(folder) == 0
    printed = capsys.readouterr().out
    assert "frames:    10" in printed and "size:      240x160" in printed
