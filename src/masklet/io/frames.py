"""Frame sources: the one interface a streaming tracker pulls video frames from.

Conventions for every source in `masklet.io`:
- a frame is a numpy array of shape (H, W, 3), dtype uint8, RGB channel order, row 0 at the top;
- frame indices count from 0 in presentation (display) order;
- memory is bounded: a source keeps at most a small, configurable number of decoded frames
  (an LRU cache or a ring buffer), however long the video is;
- every user-caused problem (missing path, corrupt video, bad index, bad array) raises
  `masklet.errors.InputError` with a message naming the problem.

This module defines the `FrameSource` base class, a bounded frame cache (`frame_cache`), frame
validation, and the in-memory sources `ArraySource` (a list of arrays) and `IteratorSource` (a
live, forward-only stream such as a generator or a camera).
"""

from __future__ import annotations

import abc
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from PIL import Image

from masklet.errors import InputError
from masklet.io.closing import Closing
from masklet.io.pil_images import rgb_array
from masklet.lru import LRUCache


def as_rgb_frame(frame: Any, *, what: str = "frame") -> np.ndarray:
    """Check that `frame` is an (H, W, 3) uint8 RGB array and return it as a numpy array.

    A PIL image is accepted too and converted as a viewer shows it: EXIF orientation applied,
    any mode to 8-bit RGB (`masklet.io.pil_images.rgb_array`). Anything else (another dtype, a
    grayscale or RGBA array, an empty image) raises `InputError`, naming `what` in the message.
    """
    if isinstance(frame, Image.Image):
        return rgb_array(frame, what=what)
    if not isinstance(frame, np.ndarray):
        raise InputError(
            f"{what} must be a numpy array of shape (H, W, 3) and dtype uint8 "
            f"or a PIL image, got {type(frame).__name__}"
        )
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"{what} must have shape (H, W, 3) with H, W > 0, got {frame.shape}")
    if frame.dtype != np.uint8:
        raise InputError(f"{what} must have dtype uint8 (RGB 0..255), got {frame.dtype}")
    return frame


def frame_cache(capacity: int) -> LRUCache[int, np.ndarray]:
    """A least-recently-used cache of decoded frames keyed by frame index, holding at most
    `capacity` frames (0 disables caching); `InputError` for a negative size."""
    if capacity < 0:
        raise InputError(f"cache size must be >= 0, got {capacity}")
    return LRUCache(capacity)


