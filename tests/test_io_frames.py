"""Frame sources: frame-accurate seeking, reverse iteration, bounded caches, folders, arrays,
live iterators, dispatch and the errors users see."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from masklet.errors import InputError
from masklet.io import (
    ArraySource,
    CameraSource,
    ImageFolderSource,
    IteratorSource,
    VideoFileSource,
    frame_cache,
    open_frame_source,
    probe_video,
    read_frames,
)

NUM_FRAMES, HEIGHT, WIDTH, FPS, GOP = 40, 48, 64, 24, 10


def indexed_frame(index: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A frame whose flat colour blocks encode `index` (robust to lossy compression)."""
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    frame[:, : width // 2, 0] = 16 + 32 * (index % 8)  # left half: red = low digit (base 8)
    frame[:, width // 2 :, 1] = 16 + 32 * (index // 8)  # right half: green = high digit
    frame[: height // 2, :, 2] = 128
    return frame


def index_of(frame: np.ndarray) -> int:
    """Recover the index (0..63) that `indexed_frame` encoded."""
    half = frame.shape[1] // 2
    red = float(frame[4:-4, 4 : half - 4, 0].mean())
    green = float(frame[4:-4, half + 4 : -4, 1].mean())
    return round((red - 16) / 32) + 8 * round((green - 16) / 32)


def encode_video(path: Path, codec: str, num_frames: int = NUM_FRAMES) -> Path:
    options = {"keyint_min": str(GOP), "sc_threshold": "0"} if codec == "libx264" else {}
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = GOP
        stream.options = options
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(indexed_frame(index), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def sequential_decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


Clip = tuple[Path, list[np.ndarray]]  # a video file and its frames from a plain decode
# suffix -> encoder; "h264" is a raw elementary stream: no timestamps, no container index
VIDEO_KINDS = {
    "mp4": "libx264",
    "mkv": "libx264",
    "webm": "libvpx-vp9",
    "avi": "mpeg4",
    "h264": "libx264",
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Clip]:
    folder = tmp_path_factory.mktemp("videos")
    made = {}
    for suffix, codec in VIDEO_KINDS.items():
        path = encode_video(folder / f"clip.{suffix}", codec)
        made[suffix] = (path, sequential_decode(path))
    return made


@pytest.fixture()
def mp4(videos: dict[str, Clip]) -> Clip:
    return videos["mp4"]


# -- video files --------------------------------------------------------------------------------


def test_reference_decode_encodes_each_index(mp4: Clip) -> None:
    _, reference = mp4
    assert len(reference) == NUM_FRAMES
    assert [index_of(frame) for frame in reference] == list(range(NUM_FRAMES))


@pytest.mark.parametrize("suffix", sorted(VIDEO_KINDS))
def test_random_access_is_frame_accurate(videos: dict[str, Clip], suffix: str) -> None:
    path, reference = videos[suffix]
    order = list(range(NUM_FRAMES)) + list(range(NUM_FRAMES - 1, -1, -1))
    order += random.Random(0).choices(range(NUM_FRAMES), k=60)
    with VideoFileSource(path) as source:
        assert (len(source), source.height, source.width) == (NUM_FRAMES, HEIGHT, WIDTH)
        if suffix != "h264":  # a raw stream stores no frame rate (FFmpeg guesses 25)
            assert source.fps == pytest.approx(FPS)
        for index in order:
            frame = source.get(index)
            assert frame.shape == (HEIGHT, WIDTH, 3) and frame.dtype == np.uint8
            np.testing.assert_array_equal(frame, reference[index], err_msg=f"frame {index}")
            assert index_of(frame) == index


def test_iteration_matches_sequential_decode(mp4: Clip) -> None:
    path, reference = mp4
    with VideoFileSource(path) as source:
        frames = list(source)
    assert len(frames) == NUM_FRAMES
    for frame, expected in zip(frames, reference, strict=True):
        np.testing.assert_array_equal(frame, expected)


@pytest.mark.parametrize(("start", "stop"), [(0, None), (3, 37), (11, 12), (25, 40)])
def test_reverse_iteration(mp4: Clip, start: int, stop: int | None) -> None:
    path, reference = mp4
    end = NUM_FRAMES if stop is None else stop
    with VideoFileSource(path, reverse_chunk=6) as source:
        pairs = list(source.iter_frames(start, stop, reverse=True))
    assert [index for index, _ in pairs] == list(range(end - 1, start - 1, -1))
    for index, frame in pairs:
        np.testing.assert_array_equal(frame, reference[index])


def count_decoded(source: VideoFileSource) -> list[int]:
    """Wrap the source's decoder step to record every decoded frame index."""
    decoded: list[int] = []
    original = source._next_decoded

    def counting() -> tuple[int, np.ndarray] | None:
        produced = original()
        if produced is not None:
            decoded.append(produced[0])
        return produced

    source._next_decoded = counting  # type: ignore[method-assign]
    return decoded


def test_reverse_iteration_decodes_each_frame_about_once(mp4: Clip) -> None:
    with VideoFileSource(mp4[0], cache_size=0, reverse_chunk=16) as source:
        decoded = count_decoded(source)
        indices = [index for index, _ in source.iter_frames(reverse=True)]
    assert indices == list(range(NUM_FRAMES - 1, -1, -1))
    assert len(decoded) <= 2 * NUM_FRAMES


def test_untimed_stream_counts_frames(videos: dict[str, Clip]) -> None:
    path, reference = videos["h264"]
    with VideoFileSource(path) as source:
        assert source._counting  # no pts: frame i is the i-th decoded frame
        assert len(source) == NUM_FRAMES
        pairs = list(source.iter_frames(5, 30, reverse=True))
    assert [index for index, _ in pairs] == list(range(29, 4, -1))
    for index, frame in pairs:
        np.testing.assert_array_equal(frame, reference[index])


def test_switches_to_counting_when_timestamps_go_backwards(mp4: Clip) -> None:
    """Some files (AVI with packed B-frames) carry pts out of display order; the source notices
    mid-decode, drops what it cached and counts frames from the start instead."""
    from masklet.io import video_file

    path, reference = mp4
    with VideoFileSource(path) as source:
        assert not source._counting
        calls = []
        original = source._index_from_stamp

        def disordered(frame: av.VideoFrame) -> int | None:
            calls.append(frame.pts)
            if len(calls) == 4:
                raise video_file._TimestampsOutOfOrderError
            return original(frame)

        source._index_from_stamp = disordered  # type: ignore[method-assign]
        for index in (6, 2, 30, 29):
            np.testing.assert_array_equal(source.get(index), reference[index])
        assert source._counting


def test_sequential_get_continues_without_seeking(mp4: Clip) -> None:
    with VideoFileSource(mp4[0], cache_size=0) as source:
        seeks: list[int] = []
        original_seek = source._seek
        source._seek = lambda index: (seeks.append(index), original_seek(index))[1]  # type: ignore[method-assign]
        decoded = count_decoded(source)
        for index in range(NUM_FRAMES):
            assert index_of(source.get(index)) == index
    assert seeks == [0]
    assert decoded == list(range(NUM_FRAMES))


def test_cache_never_exceeds_its_size(mp4: Clip) -> None:
    rng = random.Random(1)
    with VideoFileSource(mp4[0], cache_size=3) as source:
        for _ in range(80):
            source.get(rng.randrange(NUM_FRAMES))
            assert len(source.cache) <= 3
        assert len(source.cache) == 3


def test_returned_frames_do_not_alias_the_cache(mp4: Clip) -> None:
    path, reference = mp4
    with VideoFileSource(path) as source:
        source.get(5)[:] = 0
        np.testing.assert_array_equal(source.get(5), reference[5])


def test_interleaved_get_during_iteration(mp4: Clip) -> None:
    path, reference = mp4
    with VideoFileSource(path, cache_size=0) as source:
        for index, frame in source.iter_frames():
            np.testing.assert_array_equal(frame, reference[index])
            back = max(0, index - 7)
            np.testing.assert_array_equal(source.get(back), reference[back])


def test_frame_cache_is_lru() -> None:
    cache = frame_cache(2)
    frames = [np.full((1, 1, 3), i, np.uint8) for i in range(3)]
    cache.put(0, frames[0])
    cache.put(1, frames[1])
    assert cache.get(0) is frames[0]  # 0 becomes most recent, so 1 is evicted next
    cache.put(2, frames[2])
    assert cache.keys() == [0, 2]
    assert cache.get(1) is None


def test_probe_video(videos: dict[str, Clip]) -> None:
    for suffix, expected_codec in [("mp4", "h264"), ("webm", "vp9"), ("mkv", "h264")]:
        info = probe_video(videos[suffix][0])
        assert (info.frames, info.width, info.height, info.codec) == (
            NUM_FRAMES,
            WIDTH,
            HEIGHT,
            expected_codec,
        )
        assert info.fps == pytest.approx(FPS)
        assert info.duration == pytest.approx(NUM_FRAMES / FPS, abs=0.05)


def test_read_frames_with_step(mp4: Clip) -> None:
    frames = list(read_frames(mp4[0], start=5, stop=20, step=3))
    assert [index_of(frame) for frame in frames] == [5, 8, 11, 14, 17]
    assert [index_of(f) for f in read_frames([indexed_frame(i) for i in range(4)], 1)] == [1, 2, 3]


def test_missing_video_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"not found.*nope\.mp4"):
        VideoFileSource(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="not found"):
        open_frame_source(str(tmp_path / "nope.mp4"))


def test_corrupt_video_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match=r"corrupt\.mp4"):
        VideoFileSource(path)


@pytest.mark.parametrize("suffix", ["mp4", "mkv"])
def test_zero_frame_video(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty.{suffix}"
    with av.open(str(path), "w") as container:  # header and trailer, no frame
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        container.start_encoding()
    assert path.stat().st_size > 0
    with pytest.raises(InputError, match=rf"empty\.{suffix}.*(zero .*frames|empty)"):
        VideoFileSource(path)


def test_out_of_range_index_names_valid_range(mp4: Clip) -> None:
    with VideoFileSource(mp4[0]) as source:
        with pytest.raises(InputError, match=r"0\.\.39"):
            source.get(40)
        with pytest.raises(InputError, match="out of range"):
            source.get(-1)
        assert index_of(source[-1]) == NUM_FRAMES - 1
        with pytest.raises(InputError, match="integer"):
            source.get(1.5)  # type: ignore[arg-type]


def test_closed_source_raises(mp4: Clip) -> None:
    with VideoFileSource(mp4[0], cache_size=0) as source:
        source.get(3)
    with pytest.raises(InputError, match="closed"):
        source.get(4)


# -- image folders ------------------------------------------------------------------------------


def write_frames(folder: Path, names: dict[str, int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, index in names.items():
        Image.fromarray(indexed_frame(index)).save(folder / name)


def test_folder_sorted_by_number(tmp_path: Path) -> None:
    write_frames(tmp_path, {"10.png": 10, "2.png": 2, "1.png": 1, "00003.png": 3})
    (tmp_path / "notes.txt").write_text("not a frame")
    source = ImageFolderSource(tmp_path)
    assert [path.name for path in source.files] == ["1.png", "2.png", "00003.png", "10.png"]
    assert [index_of(frame) for frame in source] == [1, 2, 3, 10]
    np.testing.assert_array_equal(source.get(3), indexed_frame(10))  # PNG is lossless
    assert (source.height, source.width, len(source)) == (HEIGHT, WIDTH, 4)


def test_folder_prefixed_names_and_jpeg(tmp_path: Path) -> None:
    write_frames(tmp_path, {"frame_12.jpg": 12, "frame_2.jpg": 2, "frame_7.JPEG": 7})
    source = open_frame_source(tmp_path)
    assert isinstance(source, ImageFolderSource)
    assert [index_of(frame) for frame in source] == [2, 7, 12]


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no \.jpg"):
        ImageFolderSource(tmp_path)
    with pytest.raises(InputError, match="not found"):
        ImageFolderSource(tmp_path / "missing")
    write_frames(tmp_path, {"0.png": 0})
    Image.fromarray(indexed_frame(1, height=10, width=12)).save(tmp_path / "1.png")
    source = ImageFolderSource(tmp_path)
    with pytest.raises(InputError, match="same size"):
        source.get(1)
    with pytest.raises(InputError, match=r"0\.\.1"):
        source.get(2)


# -- arrays and iterators -----------------------------------------------------------------------


def test_array_source_from_list_and_4d_array() -> None:
    frames = [indexed_frame(i) for i in range(5)]
    assert [index_of(f) for f in ArraySource(frames)] == list(range(5))
    stacked = np.stack(frames)
    source = open_frame_source(stacked)
    assert isinstance(source, ArraySource) and len(source) == 5
    assert index_of(source.get(4)) == 4
    assert [i for i, _ in source.iter_frames(1, 4, reverse=True)] == [3, 2, 1]


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([np.zeros((4, 4, 3), np.float32)], "uint8"),
        ([np.zeros((4, 4), np.uint8)], r"\(H, W, 3\)"),
        ([np.zeros((4, 4, 4), np.uint8)], r"\(H, W, 3\)"),
        ([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)], "same size"),
        ([], "empty"),
        (["frame.jpg"], "numpy array"),
    ],
)
def test_array_source_rejects_bad_frames(frames: list[object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        ArraySource(frames)


def frame_stream(count: int) -> Iterator[np.ndarray]:
    for index in range(count):
        yield indexed_frame(index)


def test_iterator_source_is_live_and_bounded() -> None:
    source = IteratorSource(frame_stream(20), history=4)
    assert source.num_frames is None and source.is_live
    with pytest.raises(TypeError, match="live"):
        len(source)
    assert (source.height, source.width) == (HEIGHT, WIDTH)
    assert index_of(source.get(6)) == 6  # pulls frames 0..6 forward
    assert source.buffered_indices == range(3, 7)
    assert index_of(source.get(3)) == 3
    with pytest.raises(InputError, match="no longer available"):
        source.get(2)
    rest = [index for index, _ in source.iter_frames(5)]
    assert rest == list(range(5, 20))
    with pytest.raises(InputError, match="ended after 20 frames"):
        source.get(25)


def test_iterator_source_list_and_bad_frame() -> None:
    assert [index_of(frame) for frame in IteratorSource(frame_stream(7))] == list(range(7))
    stream = iter([indexed_frame(0), np.zeros((HEIGHT, WIDTH, 3), np.int32)])
    source = IteratorSource(stream)
    source.get(0)
    with pytest.raises(InputError, match="frame 1 must have dtype uint8"):
        source.get(1)
    with pytest.raises(InputError, match="empty"):
        _ = IteratorSource(iter([])).height


# -- dispatch and cameras -----------------------------------------------------------------------


def test_open_frame_source_dispatch(tmp_path: Path, mp4: Clip) -> None:
    assert isinstance(open_frame_source(str(mp4[0])), VideoFileSource)
    assert isinstance(open_frame_source(mp4[0]), VideoFileSource)
    assert isinstance(open_frame_source(frame_stream(3)), IteratorSource)
    listed = open_frame_source([Image.fromarray(indexed_frame(2))])
    assert isinstance(listed, ArraySource) and index_of(listed.get(0)) == 2
    Image.fromarray(indexed_frame(9)).save(tmp_path / "still.png")
    still = open_frame_source(tmp_path / "still.png")
    assert len(still) == 1 and index_of(still.get(0)) == 9
    array_source = ArraySource([indexed_frame(0)])
    assert open_frame_source(array_source) is array_source
    with pytest.raises(InputError, match="cannot read frames from a int"):
        open_frame_source(42)


def test_missing_camera_names_the_device() -> None:
    with pytest.raises(InputError, match="/dev/video-masklet-missing"):
        CameraSource("/dev/video-masklet-missing")
    with pytest.raises(InputError, match="/dev/video97"):
        open_frame_source("/dev/video97")
