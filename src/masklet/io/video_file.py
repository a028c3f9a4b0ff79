"""Video files through PyAV (FFmpeg): `VideoFileSource`, `probe_video`, `VideoInfo`.

Any container and codec that the installed FFmpeg reads works (mp4, mov, mkv, webm, avi, ...).
Frames come out as (H, W, 3) uint8 RGB arrays in presentation order; index i is the frame with
the i-th smallest presentation timestamp (pts) of the first video stream.

How random access is frame-accurate: on first need, the file is demuxed once without decoding
(fast: packets are only read, not decoded) into a `PacketIndex` - the sorted pts of every
frame and which of them are keyframes (16 bytes per frame; one hour at 30 fps is ~1.7 MB).
That count is exact even for containers that store no frame count (mkv, webm). `get(i)` then
seeks to the last keyframe at or before frame i and decodes forward to it; a decoder that is
already positioned before frame i, with no keyframe in between, simply continues. Decoded frames
go into a small LRU cache (`cache_size`, default 8), so nearby and backward access is cheap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from masklet.errors import InputError
from masklet.io.frames import FrameCache, FrameSource

_AV_ERRORS: tuple[type[BaseException], ...] = (av.error.FFmpegError, OSError, EOFError)


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` reports about a video file.

    `frames` is exact (counted from the packets); `duration` is in seconds; `codec` is FFmpeg's
    decoder name (e.g. "h264", "vp9", "mpeg4").
    """

    path: str
    frames: int
    fps: float
    width: int
    height: int
    codec: str
    duration: float


@dataclasses.dataclass(frozen=True)
class PacketIndex:
    """Sorted presentation timestamps of every frame of a stream and the keyframe flags.

    pts: shape (N,), int64, strictly increasing, in units of the stream's time base.
    is_keyframe: shape (N,), bool; `is_keyframe[0]` is forced True (decoding starts there).
    """

    pts: np.ndarray
    is_keyframe: np.ndarray

    def index_of(self, pts: int) -> int | None:
        """Frame index whose pts equals `pts`, or None."""
        position = int(np.searchsorted(self.pts, pts))
        if position < len(self.pts) and int(self.pts[position]) == pts:
            return position
        return None

    def keyframe_at_or_before(self, index: int) -> int:
        """Index of the last keyframe at or before frame `index`."""
        keyframes = np.flatnonzero(self.is_keyframe[: index + 1])
        return int(keyframes[-1]) if len(keyframes) else 0


def _open_container(path: Path) -> Any:
    """Open `path` with PyAV and return (container, first video stream); InputError if not."""
    try:
        container = av.open(str(path))
    except av.error.EOFError as error:
        raise InputError(
            f"video file {path} is empty or truncated: it ends before any frame"
        ) from error
    except _AV_ERRORS as error:
        raise InputError(f"cannot read video file {path}: {error}") from error
    if not container.streams.video:
        container.close()
        raise InputError(f"video file {path} has no video stream: it holds zero video frames")
    return container


def _stream_fps(stream: Any) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def build_packet_index(path: Path) -> PacketIndex:
    """Demux (without decoding) the first video stream of `path` and index its frames."""
    container = _open_container(path)
    stamps: list[int] = []
    keyframes: list[bool] = []
    try:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            stamp = packet.pts if packet.pts is not None else packet.dts
            if packet.size == 0 or stamp is None:
                continue  # the flush packet at the end, or a packet without any timestamp
            stamps.append(int(stamp))
            keyframes.append(bool(packet.is_keyframe))
    except _AV_ERRORS as error:
        raise InputError(f"cannot read video file {path}: {error}") from error
    finally:
        container.close()
    if not stamps:
        raise InputError(f"video file {path} has zero frames")
    order = np.argsort(np.asarray(stamps, dtype=np.int64), kind="stable")
    pts = np.asarray(stamps, dtype=np.int64)[order]
    unique = np.concatenate([[True], np.diff(pts) > 0])
    is_keyframe = np.asarray(keyframes, dtype=bool)[order][unique]
    is_keyframe[0] = True
    return PacketIndex(pts=pts[unique], is_keyframe=is_keyframe)


