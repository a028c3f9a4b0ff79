"""Rendering masks over frames, and writing videos frame by frame.

- `overlay_masks(image, masks)`: each object's mask blended in its own colour (translucent),
  with an opaque outline and its id written at the top-left of its bounding box (Pillow's
  default font; no other font dependency). Masks are `{obj_id: (H, W)}` arrays (bool, 0/1, or
  SAM logits: values > 0 are foreground; a leading axis of size 1, as in the predictors'
  `(1, H, W)` outputs, is dropped) or one (H, W) integer label map (0 = background, 255 void).
  Where objects overlap, the smallest id is drawn on top (the same rule as `masks_to_labels`).
- `object_color(obj_id)`: the colour of an object id (matplotlib's tab10 cycle, id 0 first).
- `VideoWriter`: streams (H, W, 3) uint8 RGB frames into an H.264 file (`libx264`, yuv420p) at a
  given fps; `.webm` files get VP9. Odd widths/heights are padded by one replicated column/row,
  since yuv420p needs even sizes.
- `save_overlay_png(path, image, masks)`: one rendered frame as a PNG.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from masklet.errors import InputError
from masklet.io.closing import Closing
from masklet.io.files import AtomicFile, write_failure, write_png
from masklet.io.frames import as_rgb_frame

TAB10: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)

MaskInput = Mapping[int, np.ndarray] | np.ndarray


def object_color(obj_id: int) -> tuple[int, int, int]:
    """RGB colour of object `obj_id` (tab10, cycling every 10 ids)."""
    return TAB10[int(obj_id) % len(TAB10)]


def _as_mask_dict(masks: MaskInput, shape: tuple[int, int]) -> dict[int, np.ndarray]:
    """Normalise `masks` to `{obj_id: (H, W) bool}` and check every shape against `shape`."""
    if isinstance(masks, np.ndarray):
        if masks.ndim != 2 or not np.issubdtype(masks.dtype, np.integer):
            raise InputError(
                f"a label map must be an (H, W) integer array, got {masks.dtype} {masks.shape}"
            )
        ids = [int(v) for v in np.unique(masks) if v not in (0, 255)]
        masks = {obj_id: masks == obj_id for obj_id in ids}
    result = {}
    for obj_id, mask in masks.items():
        array = np.asarray(mask)
        if array.ndim == 3 and array.shape[0] == 1:
            array = array[0]
        if array.shape != shape:
            raise InputError(f"mask of object {obj_id} has shape {array.shape}, expected {shape}")
        result[int(obj_id)] = array > 0
    return result


def mask_outline(mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Inner boundary of an (H, W) bool mask: mask pixels within `thickness` pixels
    (4-connected) of a background pixel. Pixels beyond the image edge count as inside."""
    eroded = mask.copy()
    for _ in range(thickness):
        padded = np.pad(eroded, 1, mode="edge")
        eroded = (
            padded[1:-1, 1:-1]
            & padded[:-2, 1:-1]
            & padded[2:, 1:-1]
            & padded[1:-1, :-2]
            & padded[1:-1, 2:]
        )
    return mask & ~eroded


