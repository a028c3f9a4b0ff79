"""One image loader and the io writers moved out of cli/bench/eval: label images read through
`masklet.io.pil_images`, photos of the synthetic benchmark, DAVIS sequences, ranked masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from masklet.bench.photos import classify_photo, load_rgb, load_silhouette
from masklet.errors import InputError
from masklet.eval.evaluator import read_label_png
from masklet.io.davis import list_davis_sequences, write_davis_sequence, write_image_set
from masklet.io.masks import (
    read_indexed_png,
    read_png_palette,
    voc_palette,
    write_binary_png,
    write_ranked_masks,
)
from masklet.io.pil_images import read_image_file, read_label_values

ORIENTATION_TAG = 0x0112


def save_rotated(path: Path, pixels: np.ndarray, orientation: int = 6) -> Path:
    """Save `pixels` as stored data with an EXIF orientation (6: shown turned 90° clockwise)."""
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    Image.fromarray(pixels).save(path, exif=exif.tobytes())
    return path


def test_label_values_keep_palette_indices(tmp_path: Path) -> None:
    labels = np.array([[0, 1, 2], [255, 7, 1]], dtype=np.uint8)
    image = Image.fromarray(labels, mode="P")
    image.putpalette([255, 255, 255] * 256)  # every index shows white: values must stay raw
    image.save(tmp_path / "indexed.png")
    np.testing.assert_array_equal(read_label_values(tmp_path / "indexed.png"), labels)
    result = read_label_png(tmp_path / "indexed.png")
    assert result.dtype == np.int64
    np.testing.assert_array_equal(result, labels)


def test_label_values_take_grey_colour_images_only(tmp_path: Path) -> None:
    grey = np.repeat(np.array([[0, 3], [3, 0]], np.uint8)[:, :, None], 3, axis=2)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_label_png(tmp_path / "grey.png"), grey[:, :, 0])
    colour = grey.copy()
    colour[0, 0] = (1, 2, 3)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(InputError, match=r"colour\.png is a RGB colour image"):
        read_label_png(tmp_path / "colour.png")
    sixteen = np.array([[0, 300], [65535, 2]], dtype=np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "sixteen.png")
    np.testing.assert_array_equal(read_label_png(tmp_path / "sixteen.png"), sixteen)
    with pytest.raises(InputError, match=r"mask not found: .*missing\.png"):
        read_label_png(tmp_path / "missing.png")


def test_label_images_are_read_upright(tmp_path: Path) -> None:
    labels = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    path = save_rotated(tmp_path / "rotated.png", labels)
    np.testing.assert_array_equal(read_label_png(path), np.rot90(labels, k=-1))
    np.testing.assert_array_equal(read_indexed_png(path)[0], np.rot90(labels, k=-1))


def test_draft_decodes_a_large_jpeg_smaller(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (800, 1200, 3), np.uint8)).save(tmp_path / "big.jpg")
    full = read_image_file(tmp_path / "big.jpg", lambda image: image.size)
    drafted = read_image_file(tmp_path / "big.jpg", lambda image: image.size, draft_size=(256, 256))
    assert full == (1200, 800) and drafted == (600, 400)  # 1/2 scale: both sides >= 256


def test_benchmark_photos_go_through_the_loader(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 255, (200, 300, 3), np.uint8)
    path = save_rotated(tmp_path / "photo.jpg", photo)
    assert load_rgb(path).size == (200, 300)  # displayed upright: width and height swapped
    assert load_rgb(path, max_side=100).size == (67, 100)
    assert classify_photo(path) == "background"
    (tmp_path / "junk.jpg").write_bytes(b"not a jpeg")
    assert classify_photo(tmp_path / "junk.jpg") is None
    with pytest.raises(InputError, match=r"junk\.jpg"):
        load_rgb(tmp_path / "junk.jpg")
    with pytest.raises(InputError, match="no clean object silhouette"):
        load_silhouette(path)


def test_silhouette_from_an_alpha_image(tmp_path: Path) -> None:
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[10:30, 20:35] = (200, 10, 10, 255)
    Image.fromarray(rgba).save(tmp_path / "object.png")
    assert classify_photo(tmp_path / "object.png") == "silhouette"
    silhouette = load_silhouette(tmp_path / "object.png", margin=2)
    assert silhouette.alpha.shape == (24, 19) and silhouette.rgb is not None
    assert silhouette.rgb[5, 5].tolist() == [200, 10, 10]


def test_davis_sequences_round_trip(tmp_path: Path) -> None:
    frames = [np.full((8, 10, 3), value, np.uint8) for value in (0, 128)]
    labels = [np.zeros((8, 10), np.uint8), np.eye(8, 10, dtype=np.uint8) * 2]
    write_davis_sequence(tmp_path, "seq", frames, labels, jpeg_quality=95)
    write_davis_sequence(tmp_path, "other", frames[:1], labels[:1])
    saved, palette = read_indexed_png(tmp_path / "Annotations" / "480p" / "seq" / "00001.png")
    np.testing.assert_array_equal(saved, labels[1])
    assert palette is not None and np.array_equal(palette[:3], voc_palette()[:3])
    frame = np.asarray(Image.open(tmp_path / "JPEGImages" / "480p" / "seq" / "00001.jpg"))
    assert abs(int(frame.mean()) - 128) <= 1
    assert list_davis_sequences(tmp_path) == ["other", "seq"]
    write_image_set(tmp_path, ["seq"])
    assert list_davis_sequences(tmp_path) == ["seq"]
    assert list_davis_sequences(tmp_path, "other, seq") == ["other", "seq"]
    with pytest.raises(InputError, match="no annotations for sequence nope"):
        list_davis_sequences(tmp_path, "nope")
    with pytest.raises(InputError, match="not a DAVIS-layout dataset"):
        list_davis_sequences(tmp_path / "JPEGImages")
    with pytest.raises(InputError, match="2 frames but 1 label maps"):
        write_davis_sequence(tmp_path, "bad", frames, labels[:1])


def test_ranked_masks(tmp_path: Path) -> None:
    first = np.zeros((4, 5), bool)
    first[:2] = True
    second = np.zeros((4, 5), bool)
    second[1:] = True
    names = write_ranked_masks(tmp_path, [first, second])
    assert names == ["masks/mask_000.png", "masks/mask_001.png"]
    written = np.asarray(Image.open(tmp_path / names[1]))
    assert written.dtype == np.uint8 and set(np.unique(written)) == {0, 255}
    np.testing.assert_array_equal(written == 255, second)
    assert write_ranked_masks(tmp_path, [first, second], label_png=True) == ["labels.png"] * 2
    labels = np.asarray(Image.open(tmp_path / "labels.png"))
    assert labels[:, 0].tolist() == [1, 1, 2, 2]  # the first (higher-ranked) mask wins row 1
    write_binary_png(tmp_path / "one.png", np.eye(3) * 0.5)
    assert np.asarray(Image.open(tmp_path / "one.png")).tolist()[0] == [255, 0, 0]


def test_read_png_palette(tmp_path: Path) -> None:
    image = Image.fromarray(np.zeros((2, 2), np.uint8), mode="P")
    image.putpalette([9, 8, 7] * 256)
    image.save(tmp_path / "indexed.png")
    palette = read_png_palette(tmp_path / "indexed.png")
    assert palette is not None and palette.shape == (256, 3) and palette[5].tolist() == [9, 8, 7]
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "grey.png")
    assert read_png_palette(tmp_path / "grey.png") is None
