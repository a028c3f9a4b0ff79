"""`open_frame_source`: turn whatever the user passed into a `FrameSource`; and `read_frames`,
a one-line frame iterator for notebooks and scripts.

Dispatch (first match wins):
- a `FrameSource`: returned as is;
- a path (str or `pathlib.Path`): `/dev/video*` -> `CameraSource`; a folder ->
  `ImageFolderSource`; a `.jpg/.jpeg/.png` file -> a one-frame `ArraySource`; any other file ->
  `VideoFileSource`; a path that does not exist -> `InputError`;
- a numpy array: (N, H, W, 3) -> `ArraySource` of N frames, (H, W, 3) -> one frame;
- a list or tuple of (H, W, 3) uint8 arrays or PIL images -> `ArraySource`;
- a PIL image -> one frame;
- any other iterable (generator, iterator) -> `IteratorSource` (live, forward only).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from masklet.errors import InputError
from masklet.io.camera import CameraSource
from masklet.io.frames import ArraySource, FrameSource, IteratorSource
from masklet.io.image_folder import IMAGE_SUFFIXES, ImageFolderSource, load_rgb_image
from masklet.io.video_file import VideoFileSource


def _open_path(path: Path, fps: float | None) -> FrameSource:
    if str(path).startswith("/dev/video"):
        return CameraSource(str(path))
    if not path.exists():
        raise InputError(f"video source not found: {path} (expected a video file or a folder)")
    if path.is_dir():
        return ImageFolderSource(path, fps=fps)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ArraySource([load_rgb_image(path)], fps=fps)
    return VideoFileSource(path)


def open_frame_source(source: Any, *, fps: float | None = None) -> FrameSource:
    """Open `source` as a `FrameSource` (see the module docstring for what is accepted).

    `fps` is reported by sources that carry no frame rate of their own (folders, arrays,
    iterators); video files and cameras report their own.
    """
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, (str, Path)):
        return _open_path(Path(source), fps)
    if isinstance(source, np.ndarray):
        frames = source[None] if source.ndim == 3 else source
        return ArraySource(frames, fps=fps)
    if isinstance(source, Image.Image):
        return ArraySource([source], fps=fps)
    if isinstance(source, (list, tuple)):
        return ArraySource(source, fps=fps)
    if isinstance(source, Iterable) and not isinstance(source, (bytes, dict)):
        return IteratorSource(source, fps=fps)
    raise InputError(
        f"cannot read frames from a {type(source).__name__}: pass a video file, a folder of "
        f"JPEG/PNG frames, a list of (H, W, 3) uint8 arrays, an (N, H, W, 3) array, "
        f"an iterator of frames or a /dev/video* camera"
    )


def read_frames(
    source: Any, start: int = 0, stop: int | None = None, step: int = 1
) -> Iterator[np.ndarray]:
    """Iterate frames `start, start + step, ...` (before `stop`) of any source that
    `open_frame_source` accepts, as (H, W, 3) uint8 RGB arrays.

    Decodes sequentially (frames in between are decoded and dropped). A source opened here is
    closed when the iterator finishes or is garbage-collected; a `FrameSource` passed in is
    left open.
    """
    if step < 1:
        raise InputError(f"step must be >= 1, got {step}")
    if start < 0:
        raise InputError(f"start must be >= 0, got {start}")
    frame_source = open_frame_source(source)
    owned = frame_source is not source
    try:
        for index, frame in frame_source.iter_frames(start, stop):
            if (index - start) % step == 0:
                yield frame
    finally:
        if owned:
            frame_source.close()
