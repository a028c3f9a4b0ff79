"""Still images as a viewer shows them: EXIF orientation, every PIL mode, frame-folder sizes,
the bad-file corpus (one-line `InputError` naming the file), and `masklet segment` on a
rotated photo. Tiny images everywhere; the model runs are a random-weights model at 64 px.
"""

from __future__ import annotations

import json
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

import masklet.cli
from masklet.build import build_sam2
from masklet.cli.prompt_spec import ObjectPrompt, load_mask
from masklet.cli.segment import mask_input_logits
from masklet.errors import InputError
from masklet.io import as_rgb_frame
from masklet.io.image_folder import ImageFolderSource, load_rgb_image
from masklet.io.pil_images import read_mask_values
from masklet.predictors.image import SAM2ImagePredictor

pytestmark = pytest.mark.usefixtures("one_thread")

NEW_COMMANDS = ("masklet.cli.track", "masklet.cli.segment", "masklet.cli.info")
MODEL_ARGS = ("--image-size", "64", "--dtype", "float32", "--device", "cpu")

#: Stored pixels -> displayed pixels for each EXIF orientation, written from the EXIF
#: specification (not from PIL): 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
#: 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
DISPLAYED: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, k=1),
}
#: Displayed pixels -> stored pixels (the inverse of DISPLAYED), to make rotated files.
STORED: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    **DISPLAYED,
    6: lambda a: np.rot90(a, k=1),
    8: lambda a: np.rot90(a, k=-1),
}


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> None:
    modules = tuple(dict.fromkeys(masklet.cli.COMMAND_MODULES + NEW_COMMANDS))
    monkeypatch.setattr(masklet.cli, "COMMAND_MODULES", modules)


@pytest.fixture
def no_warnings() -> Iterator[None]:
    """Any warning (PIL palette/transparency, decompression bomb) fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def random_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def save_with_orientation(path: Path, pixels: np.ndarray, orientation: int) -> Path:
    """Save `pixels` ((H, W, 3) or (H, W[, 1]) uint8) as stored data with an EXIF orientation
    tag (none when 1)."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(pixels)).save(path, exif=exif)
    return path


def write_png16(path: Path, values: np.ndarray) -> Path:
    """A 16-bit PNG (grey for (H, W), RGB for (H, W, 3)) written by hand: PIL cannot write
    16-bit colour."""
    height, width = values.shape[:2]
    colour_type = 2 if values.ndim == 3 else 0
    rows = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


# --- orientation ----------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_displayed_pixels_and_size(
    tmp_path: Path, orientation: int, no_warnings: None
) -> None:
    stored = random_rgb(4, 6)  # H=4, W=6: non-square, so a wrong turn shows in the shape
    plain = save_with_orientation(tmp_path / "plain.jpg", stored, 1)
    rotated = save_with_orientation(tmp_path / "rotated.jpg", stored, orientation)
    expected = DISPLAYED[orientation](load_rgb_image(plain))  # same JPEG data, no tag
    image = load_rgb_image(rotated)
    assert image.shape == expected.shape and image.dtype == np.uint8
    np.testing.assert_array_equal(image, expected)
    with Image.open(rotated) as opened:  # an in-memory PIL image is turned the same way
        np.testing.assert_array_equal(as_rgb_frame(opened), expected)
    with Image.open(rotated) as opened:  # already turned by the user: not turned twice
        np.testing.assert_array_equal(as_rgb_frame(ImageOps.exif_transpose(opened)), expected)


def test_png_exif_orientation_is_applied(tmp_path: Path) -> None:
    displayed = random_rgb(5, 3)
    path = save_with_orientation(tmp_path / "rotated.png", STORED[6](displayed), 6)
    np.testing.assert_array_equal(load_rgb_image(path), displayed)


# --- modes ----------------------------------------------------------------------------------


def _palette_image(transparency: int | bytes | None) -> Image.Image:
    image = Image.fromarray(np.array([[0, 1], [2, 1]], dtype=np.uint8), mode="P")
    image.putpalette([10, 20, 30, 200, 100, 50, 0, 255, 0])
    if transparency is not None:
        image.info["transparency"] = transparency
    return image


PALETTE_RGB = np.array([[[10, 20, 30], [200, 100, 50]], [[0, 255, 0], [200, 100, 50]]], np.uint8)


