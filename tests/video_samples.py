"""Small generated video files for the video-reading tests (test_io_video_seek.py,
test_video_corpus.py) and benchmarks/seek_accuracy.py: textured frames, an encoder helper over
PyAV and a plain sequential decoder to compare against."""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from masklet.io.video_orientation import frame_orientation


def textured_frames(
    count: int, height: int, width: int, seed: int = 0, cut_every: int = 20
) -> list[np.ndarray]:
    """`count` (H, W, 3) uint8 frames: a smooth noise texture scrolling diagonally, a bright
    square moving right over it, and a scene cut (inverted colours) every `cut_every` frames."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (2 * height + count, 2 * width + count, 3), dtype=np.uint8)
    texture = ((texture.astype(np.uint16) + np.roll(texture, 1, axis=1)) // 2).astype(np.uint8)
    frames = []
    for index in range(count):
        frame = texture[index : index + height, index : index + width].copy()
        if (index // cut_every) % 2 == 1:
            frame = 255 - frame
        x = (3 * index) % max(1, width - 8)
        frame[height // 4 : height // 4 + 8, x : x + 8] = (250, 30, 30)
        frames.append(frame)
    return frames


def has_encoder(name: str) -> bool:
    return name in av.codecs_available


def encode(
    path: Path,
    codec: str,
    frames: Iterable[np.ndarray],
    *,
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    stamps: Callable[[int], int] | None = None,
    rate: int = 10,
    time_base: Fraction | None = None,
    rotation: float | None = None,
    hflip: bool = False,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB frames into `path` with PyAV at `rate` frames per second. `stamps(i)` is
    frame i's pts in `time_base` units (default 1 / `rate`; default stamps i: constant rate);
    `rotation` (counter-clockwise degrees, then `hflip`) writes a display matrix as phones do."""
    time_base = time_base if time_base is not None else Fraction(1, rate)
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=rate, options=options or {})

        def video_frames() -> Iterator[av.VideoFrame]:
            for index, rgb in enumerate(frames):
                if index == 0:
                    stream.height, stream.width = rgb.shape[:2]
                    stream.pix_fmt = pix_fmt
                    stream.codec_context.time_base = time_base
                    if rotation is not None:
                        stream.set_display_rotation(rotation, hflip=hflip)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = stamps(index) if stamps is not None else index
                frame.time_base = time_base
                yield frame

        encode_into(container, stream, video_frames())
    return path


def encode_into(container: Any, stream: Any, frames: Iterable[Any]) -> None:
    """Encode `frames` (PyAV video or audio frames) with `stream`, mux every packet into
    `container`, then flush the encoder."""
    for frame in frames:
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def remux(source: Path, target: Path, shift_frames: int = 0) -> Path:
    """Copy the video packets of `source` into `target` (another container) without decoding.
    `shift_frames > 0` moves timestamps back so the first `shift_frames` frames fall before
    zero: in mp4 that writes an edit list, as trimming a phone video does."""
    with av.open(str(source)) as reader, av.open(str(target), "w") as writer:
        in_stream = reader.streams.video[0]
        out_stream = writer.add_stream_from_template(in_stream)
        packets = [packet for packet in reader.demux(in_stream) if packet.size]
        offset = sorted(int(packet.pts) for packet in packets)[shift_frames] if shift_frames else 0
        for packet in packets:
            packet.pts -= offset
            packet.dts -= offset
            packet.stream = out_stream
            writer.mux(packet)
    return target


def sequential_frames(
    path: Path, wanted: Container[int] | None = None
) -> tuple[int, dict[int, np.ndarray]]:
    """A plain sequential PyAV decode of `path` from the start: the number of frames it gives
    and `{k: frame k}` (k-th frame in output order) for every k in `wanted` (default all), with
    the file's rotation metadata applied the same way `VideoFileSource` applies it."""
    kept: dict[int, np.ndarray] = {}
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if wanted is None or count in wanted:
                orientation = frame_orientation(frame, dict(stream.metadata))
                kept[count] = orientation.apply(frame.to_ndarray(format="rgb24"))
            count += 1
    return count, kept


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame of `path` from a plain sequential PyAV decode (`sequential_frames`), in
    output order."""
    return list(sequential_frames(path)[1].values())
