"""Small generated video files for the video-reading tests (test_io_video_seek.py,
test_video_corpus.py): textured frames, an encoder helper over PyAV and a plain sequential
decoder to compare against."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from masklet.io.video_orientation import frame_orientation


def textured_frames(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """`count` (H, W, 3) uint8 frames: a smooth noise texture scrolling diagonally, a bright
    square moving right over it, and a scene cut (inverted colours) every 20 frames."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (2 * height + count, 2 * width + count, 3), dtype=np.uint8)
    texture = ((texture.astype(np.uint16) + np.roll(texture, 1, axis=1)) // 2).astype(np.uint8)
    frames = []
    for index in range(count):
        frame = texture[index : index + height, index : index + width].copy()
        if (index // 20) % 2 == 1:
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
    time_base: Fraction = Fraction(1, 10),
    rotation: float | None = None,
    hflip: bool = False,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB frames into `path` with PyAV. `stamps(i)` is frame i's pts in `time_base`
    units (default i: constant rate); `rotation` (counter-clockwise degrees, then `hflip`)
    writes a display matrix as phones do."""
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=10, options=options or {})
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
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


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


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame of `path` from a plain sequential PyAV decode, in output order, with the
    file's rotation metadata applied the same way `VideoFileSource` applies it."""
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            orientation = frame_orientation(frame, dict(stream.metadata))
            frames.append(orientation.apply(frame.to_ndarray(format="rgb24")))
    return frames