def _mode_cases() -> list[tuple[str, Callable[[Path], Path], np.ndarray]]:
    grey = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    rgba = np.array([[[1, 2, 3, 0], [4, 5, 6, 255]]], dtype=np.uint8)
    la = np.array([[[7, 0], [9, 128]]], dtype=np.uint8)
    sixteen = np.array([[0, 257, 65535], [32896, 128, 129]], dtype=np.uint16)
    colour16 = np.array([[[65535, 257, 32768], [255, 256, 511]]], dtype=np.uint16)
    int32 = np.array([[-5, 65535, 70000, 32896]], dtype=np.int32)

    def save(name: str, image: Image.Image) -> Callable[[Path], Path]:
        def write(folder: Path) -> Path:
            image.save(folder / name)
            return folder / name

        return write

    def repeat(values: np.ndarray) -> np.ndarray:
        return np.repeat(values[:, :, None], 3, axis=2).astype(np.uint8)

    return [
        ("L", save("l.png", Image.fromarray(grey)), repeat(grey)),
        ("1", save("one.png", Image.fromarray(grey > 150)), repeat((grey > 150) * 255)),
        ("RGBA", save("rgba.png", Image.fromarray(rgba)), rgba[:, :, :3]),
        ("LA", save("la.png", Image.fromarray(la, mode="LA")), repeat(la[:, :, 0])),
        ("P", save("p.png", _palette_image(None)), PALETTE_RGB),
        ("P+transparency index", save("pt.png", _palette_image(1)), PALETTE_RGB),
        ("P+transparency bytes", save("pb.png", _palette_image(b"\x00\x80")), PALETTE_RGB),
        ("I;16", lambda folder: write_png16(folder / "g16.png", sixteen),
         repeat(np.array([[0, 1, 255], [128, 0, 1]]))),
        ("RGB 16-bit", lambda folder: write_png16(folder / "c16.png", colour16),
         np.array([[[255, 1, 128], [0, 1, 1]]], np.uint8)),
        ("I", save("i32.tif", Image.fromarray(int32)), repeat(np.array([[0, 255, 255, 128]]))),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "write", "expected"), _mode_cases(), ids=[case[0] for case in _mode_cases()]
)
def test_every_mode_converts_to_rgb_uint8(
    tmp_path: Path,
    mode: str,
    write: Callable[[Path], Path],
    expected: np.ndarray,
    no_warnings: None,
) -> None:
    path = write(tmp_path)
    image = load_rgb_image(path)
    assert image.dtype == np.uint8 and image.shape == expected.shape
    np.testing.assert_array_equal(image, expected)
    with Image.open(path) as opened:
        np.testing.assert_array_equal(as_rgb_frame(opened), expected)


def test_cmyk_jpeg_converts(tmp_path: Path, no_warnings: None) -> None:
    cmyk = np.zeros((16, 32, 4), dtype=np.uint8)
    cmyk[:, :16, 0] = 255  # cyan -> (0, 255, 255)
    cmyk[:, 16:, 3] = 255  # black -> (0, 0, 0)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    image = load_rgb_image(tmp_path / "cmyk.jpg").astype(int)
    assert image.shape == (16, 32, 3)
    assert np.abs(image[4:12, 2:12] - (0, 255, 255)).max() <= 8
    assert np.abs(image[4:12, 20:30]).max() <= 8


def test_mask_values_keep_labels_and_turn_upright(tmp_path: Path) -> None:
    labels = np.zeros((4, 6), dtype=np.uint8)
    labels[0, :2] = 2
    labels[3, 5] = 7
    rotated = save_with_orientation(tmp_path / "labels.png", labels[:, :, None].repeat(3, 2), 6)
    np.testing.assert_array_equal(read_mask_values(rotated), np.rot90(labels, k=-1))
    indexed = Image.fromarray(labels, mode="P")
    indexed.putpalette([0, 0, 0, 255, 0, 0] * 4)
    indexed.save(tmp_path / "indexed.png")
    np.testing.assert_array_equal(read_mask_values(tmp_path / "indexed.png"), labels)
    alpha = np.zeros((4, 6, 4), dtype=np.uint8)
    alpha[..., 3] = 255  # opaque black: background (alpha is not the mask)
    alpha[1, 1, 1] = 9
    Image.fromarray(alpha).save(tmp_path / "rgba.png")
    assert np.argwhere(read_mask_values(tmp_path / "rgba.png")).tolist() == [[1, 1]]


def test_mask_prompts_are_read_in_the_displayed_frame(tmp_path: Path) -> None:
    displayed = np.zeros((6, 4), dtype=np.uint8)
    displayed[1:3, 0:2] = 255
    path = save_with_orientation(tmp_path / "mask.png", STORED[8](displayed[:, :, None]), 8)
    prompt = ObjectPrompt(0, 1, mask_path=path, origin="--prompt 'mask=mask.png'")
    np.testing.assert_array_equal(load_mask(prompt, 6, 4), displayed > 0)
    assert mask_input_logits(path, (6, 4), 64).shape == (1, 16, 16)
    with pytest.raises(InputError, match="is 4x6, the image is 6x4"):
        mask_input_logits(path, (4, 6), 64)


