"""`VideoFileSource` random access is frame-accurate, and rotation metadata is applied.

Seek accuracy: on small generated files that stress seeking (H.264 with B-frames in mp4 and
mov, an H.264 open-GOP mkv, variable frame rate, VP9 webm, MPEG-4 with B-frames in AVI, an mp4
trimmed with an edit list), frame k from `get(k)` in random order (forward and backward jumps,
cache disabled) equals frame k of a plain sequential PyAV decode, exactly.
Rotation: files with a 90/180/270 degree display matrix (as phones write) decode upright:
sizes are the displayed ones and every frame equals the unrotated file's frame, rotated.
`benchmarks/seek_accuracy.py` runs the same seek check on real sample videos.
"""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from masklet.io import probe_video
from masklet.io.video_file import VideoFileSource
from masklet.io.video_orientation import (
    Orientation,
    orientation_from_clockwise_degrees,
    orientation_from_display_matrix,
)
from video_samples import decode_all, encode, has_encoder, remux, textured_frames

HEIGHT, WIDTH, NUM_FRAMES = 48, 64, 45
BFRAMES = {"bf": "3", "g": "12", "x264-params": "b-pyramid=normal"}
OPEN_GOP = {"bf": "3", "g": "16", "x264-params": "open-gop=1:keyint=16:min-keyint=4"}
VP9 = {"g": "10", "auto-alt-ref": "1", "lag-in-frames": "8", "deadline": "realtime"}


def irregular_stamp(index: int) -> int:
    """Milliseconds of frame `index`: gaps of 20..95 ms, a variable frame rate."""
    return sum(20 + (7919 * k) % 76 for k in range(index))


def _write(folder: Path, name: str) -> Path:
    frames = textured_frames(NUM_FRAMES, HEIGHT, WIDTH)
    path = folder / name
    if name == "h264_bframes.mp4":
        return encode(path, "libx264", frames, options=BFRAMES)
    if name == "h264_bframes.mov":
        return encode(path, "libx264", frames, options=BFRAMES)
    if name == "h264_open_gop.mkv":
        return encode(path, "libx264", frames, options=OPEN_GOP)
    if name == "h264_vfr.mp4":
        millisecond = Fraction(1, 1000)
        return encode(
            path, "libx264", frames, options=BFRAMES, stamps=irregular_stamp, time_base=millisecond
        )
    if name == "vp9.webm":
        if not has_encoder("libvpx-vp9"):
            pytest.skip("PyAV's FFmpeg has no libvpx-vp9 encoder")
        return encode(path, "libvpx-vp9", frames, options=VP9)
    if name == "mpeg4_bframes.avi":
        return encode(path, "mpeg4", frames, options={"bf": "2", "g": "10", "qscale": "4"})
    if name == "trimmed_edit_list.mp4":
        return remux(_write(folder, "h264_bframes.mp4"), path, shift_frames=7)
    raise AssertionError(name)


