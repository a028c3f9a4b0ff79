"""A corpus of bad and unusual inputs for `segment`, `track` and `auto` (docs/cli.md, "Bad
inputs"): damaged and malicious checkpoints, malformed prompts, unusable output folders and a
full disk. Each case ends in exit 0 with valid output, or exit 2 with one line naming the problem
and the file; never a traceback, and what was written before a failure stays valid."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from PIL import Image

import masklet.cli
import masklet.cli.segment
import masklet.io.video_writer
from masklet.checkpoint import read_state_dict
from masklet.errors import CheckpointError
from masklet.io import probe_video, read_indexed_png, read_sav_json
from test_cli_track import HEIGHT, MODEL_ARGS, WIDTH, write_video

pytestmark = pytest.mark.usefixtures("one_thread")

NUM_FRAMES = 6
UNWRITABLE = Path("/sys/masklet-corpus-out")  # sysfs refuses mkdir, even to root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, photo: np.ndarray) -> Path:
    """A folder with a small video (6 frames, 96x80) and image (240x180)."""
    folder = tmp_path_factory.mktemp("corpus")
    write_video(folder / "clip.mp4", NUM_FRAMES)
    Image.fromarray(photo).save(folder / "photo.png")
    return folder


def run_main(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """Run `masklet ARGS` in-process; returns the exit code and stderr (stripped)."""
    code = masklet.cli.main([str(arg) for arg in args])
    return code, capsys.readouterr().err.strip()


def assert_one_line(code: int, err: str, *parts: str) -> None:
    """Exit code 2 and a single `masklet: error:` line containing every part."""
    assert code == 2, err
    assert "\n" not in err and err.startswith("masklet: error: "), err
    for part in parts:
        assert part in err, (part, err)


def corpus_command(
    command: str, corpus: Path, out: Path, *options: str | Path, checkpoint: Path | None = None
) -> list[str | Path]:
    """`command` (segment, track or auto) on the corpus clip (track) or photo with `options`,
    writing into `out`, with the small model (random weights from `checkpoint` if given)."""
    source = corpus / ("clip.mp4" if command == "track" else "photo.png")
    model = [*MODEL_ARGS] if checkpoint is None else ["--checkpoint", checkpoint, *MODEL_ARGS]
    return [command, source, *options, "--out", out, *model]


def run_subprocess(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`python -m masklet ARGS` in a fresh interpreter (proves nothing else reaches stderr)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "masklet", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


# ---------------------------------------------------------------- checkpoints


class RunsCommand:
    """Unpickling this runs a shell command (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


class OpensFile:
    """Unpickling this creates a file through `open`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def bad_checkpoint(kind: str, folder: Path, good: Path, marker: Path) -> Path:
    """Write one kind of bad checkpoint into `folder`."""
    path = folder / f"{kind}.pt"
    if kind == "text":
        path.write_text("these are not the weights you are looking for\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "runs-command":
        torch.save({"model": RunsCommand(marker)}, path)
    elif kind == "opens-file":
        torch.save({"model": {"weight": torch.zeros(2)}, "extra": OpensFile(marker)}, path)
    elif kind == "legacy-runs-command":
        torch.save({"model": RunsCommand(marker)}, path, _use_new_zipfile_serialization=False)
    else:  # a bare pickle (protocol 4) of the payload, as `pickle.dump` writes it
        path.write_bytes(pickle.dumps({"model": RunsCommand(marker)}, protocol=4))
    return path


CHECKPOINT_CASES = {
    "text": "is not a readable PyTorch checkpoint: it is not a zip or pickle file",
    "empty": "is not a readable PyTorch checkpoint: the file is empty",
    "truncated": "is not a readable PyTorch checkpoint: it is truncated or damaged",
    "runs-command": "its pickle names the Python object posix.system, not a tensor",
    "opens-file": "its pickle names the Python object io.open, not a tensor",
    "legacy-runs-command": "its pickle names the Python object posix.system, not a tensor",
    "pickle-runs-command": "its pickle holds more than tensors and plain containers",
}


@pytest.mark.parametrize("kind", sorted(CHECKPOINT_CASES))
def test_bad_checkpoints_are_refused_without_running_code(
    kind: str, tmp_path: Path, random_checkpoint: Path
) -> None:
    marker = tmp_path / "payload-ran"
    path = bad_checkpoint(kind, tmp_path, random_checkpoint, marker)
    with pytest.raises(CheckpointError) as error:
        read_state_dict(path)
    assert CHECKPOINT_CASES[kind] in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value) and "weights_only` set to `False" not in str(error.value)
    assert not marker.exists()


def test_every_torch_load_in_masklet_is_weights_only() -> None:
    source = Path(masklet.cli.__file__).parents[1]
    calls = [
        (path, line)
        for path in sorted(source.rglob("*.py"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if "torch.load(" in line
    ]
    assert calls, "no torch.load found: update this test"
    for path, line in calls:
        assert "weights_only=True" in line, f"{path}: {line.strip()}"


@pytest.mark.parametrize("kind", ["truncated", "runs-command"])
def test_segment_and_track_refuse_bad_checkpoints(
    kind: str,
    tmp_path: Path,
    corpus: Path,
    random_checkpoint: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    marker = tmp_path / "payload-ran"
    path = bad_checkpoint(kind, tmp_path, random_checkpoint, marker)
    segment = corpus_command("segment", corpus, tmp_path / "s", "--point", "5,5", checkpoint=path)
    assert_one_line(*run_main(capsys, *segment), str(path), CHECKPOINT_CASES[kind])
    track = corpus_command(
        "track", corpus, tmp_path / "t", "--prompt", "point=5:5", checkpoint=path
    )
    assert_one_line(*run_main(capsys, *track), str(path), CHECKPOINT_CASES[kind])
    assert not marker.exists()


def test_malicious_checkpoint_in_a_subprocess(
    tmp_path: Path, corpus: Path, random_checkpoint: Path
) -> None:
    marker = tmp_path / "payload-ran"
    path = bad_checkpoint("runs-command", tmp_path, random_checkpoint, marker)
    result = run_subprocess(
        *corpus_command("segment", corpus, tmp_path / "out", "--point", "5,5", checkpoint=path)
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"masklet: error: refusing to load {path}: its pickle names the Python object "
        "posix.system, not a tensor; loading it could run code, so masklet loads only plain "
        "tensor checkpoints"
    ]
    assert not marker.exists()


# ---------------------------------------------------------------- prompts


PROMPT_FILE_CASES = [
    ('{"prompts": [', "is not valid JSON: Expecting value"),
    ("[" * 100_000, "is nested too deeply"),
    ("[]", "must hold a non-empty list"),
    ("{}", "must hold a non-empty list"),
    ('{"prompts": []}', "must hold a non-empty list"),
    ("[{}]", "prompt 0: object 1 has no prompt"),
    ('[{"frame": 0, "obj": 2}]', "prompt 0: object 2 has no prompt"),
    ('[{"points": [[10, 20]], "pts": 1}]', "unknown key 'pts'"),
    ('["point=1:2"]', "prompt 0 must be an object"),
    ('[{"points": {"x": 1}}]', "points must be a list"),
    ('[{"points": [["10", 20]]}]', 'a point must hold numbers, got "10"'),
    ('[{"points": [[null, 20]]}]', "a point must hold numbers, got null"),
    ('[{"points": [[10, 20, true]]}]', "a point must hold numbers, got true"),
    ('[{"points": [[10, 20, 0.5]]}]', "label must be a whole number"),
    ('[{"frame": "0", "points": [[10, 20]]}]', 'frame must be a whole number, got "0"'),
    ('[{"obj": 1.5, "points": [[10, 20]]}]', "obj must be a whole number, got 1.5"),
    ('[{"box": "0,0,5,5"}]', "box must be [x0, y0, x1, y1]"),
    ('[{"box": [0, 0, 5]}]', "a box is x0:y0:x1:y1, got 3 values"),
    ('[{"mask": 3}]', "mask must be a file path"),
    ('[{"points": [[NaN, 20]]}]', "'nan' is not a finite number"),
    ('[{"box": [0, 0, Infinity, 20]}]', "'inf' is not a finite number"),
    ('[{"points": [[1e999, 20]]}]', "'inf' is not a finite number"),
    ('[{"points": [[500, 20]]}]', "point (500, 20) is outside the 96x80 frame"),
    ('[{"points": [[10, -1]]}]', "point (10, -1) is outside the 96x80 frame"),
    ('[{"box": [50, 5, 10, 20]}]', "box needs x0 < x1 and y0 < y1, got 50:5:10:20"),
    ('[{"mask": "nope.png"}]', "mask file not found"),
    ('[{"frame": -1, "points": [[10, 20]]}]', "frame -1 is out of range, the video has 6 frames"),
    ('[{"frame": 6, "points": [[10, 20]]}]', "frame 6 is out of range, the video has 6 frames"),
]


@pytest.mark.parametrize(("content", "message"), PROMPT_FILE_CASES)
def test_malformed_prompts_files(
    content: str, message: str, tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "prompts.json"
    prompts.write_text(content)
    code, err = run_main(
        capsys, *corpus_command("track", corpus, tmp_path / "out", "--prompts", prompts)
    )
    assert_one_line(code, err, str(prompts), message)
    assert not (tmp_path / "out").exists()


def test_unreadable_prompts_files(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "utf16.json").write_text('[{"points": [[1, 2]]}]', encoding="utf-16")
    cases = [("folder.json", "cannot read prompts file"), ("utf16.json", "is not UTF-8 text")]
    for name, message in cases:
        args = corpus_command("track", corpus, tmp_path / "out", "--prompts", tmp_path / name)
        code, err = run_main(capsys, *args)
        assert_one_line(code, err, str(tmp_path / name), message)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("point=nan:5", "'nan' is not a finite number"),
        ("point=5:NaN", "'NaN' is not a finite number"),
        ("box=0:0:inf:5", "'inf' is not a finite number"),
        ("point=1e999:5", "'1e999' is not a finite number"),
        ("frame=nan,point=5:5", "frame must be a whole number, got 'nan'"),
        ("frame=-1,point=5:5", "frame -1 is out of range, the video has 6 frames (0..5)"),
        ("frame=6,point=5:5", "frame 6 is out of range, the video has 6 frames (0..5)"),
        ("box=50:5:10:20", "box needs x0 < x1"),
        ("point=97:5", "point (97, 5) is outside the 96x80 frame"),
    ],
)
def test_bad_prompt_specs(
    spec: str, message: str, tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_main(
        capsys, *corpus_command("track", corpus, tmp_path / "out", "--prompt", spec)
    )
    assert_one_line(code, err, f"--prompt {spec!r}", message)


def test_segment_refuses_nan_clicks(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for option, value in [("--point", "nan,5"), ("--point", "5,inf"), ("--box", "0,0,nan,5")]:
        code, err = run_main(
            capsys, *corpus_command("segment", corpus, tmp_path / "out", option, value)
        )
        assert_one_line(code, err, f"{option} {value!r}", "must be finite numbers")


def test_bad_prompts_file_in_a_subprocess(tmp_path: Path, corpus: Path) -> None:
    prompts = tmp_path / "prompts.json"
    prompts.write_text('{"prompts": [{"frame": 0, "obj": 1, "points": [[NaN, 5]]}]}')
    result = run_subprocess(
        *corpus_command("track", corpus, tmp_path / "out", "--prompts", prompts)
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"masklet: error: {prompts}: prompt 0: 'nan' is not a finite number"
    ]


# ---------------------------------------------------------------- output folders and disks


COMMAND_OPTIONS = {
    "segment": ["--point", "60,80"],
    "auto": ["--points-per-side", "2", "--pred-iou-thresh", "0", "--stability-score-thresh", "0"],
    "track": ["--prompt", "point=25:35"],
}


@pytest.fixture
def cheap_run(
    corpus: Path, random_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str]]:
    """`cheap_run(command, out, *extra)`: a cheap `segment`, `track` or `auto` run writing into
    `out`, with `extra` options, in-process (`run_main`): the exit code and stderr."""

    def run(command: str, out: Path, *extra: str) -> tuple[int, str]:
        options = COMMAND_OPTIONS[command]
        args = corpus_command(command, corpus, out, *options, checkpoint=random_checkpoint)
        return run_main(capsys, *args, *extra)

    return run


@pytest.mark.parametrize("command", ["segment", "track", "auto"])
def test_out_is_an_existing_file(
    command: str, tmp_path: Path, cheap_run: Callable[..., tuple[int, str]]
) -> None:
    out = tmp_path / "results"
    out.write_text("keep me")
    code, err = cheap_run(command, out)
    assert_one_line(code, err, f"output folder {out} exists and is not a folder")
    assert out.read_text() == "keep me"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux's sysfs")
@pytest.mark.parametrize("command", ["segment", "track", "auto"])
def test_out_cannot_be_created(command: str, cheap_run: Callable[..., tuple[int, str]]) -> None:
    assert not UNWRITABLE.exists()
    code, err = cheap_run(command, UNWRITABLE)
    assert_one_line(code, err, f"cannot create output folder {UNWRITABLE}: ")


def disk_fills_up(allowed: int) -> Callable[..., None]:
    """A stand-in for `PIL.Image.Image.save`: the first `allowed` saves work; later ones write
    a few bytes and then fail with ENOSPC, as a disk that fills up mid-file does."""
    real_save = Image.Image.save
    remaining = [allowed]

    def save(image: Image.Image, target: Any, *args: Any, **options: Any) -> None:
        if remaining[0] > 0:
            remaining[0] -= 1
            real_save(image, target, *args, **options)
            return
        Path(target).write_bytes(b"\x89PNG\r\n\x1a\n")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return save


def no_partial_files(folder: Path) -> bool:
    return not [path for path in folder.rglob(".*") if "partial" in path.name]


def test_disk_full_mid_track_keeps_finished_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cheap_run: Callable[..., tuple[int, str]]
) -> None:
    out = tmp_path / "out"
    monkeypatch.setattr(Image.Image, "save", disk_fills_up(allowed=3))
    code, err = cheap_run("track", out, "--format", "davis,sav,coco,overlay")
    assert_one_line(code, err, f"cannot write {out / '00003.png'}: no space left on device")
    assert sorted(path.name for path in out.glob("*.png")) == [f"{i:05d}.png" for i in range(3)]
    for index in range(3):
        assert read_indexed_png(out / f"{index:05d}.png")[0].shape == (HEIGHT, WIDTH)
    assert read_sav_json(out / "clip_auto.json", frame_stride=1).num_annotated_frames == 3
    assert len(json.loads((out / "clip_coco.json").read_text())["images"]) == 3
    assert probe_video(out / "clip_overlay.mp4").frames == 3
    assert no_partial_files(out)


def test_disk_full_in_the_overlay_video_drops_only_the_video(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cheap_run: Callable[..., tuple[int, str]]
) -> None:
    calls = {"mux": 0}
    real_mux = masklet.io.video_writer.VideoWriter._mux

    def mux_until_full(writer: Any, packets: Any) -> None:
        calls["mux"] += 1
        if calls["mux"] > 2:
            raise av.error.OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(writer.path))
        real_mux(writer, packets)

    monkeypatch.setattr(masklet.io.video_writer.VideoWriter, "_mux", mux_until_full)
    out = tmp_path / "out"
    code, err = cheap_run("track", out, "--format", "overlay,davis")
    assert_one_line(code, err, f"cannot write {out / 'clip_overlay.mp4'}: no space left")
    assert not (out / "clip_overlay.mp4").exists() and no_partial_files(out)
    for path in out.glob("*.png"):
        assert read_indexed_png(path)[0].shape == (HEIGHT, WIDTH)


@pytest.mark.parametrize("command", ["segment", "auto"])
def test_disk_full_in_segment_and_auto(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cheap_run: Callable[..., tuple[int, str]],
) -> None:
    out = tmp_path / "out"
    monkeypatch.setattr(Image.Image, "save", disk_fills_up(allowed=0))
    code, err = cheap_run(command, out)
    assert_one_line(code, err, f"cannot write {out}{os.sep}", ".png: no space left on device")
    assert [path for path in out.rglob("*") if path.is_file()] == []


def test_an_output_file_name_taken_by_a_folder(
    tmp_path: Path, cheap_run: Callable[..., tuple[int, str]]
) -> None:
    out = tmp_path / "out"
    (out / "00002.png").mkdir(parents=True)
    code, err = cheap_run("track", out, "--overwrite")
    assert_one_line(code, err, f"cannot write {out / '00002.png'}: it is a folder")
    assert read_indexed_png(out / "00001.png")[0].shape == (HEIGHT, WIDTH)
    assert no_partial_files(out)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB tmpfs (root with mount rights only), nearly filled."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        pytest.skip("mounting a tmpfs needs root")
    command = [mount, "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)]
    if subprocess.run(command, capture_output=True).returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        (folder / "filler").write_bytes(b"\0" * 11 * 4096)  # leaves 5 pages of 4 KiB
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_real_full_disk_in_a_subprocess(
    tiny_disk: Path, tmp_path: Path, random_checkpoint: Path
) -> None:
    video = write_video(tmp_path / "long.mp4", 30)
    out = tiny_disk / "out"
    result = run_subprocess(
        "track",
        video,
        "--prompt",
        "point=25:35",
        "--out",
        out,
        "--format",
        "davis,sav",
        "--checkpoint",
        random_checkpoint,
        *MODEL_ARGS,
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"masklet: error: cannot write {out}/"), line
    assert line.endswith(": no space left on device (disk full)"), line
    pngs = sorted(out.glob("*.png"))
    assert 1 <= len(pngs) < 30 and no_partial_files(out)
    for path in pngs:
        assert read_indexed_png(path)[0].shape == (HEIGHT, WIDTH)


# ---------------------------------------------------------------- errors reaching main()


FILE_ERRORS = [
    (PermissionError(errno.EACCES, "Permission denied", "/data/a.png"), "/data/a.png: permission"),
    (OSError("cannot identify image file 'a.png'"), "cannot identify image file 'a.png'"),
    (av.error.InvalidDataError(-1, "Invalid data", "clip.mp4"), "clip.mp4: Invalid data"),
    (Image.DecompressionBombError("Image size exceeds limit"), "Image size exceeds limit"),
]


@pytest.mark.parametrize(("error", "message"), FILE_ERRORS)
def test_file_errors_reaching_main_are_one_line(
    error: BaseException,
    message: str,
    tmp_path: Path,
    corpus: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fail(path: Path) -> np.ndarray:
        raise error

    monkeypatch.setattr(masklet.cli.segment, "load_rgb_image", fail)
    args = ["segment", corpus / "photo.png", "--point", "5,5", "--out", tmp_path / "o"]
    assert_one_line(*run_main(capsys, *args), message)
    with pytest.raises(type(error)):
        masklet.cli.main(["--debug", *map(str, args)])


def test_programming_errors_keep_their_traceback(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(path: Path) -> np.ndarray:
        raise ValueError("a bug, not a bad file")

    monkeypatch.setattr(masklet.cli.segment, "load_rgb_image", fail)
    with pytest.raises(ValueError, match="a bug"):
        masklet.cli.main(["segment", str(corpus / "photo.png"), "--point", "5,5", "--out", "o"])