# --- frame folders --------------------------------------------------------------------------


def test_frame_folder_reports_displayed_size(tmp_path: Path) -> None:
    displayed = [random_rgb(6, 4, seed) for seed in range(3)]
    save_with_orientation(tmp_path / "00000.jpg", STORED[6](displayed[0]), 6)
    Image.fromarray(displayed[1]).save(tmp_path / "00001.png")  # stored upright, no tag
    save_with_orientation(tmp_path / "00002.png", STORED[8](displayed[2]), 8)
    with ImageFolderSource(tmp_path) as source:
        assert (source.width, source.height) == (4, 6)
        assert [frame.shape for frame in source] == [(6, 4, 3)] * 3
        np.testing.assert_array_equal(source[1], displayed[1])
        np.testing.assert_array_equal(source[2], displayed[2])


def test_frame_folder_with_one_frame_of_another_size(tmp_path: Path) -> None:
    Image.fromarray(random_rgb(6, 4)).save(tmp_path / "00000.png")
    save_with_orientation(tmp_path / "00001.png", random_rgb(6, 4), 6)  # shown 6 wide, 4 high
    with ImageFolderSource(tmp_path) as source:
        source.get(0)
        with pytest.raises(InputError) as caught:
            source.get(1)
    message = str(caught.value)
    assert "00001.png" in message and "is 6x4" in message
    assert "first frame (00000.png) is 4x6" in message


def test_frame_folder_stops_at_a_corrupt_frame_naming_it(tmp_path: Path) -> None:
    for index in range(2):
        Image.fromarray(random_rgb(8, 8, index)).save(tmp_path / f"{index:05d}.jpg")
    (tmp_path / "00002.jpg").write_bytes((tmp_path / "00001.jpg").read_bytes()[:200])
    with ImageFolderSource(tmp_path) as source:
        assert len(source) == 3 and source[1].shape == (8, 8, 3)
        with pytest.raises(InputError, match=r"cannot read image .*00002\.jpg: .*truncated"):
            source.get(2)


def test_empty_folder_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no frames here")
    with pytest.raises(InputError, match=r"contains no \.jpg/\.jpeg/\.png frames"):
        ImageFolderSource(tmp_path)


# --- bad files ------------------------------------------------------------------------------


