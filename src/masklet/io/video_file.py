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
After a seek, frames that come out before the keyframe sought (the leading frames of an open
GOP, which may reference pictures from before the seek point) are dropped, never cached.
What counts as a frame, and how broken files (truncated, corrupt packets, edit lists) are
indexed and decoded: `masklet.io.video_container`.

Rotation metadata (the display matrix that phones write) is applied by default
(`autorotate=True`, as players and the `ffmpeg` tool do): frames, `height` and `width` are those
of the displayed, upright video, so masks computed on them match what users see. See
`masklet.io.video_orientation`.
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
from masklet.io.frames import FrameSource, frame_cache
from masklet.io.video_container import (
    AV_ERRORS,
    PacketIndex,
    build_packet_index,
    decode_video_frames,
    open_video_container,
)
from masklet.io.video_orientation import IDENTITY, Orientation, frame_orientation

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


def _stream_fps(stream: Any) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


class VideoFileSource(FrameSource):
    """Frames of a video file, decoded lazily with frame-accurate random access.

    Args:
        path: any file FFmpeg can read.
        cache_size: how many decoded frames the LRU cache keeps (0 disables it).
        reverse_chunk: most frames held at once by `iter_frames(..., reverse=True)`, which
            decodes a chunk forward and yields it backwards.
        autorotate: apply the file's rotation metadata (display matrix), so frames come out
            upright as players show them; False gives the stored pixels.
    Memory is bounded by `cache_size + reverse_chunk` frames plus the packet index.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        cache_size: int = 8,
        reverse_chunk: int = 16,
        autorotate: bool = True,
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"video file not found: {self.path}")
        if self.path.is_dir():
            raise InputError(f"{self.path} is a folder, not a video file")
        if reverse_chunk < 1:
            raise InputError(f"reverse_chunk must be >= 1, got {reverse_chunk}")
        self.cache = frame_cache(cache_size)
        self.reverse_chunk = reverse_chunk
        self._container: Any = open_video_container(self.path)
        self._stream: Any = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._index: PacketIndex | None = None
        self._decoder: Iterator[Any] | None = None
        self._next_index = 0  # frame index the open decoder produces next
        self._decoder_owner: object | None = None  # the span that last moved the decoder
        self._last_stamp: int | None = None  # timestamp of the decoder's last output frame
        self._counting = False  # True: timestamps unusable, frames are counted from the start
        self._seek_floor = 0  # frames before this index, decoded after the last seek, are dropped
        self._autorotate = autorotate
        self.orientation: Orientation = IDENTITY  # set from the first frame's side data
        self._first_frame = self._decode_first_frame()

    # -- FrameSource -------------------------------------------------------------------------

    @property
    def num_frames(self) -> int:
        return len(self.index.pts)

    @property
    def height(self) -> int:
        """Height of the displayed (rotated, if `autorotate`) frames."""
        return int(self._first_frame.shape[0])

    @property
    def width(self) -> int:
        """Width of the displayed (rotated, if `autorotate`) frames."""
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

    @property
    def truncation(self) -> str | None:
        """One line saying the file is truncated (it ends inside a frame, e.g. a recording
        that was cut), or None. The source then holds the complete frames before the cut."""
        if not self.index.truncated:
            return None
        count = self.num_frames
        return (
            f"video file {self.path} is truncated: it ends inside frame {count}; "
            f"using the {count} complete frame{'s' if count != 1 else ''} before the cut"
        )

    def _count_frames(self) -> PacketIndex:
        """Index of an untimed stream: decode it once (no colour conversion) and count."""
        container = open_video_container(self.path)
        try:
            stream = container.streams.video[0]
            count = sum(1 for _ in decode_video_frames(container, stream))
        except AV_ERRORS as error:
            raise InputError(f"cannot decode video file {self.path}: {error}") from error
        finally:
            container.close()
        if count == 0:
            raise InputError(
                f"video file {self.path} has zero decodable frames "
                f"(its video data is missing, cut short or corrupt)"
            )
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
            for frame in decode_video_frames(self._container, self._stream):
                if first is None:
                    if self._autorotate:
                        metadata = dict(self._stream.metadata)
                        self.orientation = frame_orientation(frame, metadata)
                    first = self._to_rgb(frame)
                stamps.append(frame.pts)
                if len(stamps) >= _TIMESTAMP_PROBE_FRAMES:
                    break
        except AV_ERRORS as error:
            if first is None:
                self.close()
                raise InputError(f"cannot decode video file {self.path}: {error}") from error
        if first is None:
            self.close()
            raise InputError(
                f"video file {self.path} has zero decodable frames "
                f"(its video data is missing, cut short or corrupt)"
            )
        known = [stamp for stamp in stamps if stamp is not None]
        in_order = all(a < b for a, b in itertools.pairwise(known))
        self._counting = len(known) < len(stamps) or not in_order
        self._decoder = None
        return first

    def _decode_span(self, first: int, last: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield `(index, frame)` for frames `first..last` in order (frames are cached too).

        Reuses the open decoder when it sits at or before `first` with no keyframe in between;
        otherwise seeks. If a seek lands after the wanted frame, or the stream ends before it
        (a keyframe flag that is wrong, as some AVI writers set), retries from earlier
        keyframes, and from the start of the file as the last resort. A frame the decoder
        skips although it was positioned before it is reported as undecodable. Interleaving
        with other reads (`get` while iterating) is safe: the span re-positions the decoder.
        """
        if self._container is None:
            raise InputError(f"the video source for {self.path} is closed")
        owner = object()
        wanted = first
        seek_from = 0
        positioned = False  # the decoder is known to sit before `wanted`
        while wanted <= last:
            if self._decoder_owner is not owner:  # first step, or another read moved it
                seek_from = self._keyframe_at_or_before(wanted)
                positioned = self._decoder is not None and seek_from <= self._next_index <= wanted
                if not positioned:
                    self._seek(seek_from)
                self._decoder_owner = owner
            try:
                produced = self._next_decoded()
            except _TimestampsOutOfOrderError:
                self._switch_to_counting()
                continue
            if produced is not None and produced[0] <= wanted:
                positioned = True
                if produced[0] == wanted:
                    yield produced
                    wanted += 1
                continue
            if positioned or seek_from == 0:
                raise InputError(self._undecodable(wanted, ended=produced is None))
            seek_from = self._keyframe_at_or_before(seek_from - 1)  # one keyframe earlier
            self._seek(seek_from)

    def _undecodable(self, index: int, *, ended: bool) -> str:
        problem = "the stream ended early" if ended else "the decoder skipped it (corrupt data)"
        return f"could not decode frame {index} of {self.path}: {problem}"

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
                self._container = open_video_container(self.path)
                self._stream = self._container.streams.video[0]
                self._stream.thread_type = "AUTO"
            else:
                target_pts = int(self.index.pts[keyframe_index])
                self._container.seek(
                    target_pts, stream=self._stream, backward=True, any_frame=False
                )
        except AV_ERRORS as error:
            raise InputError(f"cannot seek in video file {self.path}: {error}") from error
        self._decoder = decode_video_frames(self._container, self._stream)
        self._last_stamp = None
        self._seek_floor = keyframe_index
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
            except AV_ERRORS as error:
                raise InputError(f"cannot decode video file {self.path}: {error}") from error
            frame_index = self._next_index if self._counting else self._index_from_stamp(frame)
            if frame_index is None or frame_index < self._seek_floor:
                continue
            rgb = self._to_rgb(frame)
            self.cache.put(frame_index, rgb)
            self._next_index = frame_index + 1
            return frame_index, rgb

    def _to_rgb(self, frame: Any) -> np.ndarray:
        """A decoded PyAV frame as a displayed (H, W, 3) uint8 RGB array."""
        return self.orientation.apply(np.asarray(frame.to_ndarray(format="rgb24")))

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