SEEK_FILES = [
    "h264_bframes.mp4",
    "h264_bframes.mov",
    "h264_open_gop.mkv",
    "h264_vfr.mp4",
    "vp9.webm",
    "mpeg4_bframes.avi",
    "trimmed_edit_list.mp4",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("seek")


@pytest.fixture(scope="module", params=SEEK_FILES)
def clip(request: pytest.FixtureRequest, folder: Path) -> tuple[Path, list[np.ndarray]]:
    """(path, every frame from a plain sequential decode)."""
    path = folder / request.param
    if not path.exists():
        _write(folder, request.param)
    return path, decode_all(path)


def test_seek_in_random_order_equals_sequential_decode(clip: tuple[Path, list[np.ndarray]]) -> None:
    path, sequential = clip
    order = list(range(len(sequential)))
    random.Random(0).shuffle(order)
    order += [len(sequential) - 1, 0, len(sequential) // 2, 1]  # the longest jumps too
    with VideoFileSource(path, cache_size=0) as source:
        assert source.num_frames == len(sequential)
        for index in order:
            frame = source.get(index)
            assert np.array_equal(frame, sequential[index]), f"{path.name}: frame {index}"


def test_cached_access_and_reverse_iteration_equal_sequential_decode(
    clip: tuple[Path, list[np.ndarray]],
) -> None:
    path, sequential = clip
    rng = random.Random(1)
    with VideoFileSource(path, cache_size=4, reverse_chunk=5) as source:
        for _ in range(30):
            index = rng.randrange(len(sequential))
            assert np.array_equal(source.get(index), sequential[index]), f"frame {index}"
        backwards = list(source.iter_frames(reverse=True))
        assert [index for index, _ in backwards] == list(range(len(sequential) - 1, -1, -1))
        for index, frame in backwards:
            assert np.array_equal(frame, sequential[index]), f"reverse: frame {index}"


def test_variable_frame_rate_keeps_irregular_timestamps(folder: Path) -> None:
    path = folder / "h264_vfr.mp4"
    if not path.exists():
        _write(folder, "h264_vfr.mp4")
    with VideoFileSource(path) as source:
        gaps = np.diff(source.index.pts) * source.time_base
        assert len(set(gaps)) > 10  # irregular gaps, each frame kept once
        assert source.num_frames == NUM_FRAMES


def test_trimmed_mp4_counts_only_frames_after_the_edit(folder: Path) -> None:
    """Frames before an edit list's start are decoded (they are references) but not shown."""
    path = folder / "trimmed_edit_list.mp4"
    if not path.exists():
        _write(folder, "trimmed_edit_list.mp4")
    original = decode_all(folder / "h264_bframes.mp4")
    with VideoFileSource(path, cache_size=0) as source:
        assert source.num_frames == NUM_FRAMES - 7
        assert np.array_equal(source.get(0), original[7])
        assert np.array_equal(source.get(source.num_frames - 1), original[-1])


# ------------------------------------------------------------------------- rotation


def rotated(frame: np.ndarray, degrees: int) -> np.ndarray:
    """`frame` rotated counter-clockwise by `degrees` (a multiple of 90)."""
    return np.rot90(frame, k=degrees // 90)


LOSSLESS = {"qp": "0"}


@pytest.fixture(scope="module")
def upright(folder: Path) -> tuple[Path, list[np.ndarray], list[np.ndarray]]:
    """(a file without rotation metadata, its decoded frames, the frames that were encoded)."""
    frames = textured_frames(12, HEIGHT, WIDTH, seed=3)
    path = encode(folder / "upright.mp4", "libx264", frames, pix_fmt="yuv444p", options=LOSSLESS)
    return path, decode_all(path), frames


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_file_decodes_upright(
    folder: Path, upright: tuple[Path, list[np.ndarray], list[np.ndarray]], degrees: int
) -> None:
    """Same pixels encoded with a display matrix: the source rotates every frame, sequentially
    and after seeks, and reports the displayed size."""
    _, stored, originals = upright
    path = encode(
        folder / f"rotated{degrees}.mp4",
        "libx264",
        originals,
        pix_fmt="yuv444p",
        options=LOSSLESS,
        rotation=degrees,
    )
    height, width = (WIDTH, HEIGHT) if degrees in (90, 270) else (HEIGHT, WIDTH)
    with VideoFileSource(path, cache_size=0) as source:
        assert (source.height, source.width) == (height, width)
        for index in [5, 0, 11, 3, 7]:  # seeks, forward and backward
            frame = source.get(index)
            assert np.array_equal(frame, rotated(stored[index], degrees)), f"frame {index}"
            codec_error = np.abs(frame.astype(int) - rotated(originals[index], degrees))
            assert codec_error.mean() < 3, "rotated the wrong way"
        for index, frame in source.iter_frames():
            assert np.array_equal(frame, rotated(stored[index], degrees)), f"frame {index}"
    info = probe_video(path)
    assert (info.height, info.width) == (height, width)
    with VideoFileSource(path, autorotate=False) as raw:
        assert (raw.height, raw.width) == (HEIGHT, WIDTH)
        assert np.array_equal(raw.get(4), stored[4])


def test_mirrored_rotation_matches_ffmpeg_convention(
    folder: Path, upright: tuple[Path, list[np.ndarray], list[np.ndarray]]
) -> None:
    """90 degrees counter-clockwise then a horizontal flip (an EXIF 'transverse'-type file)."""
    _, stored, originals = upright
    path = encode(
        folder / "rotated90_mirrored.mp4",
        "libx264",
        originals[:3],
        pix_fmt="yuv444p",
        options=LOSSLESS,
        rotation=90,
        hflip=True,
    )
    with VideoFileSource(path) as source:
        assert np.array_equal(source.get(2), rotated(stored[2], 90)[:, ::-1])


def test_orientation_from_display_matrix_and_rotate_tag() -> None:
    one = 65536
    counter_clockwise_90 = np.array([0, -one, 0, one, 0, 0, 0, 0, 1 << 30], dtype=np.int32)
    assert orientation_from_display_matrix(counter_clockwise_90) == Orientation(True, True, False)
    identity = np.array([one, 0, 0, 0, one, 0, 0, 0, 1 << 30], dtype=np.int32)
    assert orientation_from_display_matrix(identity).is_identity
    frame = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for clockwise in (0, 90, 180, 270, -90):  # the old `rotate` tag counts clockwise
        shown = orientation_from_clockwise_degrees(clockwise).apply(frame)
        assert np.array_equal(shown, np.rot90(frame, k=-clockwise // 90))