class VideoFileSource(FrameSource):
    """Frames of a video file, decoded lazily with frame-accurate random access.

    Args:
        path: any file FFmpeg can read.
        cache_size: how many decoded frames the LRU cache keeps (0 disables it).
        reverse_chunk: most frames held at once by `iter_frames(..., reverse=True)`, which
            decodes a chunk forward and yields it backwards.
    Memory is bounded by `cache_size + reverse_chunk` frames plus the packet index.
    """

    def __init__(self, path: str | Path, *, cache_size: int = 8, reverse_chunk: int = 16) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"video file not found: {self.path}")
        if self.path.is_dir():
            raise InputError(f"{self.path} is a folder, not a video file")
        if reverse_chunk < 1:
            raise InputError(f"reverse_chunk must be >= 1, got {reverse_chunk}")
        self.cache = FrameCache(cache_size)
        self.reverse_chunk = reverse_chunk
        self._container: Any = _open_container(self.path)
        self._stream: Any = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._index: PacketIndex | None = None
        self._decoder: Iterator[Any] | None = None
        self._next_index = 0  # frame index the open decoder produces next
        self._decoder_owner: object | None = None  # the span that last moved the decoder
        self._first_frame = self._decode_first_frame()

    # -- FrameSource -------------------------------------------------------------------------

    @property
    def num_frames(self) -> int:
        return len(self.index.pts)

    @property
    def height(self) -> int:
        return int(self._first_frame.shape[0])

    @property
    def width(self) -> int:
        return int(self._first_frame.shape[1])

    @property
    def fps(self) -> float:
        return _stream_fps(self._stream)

    @property
    def codec(self) -> str:
        return str(self._stream.codec_context.name)

    @property
    def time_base(self) -> Fraction:
        return Fraction(self._stream.time_base)

    @property
    def index(self) -> PacketIndex:
        """The packet index, built on first use (one demux pass over the file)."""
        if self._index is None:
            self._index = build_packet_index(self.path)
        return self._index

    def get(self, index: int) -> np.ndarray:
        index = self._check_index(index)
        cached = self.cache.get(index)
        if cached is not None:
            return cached.copy()
        for frame_index, frame in self._decode_span(index, index):
            if frame_index == index:
                return frame.copy()
        raise InputError(f"could not decode frame {index} of {self.path}")

    def iter_frames(
        self, start: int = 0, stop: int | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Like `FrameSource.iter_frames`. Forward: one sequential decode. Reverse: chunks of at
        most `reverse_chunk` frames are decoded forward from their keyframe, then yielded
        backwards, so going backwards costs about one forward decode (GOP permitting)."""
        first, end = self._resolve_range(start, stop)
        if not reverse:
            for frame_index, frame in self._decode_span(first, end - 1):
                yield frame_index, frame.copy()
            return
        high = end - 1
        while high >= first:
            low = max(first, high - self.reverse_chunk + 1)
            chunk = list(self._decode_span(low, high))
            for frame_index, frame in reversed(chunk):
                yield frame_index, frame.copy()
            high = low - 1

    def close(self) -> None:
        self._decoder = None
        self.cache.clear()
        if self._container is not None:
            self._container.close()
            self._container = None

    # -- decoding ----------------------------------------------------------------------------

    def _decode_first_frame(self) -> np.ndarray:
        """Decode frame 0 once at opening, so a zero-frame or undecodable file fails early."""
        try:
            for frame in self._container.decode(self._stream):
                return np.asarray(frame.to_ndarray(format="rgb24"))
        except _AV_ERRORS as error:
            self.close()
            raise InputError(f"cannot decode video file {self.path}: {error}") from error
        self.close()
        raise InputError(f"video file {self.path} has zero frames")

    def _decode_span(self, first: int, last: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield `(index, frame)` for frames `first..last` in order (frames are cached too).

        Reuses the open decoder when it sits at or before `first` with no keyframe in between;
        otherwise seeks. If a seek lands after the wanted frame, retries from earlier
        keyframes, and from the start of the file as the last resort. Interleaving with other
        reads (`get` while iterating) is safe: the span re-positions the decoder if needed.
        """
        if self._container is None:
            raise InputError(f"the video source for {self.path} is closed")
        owner = object()
        wanted = first
        seek_from = 0
        while wanted <= last:
            if self._decoder_owner is not owner:  # first step, or another read moved it
                seek_from = self.index.keyframe_at_or_before(wanted)
                if not (self._decoder is not None and seek_from <= self._next_index <= wanted):
                    self._seek(seek_from)
                self._decoder_owner = owner
            produced = self._next_decoded()
            if produced is None:
                raise InputError(
                    f"could not decode frame {wanted} of {self.path}: the stream ended early"
                )
            frame_index, frame = produced
            if frame_index > wanted:  # landed too late: start one keyframe earlier
                if seek_from == 0:
                    raise InputError(f"could not decode frame {wanted} of {self.path}")
                seek_from = self.index.keyframe_at_or_before(seek_from - 1)
                self._seek(seek_from)
            elif frame_index == wanted:
                yield frame_index, frame
                wanted += 1

    def _seek(self, keyframe_index: int) -> None:
        """Position the decoder at keyframe `keyframe_index` (a frame index)."""
        target_pts = int(self.index.pts[keyframe_index])
        try:
            self._container.seek(target_pts, stream=self._stream, backward=True, any_frame=False)
        except _AV_ERRORS as error:
            raise InputError(f"cannot seek in video file {self.path}: {error}") from error
        self._decoder = iter(self._container.decode(self._stream))
        self._next_index = -1  # unknown until the first frame comes out

    def _next_decoded(self) -> tuple[int, np.ndarray] | None:
        """Decode the next frame: `(index, rgb array)`, or None at the end of the stream.
        Frames whose pts is not in the index (leading frames of an open GOP) are skipped."""
        assert self._decoder is not None
        while True:
            try:
                frame = next(self._decoder)
            except StopIteration:
                self._decoder = None
                return None
            except _AV_ERRORS as error:
                raise InputError(f"cannot decode video file {self.path}: {error}") from error
            stamp = frame.pts if frame.pts is not None else frame.dts
            frame_index = self.index.index_of(int(stamp)) if stamp is not None else None
            if frame_index is None and stamp is None and self._next_index >= 0:
                frame_index = self._next_index  # no timestamps at all: count instead
            if frame_index is None:
                continue
            rgb = np.asarray(frame.to_ndarray(format="rgb24"))
            self.cache.put(frame_index, rgb)
            self._next_index = frame_index + 1
            return frame_index, rgb


def probe_video(path: str | Path) -> VideoInfo:
    """Describe a video file: exact frame count, fps, size, codec and duration (seconds)."""
    source = VideoFileSource(path, cache_size=0)
    try:
        frames = source.num_frames
        fps = source.fps
        stream = source._stream
        if stream.duration is not None:
            duration = float(stream.duration * stream.time_base)
        elif fps > 0:
            duration = frames / fps
        else:
            duration = float(source._container.duration or 0) / av.time_base
        return VideoInfo(
            path=str(source.path),
            frames=frames,
            fps=fps,
            width=source.width,
            height=source.height,
            codec=source.codec,
            duration=duration,
        )
    finally:
        source.close()