def _draw_labels(image: np.ndarray, masks: dict[int, np.ndarray]) -> np.ndarray:
    """Write each object id at the top-left corner of its mask's bounding box."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    height, width = image.shape[:2]
    for obj_id, mask in sorted(masks.items(), reverse=True):
        rows, cols = np.nonzero(mask)
        if rows.size == 0:
            continue
        text = str(obj_id)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        box_w, box_h = right - left + 2, bottom - top + 2
        x = int(min(cols.min(), max(width - box_w, 0)))
        y = int(min(rows.min(), max(height - box_h, 0)))
        draw.rectangle((x, y, x + box_w - 1, y + box_h - 1), fill=object_color(obj_id))
        draw.text((x + 1 - left, y + 1 - top), text, fill=(255, 255, 255), font=font)
    return np.asarray(canvas)


def overlay_masks(
    image: Any,
    masks: MaskInput,
    *,
    alpha: float = 0.5,
    outline: int = 2,
    draw_ids: bool = True,
) -> np.ndarray:
    """Render `masks` over an (H, W, 3) uint8 RGB `image`; returns a new (H, W, 3) uint8 array.

    Args:
        image: the frame (numpy array or PIL image).
        masks: `{obj_id: (H, W) mask}` or an (H, W) label map (see the module docstring).
        alpha: opacity of the mask colour inside each mask (0 = invisible, 1 = opaque).
        outline: outline thickness in pixels (0: no outline).
        draw_ids: write each object id next to its mask.
    """
    frame = as_rgb_frame(image, what="image")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must be in [0, 1], got {alpha}")
    mask_dict = _as_mask_dict(masks, (frame.shape[0], frame.shape[1]))
    output = frame.astype(np.float32)
    for obj_id, mask in sorted(mask_dict.items(), reverse=True):
        color = np.asarray(object_color(obj_id), dtype=np.float32)
        output[mask] = (1.0 - alpha) * output[mask] + alpha * color
        if outline > 0:
            output[mask_outline(mask, outline)] = color
    rendered = np.clip(np.rint(output), 0, 255).astype(np.uint8)
    return _draw_labels(rendered, mask_dict) if draw_ids else rendered


def save_overlay_png(path: str | Path, image: Any, masks: MaskInput, **options: Any) -> Path:
    """Render `masks` over `image` (see `overlay_masks`, which takes the same `options`) and
    save it as a PNG (parent folders are created, written atomically). Returns the path."""
    return write_png(path, overlay_masks(image, masks, **options))


def _default_codec(path: Path) -> str:
    return "libvpx-vp9" if path.suffix.lower() == ".webm" else "libx264"


class VideoWriter(Closing):
    """Encode frames into a video file one at a time (streaming: nothing is buffered here).

    Args:
        path: output file; the container follows the extension (.mp4, .mkv, .mov, .webm).
        fps: frame rate (e.g. 24 or 29.97).
        codec: FFmpeg encoder; default `libx264` (`libvpx-vp9` for .webm).
        crf: constant rate factor for libx264/VP9 quality (lower = better; 18 is visually
            lossless-ish, 23 is libx264's default).
        options: extra encoder options (strings), e.g. {"preset": "slow"}.
    The frame size is fixed by the first frame; later frames must match it. Use as a context
    manager, or call `close()` to flush the encoder and finish the file. The video is encoded
    under a temporary name and renamed to `path` by `close()`, so `path` is always a complete
    video; when writing fails (disk full, ...) the partial file is removed and `MaskletError`
    names the problem.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        *,
        codec: str | None = None,
        crf: int = 18,
        options: Mapping[str, str] | None = None,
    ) -> None:
        if fps <= 0:
            raise InputError(f"fps must be > 0, got {fps}")
        self.path = Path(path)
        self.fps = fps
        self.codec = codec or _default_codec(self.path)
        self._options = {"crf": str(crf), **dict(options or {})}
        if self.codec == "libx264":
            self._options.setdefault("preset", "veryfast")
        self.frames_written = 0
        self._frame_shape: tuple[int, ...] | None = None
        self._container: Any = None
        self._stream: Any = None
        self._file: AtomicFile | None = None

    def write(self, frame: Any) -> None:
        """Encode one (H, W, 3) uint8 RGB frame (numpy array or PIL image)."""
        rgb = as_rgb_frame(frame, what=f"frame {self.frames_written}")
        if self._frame_shape is None:
            self._open(rgb.shape[0], rgb.shape[1])
            self._frame_shape = rgb.shape
        elif rgb.shape != self._frame_shape:
            raise InputError(
                f"frame {self.frames_written} has shape {rgb.shape} but the video is "
                f"{self._frame_shape}: all frames must have the same size"
            )
        padded = _pad_to_even(rgb)
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="rgb24")
        self._encode(video_frame)
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and finish the file (a writer that got no frame writes nothing)."""
        if self._container is None or self._file is None:
            return
        self._encode(None)
        container, self._container = self._container, None
        try:
            container.close()
        except (av.error.FFmpegError, OSError) as error:
            self._file.discard()
            raise write_failure(self.path, error) from error
        self._file.commit()

    def _encode(self, frame: av.VideoFrame | None) -> None:
        """Encode and mux one frame (None: flush); on failure drop the partial file."""
        try:
            self._mux(self._stream.encode(frame))
        except (av.error.FFmpegError, OSError) as error:
            self._abandon()
            raise write_failure(self.path, error) from error

    def _abandon(self) -> None:
        """Close the container without finishing it and remove the partial file."""
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(av.error.FFmpegError, OSError):
                container.close()
        if self._file is not None:
            self._file.discard()

    def _open(self, height: int, width: int) -> None:
        self._file = AtomicFile(self.path)
        rate = Fraction(self.fps).limit_denominator(1001)
        try:
            self._container = av.open(str(self._file.temporary), mode="w")
            self._stream = self._container.add_stream(self.codec, rate=rate)
        except (av.error.FFmpegError, OSError, ValueError) as error:
            self._abandon()
            raise InputError(
                f"cannot write video {self.path} with {self.codec}: {error}"
            ) from error
        self._stream.width = width + width % 2
        self._stream.height = height + height % 2
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = self._options

    def _mux(self, packets: Any) -> None:
        for packet in packets:
            self._container.mux(packet)


def _pad_to_even(frame: np.ndarray) -> np.ndarray:
    """Pad an (H, W, 3) frame by one replicated row/column where H/W is odd."""
    pad_rows, pad_cols = frame.shape[0] % 2, frame.shape[1] % 2
    if not pad_rows and not pad_cols:
        return frame
    return np.pad(frame, ((0, pad_rows), (0, pad_cols), (0, 0)), mode="edge")
