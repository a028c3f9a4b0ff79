"""`CameraSource`: a live camera (Video4Linux2 on Linux) read through PyAV.

A camera is a live source: `num_frames` is None, frames are pulled forward as they arrive, and
only the last `history` frames can be read again with `get` (see `IteratorSource`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import av
import numpy as np

from masklet.errors import InputError
from masklet.io.frames import IteratorSource


class CameraSource(IteratorSource):
    """Frames from a capture device, e.g. `/dev/video0`.

    Args:
        device: the device path given to FFmpeg.
        input_format: FFmpeg input format; "v4l2" on Linux.
        size: requested (width, height), or None for the camera's default.
        fps: requested frame rate, or None for the camera's default.
        history: how many recent frames stay readable with `get`.
        options: further FFmpeg device options (strings), e.g. {"input_format": "mjpeg"}.
    Raises `InputError` naming the device when it cannot be opened.
    """

    def __init__(
        self,
        device: str = "/dev/video0",
        *,
        input_format: str = "v4l2",
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        history: int = 8,
        options: dict[str, str] | None = None,
    ) -> None:
        self.device = device
        device_options = dict(options or {})
        if size is not None:
            device_options["video_size"] = f"{size[0]}x{size[1]}"
        if fps is not None:
            device_options["framerate"] = f"{fps:g}"
        try:
            self._container: Any = av.open(device, format=input_format, options=device_options)
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise InputError(f"cannot open camera {device!r}: {error}") from error
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"camera {device!r} has no video stream")
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        super().__init__(self._frames(stream), fps=float(rate) if rate else fps, history=history)

    def _frames(self, stream: Any) -> Iterator[np.ndarray]:
        try:
            for frame in self._container.decode(stream):
                yield np.asarray(frame.to_ndarray(format="rgb24"))
        except (av.error.FFmpegError, OSError) as error:
            raise InputError(f"camera {self.device!r} stopped: {error}") from error

    def close(self) -> None:
        super().close()
        if self._container is not None:
            self._container.close()
            self._container = None