def _bad_files(folder: Path) -> list[tuple[Path, str]]:
    Image.fromarray(random_rgb(32, 32)).save(folder / "good.jpg", quality=90)
    Image.fromarray(random_rgb(32, 32)).save(folder / "good.png")
    (folder / "text.jpg").write_text("this is not a JPEG\n")
    (folder / "empty.png").write_bytes(b"")
    for name in ("good.jpg", "good.png"):
        data = (folder / name).read_bytes()
        (folder / f"cut{Path(name).suffix}").write_bytes(data[: len(data) * 2 // 3])
    (folder / "a folder.png").mkdir()
    return [
        (folder / "text.jpg", "not an image file"),
        (folder / "empty.png", "not an image file"),
        (folder / "cut.jpg", "truncated"),
        (folder / "cut.png", "truncated"),
        (folder / "missing.png", "image not found"),
        (folder / "a folder.png", "is a folder, not an image file"),
    ]


def test_bad_image_files_give_one_line_naming_the_file(tmp_path: Path) -> None:
    for path, problem in _bad_files(tmp_path):
        with pytest.raises(InputError) as caught:
            load_rgb_image(path)
        message = str(caught.value)
        assert problem in message and str(path) in message and "\n" not in message, message


def test_bad_images_in_segment_exit_2(
    cli: None, tmp_path: Path, random_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ["--checkpoint", str(random_checkpoint), *MODEL_ARGS, "--out", str(tmp_path / "o")]
    for path, problem in _bad_files(tmp_path):
        for command in (["segment", str(path), "--point", "1,1"], ["auto", str(path)]):
            assert masklet.cli.main([*command, *model]) == 2, command
            error = capsys.readouterr().err.strip()
            assert error.startswith("masklet: error: ") and "\n" not in error, error
            assert problem in error and str(path) in error, error


def test_decompression_bomb_limit_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.fromarray(random_rgb(40, 40)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 700)  # 1600 pixels > 2 x 700: refused
    with pytest.raises(InputError, match=r"cannot read image .*big\.png: .*exceeds limit"):
        load_rgb_image(tmp_path / "big.png")


def test_48_megapixel_photo_loads_without_warnings(tmp_path: Path, no_warnings: None) -> None:
    Image.new("RGB", (8000, 6000), (30, 60, 90)).save(tmp_path / "big.jpg", quality=50)
    image = load_rgb_image(tmp_path / "big.jpg")
    assert image.shape == (6000, 8000, 3) and image.dtype == np.uint8
    assert np.abs(image[3000, 4000].astype(int) - (30, 60, 90)).max() <= 2


# --- the image predictor and `masklet segment` ----------------------------------------------


@pytest.fixture(scope="module")
def tiny_predictor(random_checkpoint: Path) -> SAM2ImagePredictor:
    return SAM2ImagePredictor(build_sam2(checkpoint=random_checkpoint, image_size=64))


def test_predictor_takes_an_odd_sized_rotated_16_bit_pil_image(
    tmp_path: Path, tiny_predictor: SAM2ImagePredictor
) -> None:
    displayed = np.random.default_rng(1).integers(0, 65536, (61, 97), dtype=np.uint16)
    rotated = Image.fromarray(np.ascontiguousarray(np.rot90(displayed, k=-1)))  # I;16, stored
    exif = Image.Exif()
    exif[0x0112] = 8  # shown turned 90 degrees counter-clockwise
    rotated.info["exif"] = exif.tobytes()
    assert rotated.mode == "I;16" and rotated.size == (61, 97)
    scaled = ((displayed.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    with torch.inference_mode():
        tiny_predictor.set_image(rotated)
        masks, scores, _ = tiny_predictor.predict(
            point_coords=np.array([[90.0, 5.0]]), point_labels=np.array([1])
        )
        tiny_predictor.set_image(np.repeat(scaled[:, :, None], 3, axis=2))
        expected, _, _ = tiny_predictor.predict(
            point_coords=np.array([[90.0, 5.0]]), point_labels=np.array([1])
        )
    assert masks.shape == (3, 61, 97) and scores.shape == (3,)
    np.testing.assert_array_equal(masks, expected)


def _segment(image: Path, out: Path, checkpoint: Path, *extra: str) -> np.ndarray:
    args = ["segment", str(image), "--point", "20,9", "--out", str(out), *extra]
    assert masklet.cli.main([*args, "--checkpoint", str(checkpoint), *MODEL_ARGS]) == 0
    assert json.loads((out / "scores.json").read_text())["points"] == [[20.0, 9.0]]
    return np.asarray(Image.open(out / "mask.png"))


def test_segment_on_a_rotated_photo_works_in_displayed_coordinates(
    cli: None, tmp_path: Path, random_checkpoint: Path
) -> None:
    displayed = random_rgb(61, 97, seed=3)  # odd sizes on purpose
    displayed[4:20, 10:40] = (230, 30, 30)
    upright = save_with_orientation(tmp_path / "upright.png", displayed, 1)
    rotated = save_with_orientation(tmp_path / "rotated.png", STORED[6](displayed), 6)
    mask_in = np.zeros((61, 97), dtype=np.uint8)
    mask_in[4:20, 10:40] = 255
    rough = save_with_orientation(tmp_path / "rough.png", STORED[6](mask_in[:, :, None]), 6)
    expected = _segment(upright, tmp_path / "a", random_checkpoint)
    assert expected.shape == (61, 97) and set(np.unique(expected)) <= {0, 255}
    np.testing.assert_array_equal(_segment(rotated, tmp_path / "b", random_checkpoint), expected)
    with_mask = _segment(rotated, tmp_path / "c", random_checkpoint, "--mask-in", str(rough))
    assert with_mask.shape == (61, 97)
    jpeg = save_with_orientation(tmp_path / "rotated.jpg", STORED[6](displayed), 6)
    assert _segment(jpeg, tmp_path / "d", random_checkpoint).shape == (61, 97)
    overlay = np.asarray(Image.open(tmp_path / "d" / "overlay.png"))
    assert overlay.shape == (61, 97, 3)


def test_track_stops_at_a_corrupt_frame_keeping_earlier_masks(
    cli: None, tmp_path: Path, random_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(3):
        Image.fromarray(random_rgb(40, 48, index)).save(frames / f"{index:05d}.jpg")
    (frames / "00003.jpg").write_text("not a frame")
    out = tmp_path / "out"
    args = ["track", str(frames), "--prompt", "point=10:10", "--out", str(out)]
    assert masklet.cli.main([*args, "--checkpoint", str(random_checkpoint), *MODEL_ARGS]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("masklet: error: cannot read image ") and "00003.jpg" in error
    written = sorted(path.name for path in out.glob("*.png"))
    assert written == ["00000.png", "00001.png", "00002.png"]
    for name in written:
        assert np.asarray(Image.open(out / name)).shape == (40, 48)
