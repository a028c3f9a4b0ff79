"""A corpus of awkward and broken video files, through `open_frame_source` and `masklet track`.

Every file either works (the CLI exits 0 and writes valid masks at the video's displayed size)
or fails cleanly: `InputError` naming the file and the problem, and the CLI exits 2 with one
line `masklet: error: ...` (never a traceback, nothing written).

Decisions recorded here:
- a truncated file that FFmpeg can still index (faststart mp4 cut mid-frame, cut mkv) gives
  the complete frames before the cut; when the cut is detectable (a partial last frame) the
  CLI prints one `masklet: warning: ... is truncated ...` line and exits 0;
- a truncated mp4 whose index (moov atom, written last) is missing cannot be read: exit 2;
- odd frame sizes (97x61) are read and masks written at that exact size (the overlay video is
  padded to even, as H.264 4:2:0 needs);
- a phone video with rotation metadata is tracked upright: masks match the displayed frames.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

import masklet.cli
from masklet.errors import InputError
from masklet.io import probe_video, read_indexed_png, read_sav_json, write_indexed_png
from masklet.io.sources import open_frame_source
from masklet.io.video_file import VideoFileSource
from video_samples import encode, encode_into, has_encoder, remux, textured_frames

pytestmark = pytest.mark.usefixtures("one_thread")

HEIGHT, WIDTH, NUM_FRAMES = 48, 64, 6
MODEL_ARGS = ("--image-size", "64", "--dtype", "float32", "--device", "cpu")
PROMPT = ("--prompt", "frame=0,obj=1,point=5:5")
ONLY_AUDIO = "no video stream: it holds only audio"


@dataclass(frozen=True)
class Case:
    """A corpus file and what it must give: `frames` (works: that many frames of
    `height` x `width`) or `error` (a phrase of the one-line error)."""

    make: Callable[[Path], None]
    frames: int = 0
    height: int = HEIGHT
    width: int = WIDTH
    error: str | None = None
    warning: str | None = None


def _h264(path: Path, count: int = NUM_FRAMES, **options: str) -> None:
    frames = textured_frames(count, HEIGHT, WIDTH)
    encode(path, "libx264", frames, options={"bf": "2", "g": "4"}, container_options=options)


def _cut(path: Path, make: Callable[[Path], None], keep: float) -> None:
    """`make` a whole file beside `path`, then keep only its first `keep` share of bytes."""
    whole = path.with_name("whole_" + path.name)
    make(whole)
    data = whole.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _truncated_faststart(path: Path) -> None:
    _cut(path, lambda whole: _h264(whole, 12, movflags="faststart"), keep=0.6)


def _truncated_mkv(path: Path) -> None:
    def whole_mkv(whole: Path) -> None:
        mp4 = whole.with_suffix(".mp4")
        _h264(mp4, 12)
        remux(mp4, whole)

    _cut(path, whole_mkv, keep=0.6)


def _audio(codec: str, sample_format: str, rate: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with av.open(str(path), "w") as container:
            stream = container.add_stream(codec, rate=rate)
            samples = stream.codec_context.frame_size or 1024
            tone = (np.sin(np.arange(samples) / 5.0)[None] * 0.3).astype(np.float32)
            values = tone if sample_format == "fltp" else (tone * 32767).astype(np.int16)
            frames = []
            for index in range(4):
                frame = av.AudioFrame.from_ndarray(values, format=sample_format, layout="mono")
                frame.sample_rate, frame.pts = rate, index * samples
                frames.append(frame)
            encode_into(container, stream, frames)

    return make


def _header_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        container.start_encoding()


def _odd_h264(path: Path) -> None:
    encode(path, "libx264", textured_frames(4, 61, 97), pix_fmt="yuv444p")


def _odd_vp9(path: Path) -> None:
    if not has_encoder("libvpx-vp9"):
        pytest.skip("PyAV's FFmpeg has no libvpx-vp9 encoder")
    encode(path, "libvpx-vp9", textured_frames(4, 61, 97), options={"deadline": "realtime"})


def _rotated(path: Path) -> None:
    encode(path, "libx264", textured_frames(4, HEIGHT, WIDTH), rotation=90)


def _write_bytes(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


RANDOM_BYTES = np.random.default_rng(5).integers(0, 256, 6000, dtype=np.uint8).tobytes()

CASES: dict[str, Case] = {
    "truncated.mp4": Case(
        lambda path: _cut(path, lambda whole: _h264(whole, 12), keep=0.6),
        error="without its index (moov atom)",
    ),
    "truncated_faststart.mp4": Case(_truncated_faststart, frames=-1, warning="is truncated"),
    "truncated.mkv": Case(_truncated_mkv, frames=-1),
    "empty.mp4": Case(_write_bytes(b""), error="is empty (0 bytes)"),
    "random_bytes.mp4": Case(_write_bytes(RANDOM_BYTES), error="does not recognise it as a video"),
    "text.mp4": Case(_write_bytes(b"not a video\n" * 30), error="it is a text file"),
    "audio_aac.m4a": Case(_audio("aac", "fltp", 16000), error=ONLY_AUDIO),
    "audio_mp3.mp4": Case(_audio("mp3", "fltp", 16000), error=ONLY_AUDIO),
    "audio_pcm.wav": Case(_audio("pcm_s16le", "s16", 8000), error=ONLY_AUDIO),
    "header_only.mp4": Case(_header_only, error="no video stream: it holds zero frames"),
    "one_frame.mp4": Case(lambda path: _h264(path, 1), frames=1),
    "odd_97x61.mp4": Case(_odd_h264, frames=4, height=61, width=97),
    "odd_97x61_vp9.webm": Case(_odd_vp9, frames=4, height=61, width=97),
    "rotated90_phone.mp4": Case(_rotated, frames=4, height=WIDTH, width=HEIGHT),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


def corpus_file(corpus: Path, name: str) -> Path:
    path = corpus / name
    if not path.exists():
        CASES[name].make(path)
    return path


@pytest.mark.parametrize("name", list(CASES))
def test_open_frame_source(corpus: Path, name: str) -> None:
    case = CASES[name]
    path = corpus_file(corpus, name)
    if case.error is not None:
        with pytest.raises(InputError) as raised:
            open_frame_source(path)
        message = str(raised.value)
        assert case.error in message and str(path) in message and "\n" not in message
        return
    with open_frame_source(path) as source:
        frames = list(source.iter_frames())
        assert (source.height, source.width) == (case.height, case.width)
        assert len(frames) == source.num_frames >= max(1, case.frames)
        assert all(frame.shape == (case.height, case.width, 3) for _, frame in frames)
        assert np.array_equal(source.get(source.num_frames - 1), frames[-1][1])


def run_track(path: Path, out: Path, checkpoint: Path, *extra: str) -> int:
    args = ["track", str(path), *PROMPT, "--out", str(out), "--checkpoint", str(checkpoint)]
    return masklet.cli.main([*args, "--format", "davis,sav,overlay", *MODEL_ARGS, *extra])


@pytest.mark.parametrize("name", list(CASES))
def test_track_cli(
    corpus: Path, name: str, random_checkpoint: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    case = CASES[name]
    path = corpus_file(corpus, name)
    out = corpus / f"out_{name}"
    code = run_track(path, out, random_checkpoint)
    stdout, stderr = capfd.readouterr()
    lines = stderr.strip().splitlines()
    if case.error is not None:
        assert code == 2, stderr
        assert len(lines) == 1 and lines[0].startswith("masklet: error: "), stderr
        assert case.error in lines[0] and str(path) in lines[0], lines[0]
        assert not out.exists()
        return
    assert code == 0, stderr
    if case.warning is None:
        assert lines == [], stderr
    else:
        assert len(lines) == 1 and lines[0].startswith("masklet: warning: "), stderr
        assert case.warning in lines[0] and str(path) in lines[0]
    with open_frame_source(path) as source:
        count = source.num_frames
    assert count >= max(1, case.frames) and f"over {count} frames" in stdout
    assert_valid_outputs(out, path.stem, count, case.height, case.width)


def assert_valid_outputs(
    out: Path, stem: str, count: int, height: int, width: int, video_frames: int | None = None
) -> None:
    """DAVIS PNGs for frames 0..count-1 at the video's size, an SA-V JSON of a video of
    `video_frames` (default `count`) frames, and an overlay video of `count` frames (padded to
    even sizes)."""
    pngs = sorted(out.glob("*.png"))
    assert [png.name for png in pngs] == [f"{index:05d}.png" for index in range(count)]
    for png in pngs:
        labels, _ = read_indexed_png(png)
        assert labels.shape == (height, width)
    annotation = json.loads((out / f"{stem}_auto.json").read_text())
    assert annotation["video_frame_count"] == (video_frames or count)
    sav = read_sav_json(out / f"{stem}_auto.json", frame_stride=1)
    assert sav.num_annotated_frames == count
    assert (annotation["video_height"], annotation["video_width"]) == (height, width)
    info = probe_video(out / f"{stem}_overlay.mp4")
    assert info.frames == count
    assert (info.height, info.width) == (height + height % 2, width + width % 2)


def test_rotated_video_masks_match_displayed_frames(
    corpus: Path, random_checkpoint: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A mask prompt drawn on the displayed (upright) frame comes back in the same place, and
    a click that lies inside the displayed frame only (y > stored height) is accepted."""
    path = corpus_file(corpus, "rotated90_phone.mp4")
    height, width = WIDTH, HEIGHT  # displayed size of the 64x48 file turned 90 degrees
    labels = np.zeros((height, width), dtype=np.uint8)
    labels[4 : height // 2, 4 : width // 2] = 1  # the top-left of the upright picture
    write_indexed_png(corpus / "upright_prompt.png", labels)
    out = corpus / "out_rotated_mask"
    mask_prompt = f"frame=0,obj=1,mask={corpus / 'upright_prompt.png'}"
    args = ["track", str(path), "--prompt", mask_prompt]
    args += ["--prompt", f"frame=0,obj=2,point=40:{height - 4}", "--out", str(out)]
    args += ["--checkpoint", str(random_checkpoint), *MODEL_ARGS]
    assert masklet.cli.main(args) == 0, capfd.readouterr().err
    written, _ = read_indexed_png(out / "00000.png")
    assert written.shape == (height, width)
    prompted = labels == 1
    overlap = (written == 1) & prompted
    assert overlap.sum() / ((written == 1) | prompted).sum() > 0.6


def test_frame_that_fails_to_decode_mid_run_keeps_what_was_written(
    corpus: Path,
    random_checkpoint: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Corrupt data that only shows when frame 3 is decoded: exit 2 with one line naming the
    frame and the file; frames 0..2 are on disk and the JSON and overlay files are valid."""
    path = corpus / "corrupt_at_frame3.mp4"
    _h264(path, NUM_FRAMES)
    original = VideoFileSource._decode_span

    def failing(source: VideoFileSource, first: int, last: int) -> Iterator[Any]:
        for index, frame in original(source, first, last):
            if index == 3:
                raise InputError(source._undecodable(index, ended=False))
            yield index, frame

    monkeypatch.setattr(VideoFileSource, "_decode_span", failing)
    out = corpus / "out_corrupt_at_frame3"
    assert run_track(path, out, random_checkpoint) == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("masklet: error: could not decode frame 3")
    assert str(path) in lines[0]
    assert_valid_outputs(out, path.stem, 3, HEIGHT, WIDTH, video_frames=NUM_FRAMES)
