"""Overlay rendering and the streaming H.264 writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from masklet.errors import InputError
from masklet.io import (
    VideoFileSource,
    VideoWriter,
    mask_outline,
    object_color,
    overlay_masks,
    probe_video,
    save_overlay_png,
)

H, W = 40, 60


def gray_image(value: int = 100) -> np.ndarray:
    return np.full((H, W, 3), value, dtype=np.uint8)


def rect(top: int, left: int, bottom: int, right: int) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def test_mask_outline_ring() -> None:
    mask = rect(10, 10, 20, 30)
    outline = mask_outline(mask, thickness=2)
    expected = mask & ~rect(12, 12, 18, 28)
    np.testing.assert_array_equal(outline, expected)
    edge = mask_outline(rect(0, 0, 5, W), thickness=1)  # touches the top, left, right edges
    np.testing.assert_array_equal(edge, rect(4, 0, 5, W))


def test_overlay_blends_colour_inside_and_keeps_outside() -> None:
    image = gray_image(100)
    mask = rect(10, 10, 30, 40)
    out = overlay_masks(image, {1: mask}, alpha=0.25, outline=1, draw_ids=False)
    color = np.asarray(object_color(1), dtype=np.float64)
    inside = np.rint(0.75 * 100 + 0.25 * color).astype(np.uint8)
    np.testing.assert_array_equal(out[20, 20], inside)
    np.testing.assert_array_equal(out[10, 20], color.astype(np.uint8))  # outline, opaque
    np.testing.assert_array_equal(out[~mask], image[~mask])
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert not np.shares_memory(out, image)


def test_overlay_smallest_id_on_top_and_input_forms() -> None:
    first, second = rect(5, 5, 25, 25), rect(15, 15, 35, 35)
    out = overlay_masks(gray_image(), {2: second, 1: first}, alpha=1.0, outline=0, draw_ids=False)
    np.testing.assert_array_equal(out[20, 20], object_color(1))
    np.testing.assert_array_equal(out[30, 30], object_color(2))
    labels = np.zeros((H, W), np.uint8)
    labels[second] = 2
    labels[first] = 1
    from_labels = overlay_masks(gray_image(), labels, alpha=1.0, outline=0, draw_ids=False)
    np.testing.assert_array_equal(from_labels, out)
    logits = np.where(first, 3.5, -2.0)[None]  # (1, H, W) logits as predictors return them
    from_logits = overlay_masks(gray_image(), {1: logits}, alpha=1.0, outline=0, draw_ids=False)
    np.testing.assert_array_equal(from_logits[first], np.broadcast_to(object_color(1), (400, 3)))


def test_overlay_draws_ids_near_the_mask() -> None:
    masks = {7: rect(20, 30, 38, 58)}
    plain = overlay_masks(gray_image(), masks, draw_ids=False)
    labelled = overlay_masks(gray_image(), masks, draw_ids=True)
    changed_rows, changed_cols = np.nonzero((plain != labelled).any(axis=2))
    assert changed_rows.size > 0
    assert changed_rows.min() >= 20 and changed_cols.min() >= 30  # at the box's top-left corner
    assert changed_rows.max() < 38 and changed_cols.max() < 50
    empty = overlay_masks(gray_image(), {3: np.zeros((H, W), bool)})
    np.testing.assert_array_equal(empty, gray_image())


def test_overlay_errors() -> None:
    with pytest.raises(InputError, match="expected"):
        overlay_masks(gray_image(), {1: np.zeros((H + 1, W), bool)})
    with pytest.raises(InputError, match="uint8"):
        overlay_masks(gray_image().astype(np.float32), {})
    with pytest.raises(InputError, match="alpha"):
        overlay_masks(gray_image(), {}, alpha=1.5)


def test_save_overlay_png(tmp_path: Path) -> None:
    masks = {1: rect(5, 5, 20, 20), 4: rect(10, 30, 35, 55)}
    path = save_overlay_png(tmp_path / "out" / "frame.png", gray_image(), masks, alpha=0.4)
    with Image.open(path) as image:
        saved = np.asarray(image.convert("RGB"))
    np.testing.assert_array_equal(saved, overlay_masks(gray_image(), masks, alpha=0.4))


def moving_square(index: int, height: int, width: int) -> np.ndarray:
    frame = np.full((height, width, 3), 40, dtype=np.uint8)
    frame[8:24, 2 + 2 * index : 18 + 2 * index] = (220, 180, 30)
    return frame


def test_video_writer_pads_odd_size_and_round_trips(tmp_path: Path) -> None:
    height, width, count = 47, 63, 12
    frames = [moving_square(i, height, width) for i in range(count)]
    path = tmp_path / "sub" / "out.mp4"
    with VideoWriter(path, fps=12) as writer:
        for frame in frames:
            writer.write(frame)
        assert writer.frames_written == count
    info = probe_video(path)
    assert (info.frames, info.width, info.height, info.codec) == (count, 64, 48, "h264")
    assert info.fps == pytest.approx(12)
    with VideoFileSource(path) as source:
        for index in (0, 5, 11):
            decoded = source.get(index)[:height, :width].astype(np.int16)
            assert np.abs(decoded - frames[index]).mean() < 3.0


def test_video_writer_webm_and_fractional_fps(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "out.webm", fps=29.97) as writer:
        for index in range(3):
            writer.write(Image.fromarray(moving_square(index, 32, 32)))
    info = probe_video(tmp_path / "out.webm")
    assert (info.frames, info.codec) == (3, "vp9")
    assert info.fps == pytest.approx(29.97, abs=0.01)


def test_video_writer_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="fps"):
        VideoWriter(tmp_path / "a.mp4", fps=0)
    writer = VideoWriter(tmp_path / "b.mp4", fps=10)
    writer.write(moving_square(0, 32, 32))
    with pytest.raises(InputError, match="same size"):
        writer.write(moving_square(0, 34, 32))
    with pytest.raises(InputError, match="uint8"):
        writer.write(np.zeros((32, 32, 3), np.float64))
    writer.close()
    assert probe_video(tmp_path / "b.mp4").frames == 1
    with pytest.raises(InputError, match="no-such-codec"):
        VideoWriter(tmp_path / "c.mp4", fps=10, codec="no-such-codec").write(
            moving_square(0, 32, 32)
        )
