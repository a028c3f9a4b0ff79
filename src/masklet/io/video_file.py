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
import itertools
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from masklet.errors import InputError
from masklet.io.frames import FrameCache, FrameSource

_AV_ERRORS: tuple[type[BaseException], ...] = (av.error.FFmpegError, OSError, EOFError)
_TIMESTAMP_PROBE_FRAMES = 12  # frames decoded at opening to check that timestamps are sane


class _TimestampsOutOfOrderError(Exception):
    """The decoder produced timestamps that are not increasing (internal signal)."""


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


def build_packet_index(path: Path) -> PacketIndex | None:
    """Demux (without decoding) the first video stream of `path` and index its frames.
    Returns None when packets carry no timestamps (raw elementary streams such as `.h264`)."""
    container = _open_container(path)
    stamps: list[int] = []
    keyframes: list[bool] = []
    try:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the flush packet at the end
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:
                return None
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
        self._last_stamp: int | None = None  # timestamp of the decoder's last output frame
        self._counting = False  # True: timestamps unusable, frames are counted from the start
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
        """The packet index, built on first use (one demux pass over the file). For a stream
        without timestamps, frames are counted by decoding the file once instead."""
        if self._index is None:
            index = build_packet_index(self.path)
            if index is None:
                self._counting = True
                index = self._count_frames()
            self._index = index
        return self._index

    def _count_frames(self) -> PacketIndex:
        """Index of an untimed stream: decode it once (no colour conversion) and count."""
        container = _open_container(self.path)
        try:
            count = sum(1 for _ in container.decode(container.streams.video[0]))
        except _AV_ERRORS as error:
            raise InputError(f"cannot decode video file {self.path}: {error}") from error
        finally:
            container.close()
        if count == 0:
            raise InputError(f"video file {self.path} has zero frames")
        is_keyframe = np.zeros(count, dtype=bool)
        is_keyframe[0] = True
        return PacketIndex(pts=np.arange(count, dtype=np.int64), is_keyframe=is_keyframe)

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
        """Decode the first frames once at opening, so a zero-frame or undecodable file fails
        early, and switch to counting mode if their timestamps are missing or out of order."""
        first: np.ndarray | None = None
        stamps: list[int | None] = []
        try:
            for frame in self._container.decode(self._stream):
                if first is None:
                    first = np.asarray(frame.to_ndarray(format="rgb24"))
                stamps.append(frame.pts)
                if len(stamps) >= _TIMESTAMP_PROBE_FRAMES:
                    break
        except _AV_ERRORS as error:
            if first is None:
                self.close()
                raise InputError(f"cannot decode video file {self.path}: {error}") from error
        if first is None:
            self.close()
            raise InputError(f"video file {self.path} has zero frames")
        known = [stamp for stamp in stamps if stamp is not None]
        in_order = all(a < b for a, b in itertools.pairwise(known))
        self._counting = len(known) < len(stamps) or not in_order
        self._decoder = None
        return first

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
                seek_from = self._keyframe_at_or_before(wanted)
                if not (self._decoder is not None and seek_from <= self._next_index <= wanted):
                    self._seek(seek_from)
                self._decoder_owner = owner
            try:
                produced = self._next_decoded()
            except _TimestampsOutOfOrderError:
                self._switch_to_counting()
                continue
            if produced is None:
                raise InputError(
                    f"could not decode frame {wanted} of {self.path}: the stream ended early"
                )
            frame_index, frame = produced
            if frame_index > wanted:  # landed too late: start one keyframe earlier
                if seek_from == 0:
                    raise InputError(f"could not decode frame {wanted} of {self.path}")
                seek_from = self._keyframe_at_or_before(seek_from - 1)
                self._seek(seek_from)
            elif frame_index == wanted:
                yield frame_index, frame
                wanted += 1

    def _keyframe_at_or_before(self, index: int) -> int:
        return 0 if self._counting else self.index.keyframe_at_or_before(index)

    def _switch_to_counting(self) -> None:
        """Timestamps proved unusable (e.g. AVI with packed B-frames, whose guessed pts are
        out of display order): from now on, frame i is the i-th frame decoded from the start
        of the file. Correct, but a backward jump costs a decode from the start."""
        self._counting = True
        self.cache.clear()
        self._decoder = None
        self._decoder_owner = None

    def _seek(self, keyframe_index: int) -> None:
        """Position the decoder at keyframe `keyframe_index` (a frame index). Going to frame 0
        reopens the file instead: some demuxers (AVI) seek by decode time and would skip it."""
        try:
            if keyframe_index == 0:
                self._container.close()
                self._container = _open_container(self.path)
                self._stream = self._container.streams.video[0]
                self._stream.thread_type = "AUTO"
            else:
                target_pts = int(self.index.pts[keyframe_index])
                self._container.seek(
                    target_pts, stream=self._stream, backward=True, any_frame=False
                )
        except _AV_ERRORS as error:
            raise InputError(f"cannot seek in video file {self.path}: {error}") from error
        self._decoder = iter(self._container.decode(self._stream))
        self._last_stamp = None
        # In counting mode we always seek to the start, so the next frame is frame 0;
        # otherwise the index is unknown until the first frame's timestamp comes out.
        self._next_index = 0 if self._counting else -1

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
            frame_index = self._next_index if self._counting else self._index_from_stamp(frame)
            if frame_index is None:
                continue
            rgb = np.asarray(frame.to_ndarray(format="rgb24"))
            self.cache.put(frame_index, rgb)
            self._next_index = frame_index + 1
            return frame_index, rgb

    def _index_from_stamp(self, frame: Any) -> int | None:
        """Frame index of a decoded frame from its pts (None: not an indexed frame, e.g. a
        leading frame of an open GOP). Raises `_TimestampsOutOfOrderError` if pts are missing or
        go backwards, which the caller answers by switching to counting mode."""
        stamp = frame.pts
        if stamp is None or (self._last_stamp is not None and stamp <= self._last_stamp):
            raise _TimestampsOutOfOrderError
        self._last_stamp = int(stamp)
        return self.index.index_of(int(stamp))


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