class FrameSource(Closing, abc.ABC):
    """A sequence of RGB frames, read one at a time.

    Subclasses implement `num_frames`, `height`, `width`, `fps` and `get`; the base class
    gives `__len__`, `__getitem__` (negative indices allowed), `__iter__`, `iter_frames`
    (forward or reverse over a range), `close` and the context-manager protocol.
    Frames returned by `get` belong to the caller (they are not views into a cache), except for
    `ArraySource`, which returns the caller's own arrays.
    """

    @property
    @abc.abstractmethod
    def num_frames(self) -> int | None:
        """Number of frames, or None for a live source whose end is unknown."""

    @property
    @abc.abstractmethod
    def height(self) -> int:
        """Frame height in pixels."""

    @property
    @abc.abstractmethod
    def width(self) -> int:
        """Frame width in pixels."""

    @property
    def fps(self) -> float | None:
        """Frames per second, or None when the source does not know it."""
        return None

    @property
    def is_live(self) -> bool:
        """True for forward-only sources (iterators, cameras) without random access."""
        return self.num_frames is None

    @abc.abstractmethod
    def get(self, index: int) -> np.ndarray:
        """Frame `index` (0-based, presentation order) as an (H, W, 3) uint8 RGB array.

        Raises `InputError` naming the valid range when `index` is out of range.
        """

    def iter_frames(
        self, start: int = 0, stop: int | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield `(index, frame)` for indices in `[start, stop)` (`stop=None`: to the end),
        in increasing order, or in decreasing order (`stop - 1` down to `start`) if `reverse`.

        To propagate backwards from frame `t` to frame 0: `iter_frames(0, t + 1, reverse=True)`.
        """
        first, end = self._resolve_range(start, stop)
        indices = range(end - 1, first - 1, -1) if reverse else range(first, end)
        for index in indices:
            yield index, self.get(index)

    def close(self) -> None:
        """Release files and decoders; the source cannot be used afterwards."""

    def __len__(self) -> int:
        count = self.num_frames
        if count is None:
            raise TypeError(f"{type(self).__name__} is a live source and has no length")
        return count

    def __getitem__(self, index: int) -> np.ndarray:
        count = self.num_frames
        if count is not None and -count <= index < 0:
            index += count
        return self.get(index)

    def __iter__(self) -> Iterator[np.ndarray]:
        for _, frame in self.iter_frames():
            yield frame

    def _check_index(self, index: int) -> int:
        """Return `index` as an int if 0 <= index < num_frames, else raise `InputError`."""
        count = self.num_frames
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise InputError(f"frame index must be an integer, got {index!r}")
        if count is not None and not 0 <= index < count:
            raise InputError(
                f"frame index {index} is out of range: valid indices are 0..{count - 1} "
                f"({count} frames)"
            )
        if index < 0:
            raise InputError(f"frame index must be >= 0, got {index}")
        return int(index)

    def _resolve_range(self, start: int, stop: int | None) -> tuple[int, int]:
        """Clip `[start, stop)` to the frames of this source (like slicing a list)."""
        count = self.num_frames
        if count is None:
            raise InputError(f"{type(self).__name__} is live: iterate it forward instead")
        if start < 0:
            raise InputError(f"start must be >= 0, got {start}")
        end = count if stop is None else min(stop, count)
        return start, max(start, end)


class ArraySource(FrameSource):
    """Frames held in memory: a sequence of (H, W, 3) uint8 arrays (or PIL images), or one
    (N, H, W, 3) uint8 array. All frames must have the same size. `get` returns the stored
    arrays themselves (no copy): do not modify them in place."""

    def __init__(self, frames: Sequence[Any] | np.ndarray, *, fps: float | None = None) -> None:
        if isinstance(frames, np.ndarray):
            if frames.ndim != 4:
                raise InputError(
                    f"a frame array must have shape (N, H, W, 3), got shape {frames.shape}"
                )
            checked: Sequence[np.ndarray] = list(frames)  # views, no copy
            if len(checked):
                as_rgb_frame(checked[0], what="frame 0")
        else:
            checked = [as_rgb_frame(frame, what=f"frame {i}") for i, frame in enumerate(frames)]
        if len(checked) == 0:
            raise InputError("the list of frames is empty: a video needs at least one frame")
        shape = checked[0].shape
        for index, frame in enumerate(checked):
            if frame.shape != shape:
                raise InputError(
                    f"frame {index} has shape {frame.shape} but frame 0 has shape {shape}: "
                    f"all frames must have the same size"
                )
        self._frames = checked
        self._fps = fps

    @property
    def num_frames(self) -> int:
        return len(self._frames)

    @property
    def height(self) -> int:
        return int(self._frames[0].shape[0])

    @property
    def width(self) -> int:
        return int(self._frames[0].shape[1])

    @property
    def fps(self) -> float | None:
        return self._fps

    def get(self, index: int) -> np.ndarray:
        return self._frames[self._check_index(index)]


class IteratorSource(FrameSource):
    """A live, forward-only source over any iterable of (H, W, 3) uint8 frames (or PIL images).

    `num_frames` is None and `len()` raises TypeError. Frames are pulled lazily; the last
    `history` frames stay in a ring buffer, so `get(i)` works for those and for frames ahead
    (which are pulled, the ones in between entering the buffer). Older frames raise
    `InputError`. Every frame must have the size of the first one.
    """

    def __init__(
        self, frames: Iterable[Any], *, fps: float | None = None, history: int = 8
    ) -> None:
        if history < 1:
            raise InputError(f"history must be >= 1, got {history}")
        self._iterator: Iterator[Any] | None = iter(frames)
        self._fps = fps
        self._buffer: deque[np.ndarray] = deque(maxlen=history)
        self._next_index = 0  # index of the next frame to pull from the iterator
        self._shape: tuple[int, ...] | None = None

    @property
    def num_frames(self) -> None:
        return None

    @property
    def height(self) -> int:
        return self._first_shape()[0]

    @property
    def width(self) -> int:
        return self._first_shape()[1]

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def frames_read(self) -> int:
        """How many frames have been pulled from the underlying iterator so far."""
        return self._next_index

    @property
    def buffered_indices(self) -> range:
        """Indices of the frames still held in the ring buffer."""
        return range(self._next_index - len(self._buffer), self._next_index)

    def get(self, index: int) -> np.ndarray:
        index = self._check_index(index)
        oldest = self._next_index - len(self._buffer)
        if index < oldest:
            raise InputError(
                f"frame {index} is no longer available: a live source keeps only its last "
                f"{self._buffer.maxlen} frames (now {self._describe_buffer()})"
            )
        while index >= self._next_index:
            if not self._pull():
                raise InputError(
                    f"frame index {index} is out of range: the stream ended after "
                    f"{self._next_index} frames"
                )
        return self._buffer[index - (self._next_index - len(self._buffer))]

    def iter_frames(
        self, start: int = 0, stop: int | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield `(index, frame)` forward from `start` (which must still be buffered or ahead)
        until `stop` or the end of the stream. `reverse` is only possible within the buffer."""
        if reverse:
            if stop is None:
                raise InputError("a live source cannot be iterated in reverse to its unknown end")
            for index in range(stop - 1, start - 1, -1):
                yield index, self.get(index)
            return
        index = start
        while stop is None or index < stop:
            if index >= self._next_index and not self._pull():
                return
            yield index, self.get(index)
            index += 1

    def close(self) -> None:
        self._iterator = None
        self._buffer.clear()

    def _pull(self) -> bool:
        """Read one more frame into the buffer; False at the end of the stream."""
        if self._iterator is None:
            return False
        try:
            raw = next(self._iterator)
        except StopIteration:
            self._iterator = None
            return False
        frame = as_rgb_frame(raw, what=f"frame {self._next_index}")
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:
            raise InputError(
                f"frame {self._next_index} has shape {frame.shape} but the first frame "
                f"has shape {self._shape}: all frames must have the same size"
            )
        self._buffer.append(frame)
        self._next_index += 1
        return True

    def _first_shape(self) -> tuple[int, ...]:
        if self._shape is None and not self._pull():
            raise InputError("the frame stream is empty: it produced no frame")
        assert self._shape is not None
        return self._shape

    def _describe_buffer(self) -> str:
        if not self._buffer:
            return "none buffered"
        indices = self.buffered_indices
        return f"frames {indices.start}..{indices.stop - 1} are buffered"
