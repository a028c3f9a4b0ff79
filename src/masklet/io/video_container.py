"""Opening, indexing and decoding video containers with PyAV, robust to users' broken files.

- `open_video_container`: open a file and check it has a video stream; every failure is an
  `InputError` that names the file and says what is wrong (empty, text, not a video, an MP4
  whose index is missing because the recording was cut, audio only).
- `build_packet_index`: demux once without decoding into a `PacketIndex` (the pts of every frame
  in presentation order, and which are keyframes). Packets the demuxer marks "discard" (the
  frames before the start of an edit list, as in trimmed phone videos) or "corrupt" (e.g. the
  partial packet at the end of a truncated file) are not frames of the video; a corrupt last
  packet, or a demux error after some packets, marks the index `truncated`.
- `decode_video_frames`: decode from the current position, skipping the same corrupt packets,
  and skipping (as players do) a packet the decoder rejects instead of ending the decode, which
  would lose the frames still buffered inside a multi-threaded decoder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from masklet.errors import InputError

AV_ERRORS: tuple[type[BaseException], ...] = (av.error.FFmpegError, OSError, EOFError)
_END_OF_PACKETS: tuple[type[BaseException], ...] = (StopIteration, *AV_ERRORS)
_SNIFF_BYTES = 512  # bytes read to tell a text file or a cut MP4 apart from other junk


@dataclasses.dataclass(frozen=True)
class PacketIndex:
    """Sorted presentation timestamps of every frame of a stream and the keyframe flags.

    pts: shape (N,), int64, strictly increasing, in units of the stream's time base.
    is_keyframe: shape (N,), bool; `is_keyframe[0]` is forced True (decoding starts there).
    truncated: the file ends inside a frame (or the demuxer failed part-way); the N frames
        before the cut are complete.
    """

    pts: np.ndarray
    is_keyframe: np.ndarray
    truncated: bool = False

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


def _describe_unreadable(path: Path, error: BaseException) -> str:
    """Why FFmpeg could not open `path`, in words (one line naming the file)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError:
        head = b""
    if not head:
        return f"video file {path} is empty (0 bytes)"
    if head[4:8] == b"ftyp":
        return (
            f"cannot read video file {path}: it is an MP4/MOV file without its index "
            f"(moov atom), which is written last: the file is truncated (an interrupted "
            f"recording or copy)"
        )
    if all(byte in b"\t\n\r" or 32 <= byte < 127 for byte in head):
        return f"cannot read video file {path}: it is a text file, not a video"
    problem = getattr(error, "strerror", None) or str(error)
    return f"cannot read video file {path}: FFmpeg does not recognise it as a video ({problem})"


def open_video_container(path: Path) -> Any:
    """Open `path` with PyAV; the container has at least one video stream. `InputError` if not."""
    try:
        container = av.open(str(path))
    except av.error.EOFError as error:
        if path.stat().st_size == 0:
            raise InputError(f"video file {path} is empty (0 bytes)") from error
        raise InputError(
            f"video file {path} is empty or truncated: it ends before any frame"
        ) from error
    except av.error.InvalidDataError as error:
        raise InputError(_describe_unreadable(path, error)) from error
    except AV_ERRORS as error:
        problem = getattr(error, "strerror", None) or str(error)
        raise InputError(f"cannot read video file {path}: {problem}") from error
    if not container.streams.video:
        holds = "only audio (zero video frames)" if container.streams.audio else "zero frames"
        container.close()
        raise InputError(f"video file {path} has no video stream: it holds {holds}")
    return container


def decode_video_frames(container: Any, stream: Any) -> Iterator[Any]:
    """PyAV `VideoFrame`s of `stream` from the container's current position, in presentation
    order. Packets flagged corrupt, and packets the decoder rejects as invalid, are skipped; a
    demux error ends the stream; either way the decoder is flushed, so every frame it holds
    comes out. (Feeding a partial packet to a frame-threaded decoder loses buffered frames.)"""
    packets = container.demux(stream)
    flushed = False
    while not flushed:
        try:
            packet = next(packets)
        except _END_OF_PACKETS:
            packet = None  # end of the file, or a demux error: flush what is decoded
        flushed = packet is None or packet.size == 0
        if packet is not None and packet.is_corrupt:
            continue
        try:
            yield from stream.decode(packet)
        except av.error.InvalidDataError:
            continue


def _demux_stamps(container: Any, stream: Any) -> tuple[list[int], list[bool], bool] | None:
    """(pts, keyframe flags, truncated) of the packets of `stream` in decode order; None when
    packets carry no timestamps. Discarded packets (before an edit list's start) are left
    out, and so are corrupt packets; a corrupt last packet (a partial one: the file is cut) or
    a demux error part-way marks the result truncated."""
    stamps: list[int] = []
    keyframes: list[bool] = []
    ends_corrupt = False
    failed = False
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue  # the flush packet at the end; or not a frame of the edited video
            ends_corrupt = bool(packet.is_corrupt)
            if ends_corrupt:
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:
                return None
            stamps.append(int(stamp))
            keyframes.append(bool(packet.is_keyframe))
    except AV_ERRORS:
        if not stamps:
            raise
        failed = True
    return stamps, keyframes, failed or ends_corrupt


def build_packet_index(path: Path) -> PacketIndex | None:
    """Demux (without decoding) the first video stream of `path` and index its frames.
    Returns None when packets carry no timestamps (raw elementary streams such as `.h264`)."""
    container = open_video_container(path)
    try:
        demuxed = _demux_stamps(container, container.streams.video[0])
    except AV_ERRORS as error:
        raise InputError(f"cannot read video file {path}: {error}") from error
    finally:
        container.close()
    if demuxed is None:
        return None
    stamps, keyframes, truncated = demuxed
    if not stamps:
        raise InputError(f"video file {path} has zero frames")
    order = np.argsort(np.asarray(stamps, dtype=np.int64), kind="stable")
    pts = np.asarray(stamps, dtype=np.int64)[order]
    unique = np.concatenate([[True], np.diff(pts) > 0])
    is_keyframe = np.asarray(keyframes, dtype=bool)[order][unique]
    is_keyframe[0] = True
    return PacketIndex(pts=pts[unique], is_keyframe=is_keyframe, truncated=truncated)
