"""Display orientation of video files: the rotation/flip that phones record as metadata.

A phone filming in portrait usually stores landscape pixels plus a display matrix (FFmpeg's
`AV_FRAME_DATA_DISPLAYMATRIX` side data, from the mp4/mov `tkhd` matrix; older FFmpeg exposed
it as a `rotate` stream tag, in degrees clockwise). Players apply it; so does
`VideoFileSource`, so that frames, sizes and masks are in the displayed (upright) frame.

The display matrix is 9 int32 values `[a b u; c d v; x y w]` (a, b, c, d in 16.16 fixed point)
mapping a stored pixel (p, q) (x right, y down) to the displayed pixel
(a*p + c*q + x, b*p + d*q + y). Only multiples of 90 degrees, possibly mirrored, are supported
(the eight EXIF orientations); any other angle is snapped to the nearest of them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from av.sidedata.sidedata import Type as SideDataType


@dataclasses.dataclass(frozen=True)
class Orientation:
    """How to turn a stored (H, W, 3) frame into the displayed one.

    Applied in this order: `transpose` (swap rows and columns), then `flip_rows` (upside
    down), then `flip_columns` (mirror left-right). The identity leaves frames untouched.
    """

    transpose: bool = False
    flip_rows: bool = False
    flip_columns: bool = False

    @property
    def is_identity(self) -> bool:
        return not (self.transpose or self.flip_rows or self.flip_columns)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """The displayed frame: (H, W, C) -> (H, W, C), or (W, H, C) when transposing; a new
        C-contiguous array unless the orientation is the identity (then `frame` itself)."""
        if self.is_identity:
            return frame
        shown = frame.transpose(1, 0, 2) if self.transpose else frame
        if self.flip_rows:
            shown = shown[::-1]
        if self.flip_columns:
            shown = shown[:, ::-1]
        return np.ascontiguousarray(shown)

    def displayed_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the displayed frame for a stored frame of `height` x `width`."""
        return (width, height) if self.transpose else (height, width)


IDENTITY = Orientation()


def orientation_from_display_matrix(matrix: np.ndarray) -> Orientation:
    """Orientation of a display matrix: 9 int32 values, FFmpeg layout (see the module doc)."""
    a, b, c, d = (float(matrix[i]) / 65536.0 for i in (0, 1, 3, 4))
    if abs(a) + abs(d) >= abs(b) + abs(c):  # no quarter turn: x' ~ a*p, y' ~ d*q
        return Orientation(transpose=False, flip_rows=d < 0, flip_columns=a < 0)
    # a quarter turn: x' ~ c*q, y' ~ b*p, so the axes swap
    return Orientation(transpose=True, flip_rows=b < 0, flip_columns=c < 0)


def orientation_from_clockwise_degrees(degrees: float) -> Orientation:
    """Orientation of a rotation by `degrees` clockwise (the old `rotate` tag), snapped to the
    nearest multiple of 90."""
    quarter_turns = round(degrees / 90.0) % 4
    return (
        IDENTITY,
        Orientation(transpose=True, flip_columns=True),  # 90 clockwise
        Orientation(flip_rows=True, flip_columns=True),  # 180
        Orientation(transpose=True, flip_rows=True),  # 90 counter-clockwise
    )[quarter_turns]


def frame_orientation(frame: Any, stream_metadata: dict[str, str]) -> Orientation:
    """Orientation of a decoded PyAV `VideoFrame`: its DISPLAYMATRIX side data, else the
    stream's `rotate` tag (files read by an older FFmpeg), else the identity."""
    side_data = frame.side_data.get(SideDataType.DISPLAYMATRIX)
    if side_data is not None and side_data.buffer_size >= 36:
        matrix = np.frombuffer(bytes(side_data), dtype=np.int32, count=9)
        return orientation_from_display_matrix(matrix)
    rotate = stream_metadata.get("rotate")
    if rotate is not None:
        try:
            return orientation_from_clockwise_degrees(float(rotate))
        except ValueError:
            return IDENTITY
    return IDENTITY
