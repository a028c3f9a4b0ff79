"""Synthetic VOS benchmark generator: determinism, events, layout, errors and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import masklet.cli
from masklet.bench.config import SyntheticVideoConfig
from masklet.bench.photos import PhotoLibrary
from masklet.bench.synthetic import make_synthetic_dataset, make_synthetic_video
from masklet.errors import ConfigError, InputError
from masklet.io.masks import voc_palette

DATA = Path(__file__).parent / "data"
PHOTOS = DATA / "photos"
SAMPLE = DATA / "synthetic_davis"
# The command recorded in tests/data/synthetic_davis/README.md.
SAMPLE_CONFIG = SyntheticVideoConfig(width=240, height=160, num_frames=10, num_objects=3)
SMALL = SyntheticVideoConfig(width=96, height=64, num_frames=8)


def read_tree(root: Path) -> dict[str, bytes]:
    files = sorted(path for path in root.rglob("*") if path.is_file())
    return {str(path.relative_to(root)): path.read_bytes() for path in files}


def test_photo_library_sorts_backgrounds_and_silhouettes() -> None:
    library = PhotoLibrary.from_folder(PHOTOS)
    assert [p.name for p in library.backgrounds] == ["chelsea.jpg", "coffee.jpg", "rocket.jpg"]
    assert [p.name for p in library.silhouettes] == ["horse.png"]


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    first = make_synthetic_dataset(tmp_path / "a", 2, seed=5, config=SMALL, photos=PHOTOS)
    second = make_synthetic_dataset(tmp_path / "b", 2, seed=5, config=SMALL, photos=PHOTOS)
    assert first == second == ["synth_000", "synth_001"]
    tree = read_tree(tmp_path / "a")
    assert tree == read_tree(tmp_path / "b")
    assert len(tree) == 2 * 2 * 8 + 2  # frames + masks, val.txt, synthetic.json
    make_synthetic_dataset(tmp_path / "c", 2, seed=6, config=SMALL, photos=PHOTOS)
    assert read_tree(tmp_path / "c") != tree


def test_committed_sample_is_reproduced(tmp_path: Path) -> None:
    make_synthetic_dataset(tmp_path, 3, seed=0, config=SAMPLE_CONFIG, photos=PHOTOS)
    committed = sorted((SAMPLE / "Annotations" / "480p").glob("*/*.png"))
    assert len(committed) == 30
    for png in committed:
        regenerated = tmp_path / png.relative_to(SAMPLE)
        np.testing.assert_array_equal(np.array(Image.open(regenerated)), np.array(Image.open(png)))
        frame = png.parent.parent.parent.parent / "JPEGImages" / "480p" / png.parent.name
        jpg = frame / f"{png.stem}.jpg"
        new_jpg = tmp_path / jpg.relative_to(SAMPLE)
        difference = np.abs(np.asarray(Image.open(new_jpg), np.int16) - np.asarray(Image.open(jpg)))
        assert difference.mean() < 1.0  # identical up to JPEG codec versions


def test_every_video_has_the_required_events() -> None:
    library = PhotoLibrary.from_folder(PHOTOS)
    for index in range(3):
        video = make_synthetic_video(library, SAMPLE_CONFIG, seed=0, index=index)
        events = video.events()
        absent = events["1"]["absent_frames"]
        # The target leaves the frame and comes back before the last frame.
        assert absent and min(absent) > 0 and max(absent) < SAMPLE_CONFIG.num_frames - 2
        assert np.any(video.labels[-1] == 1) and np.any(video.labels[0] == 1)
        # The occluder passes in front of the target.
        assert events["1"]["occluded_frames"]
        # All annotated objects are visible in the prompt frame.
        assert set(np.unique(video.labels[0])) == {0, 1, 2, 3}
        # Camera motion: the background moves (compare corners where no object is drawn).
        first, last = video.frames[0].astype(int), video.frames[-1].astype(int)
        background = (video.labels[0] == 0) & (video.labels[-1] == 0)
        assert np.abs(first - last)[background].mean() > 5
        # Scale change: the target's pixel count varies while it is unoccluded.
        areas = video.unoccluded_areas[:, 0]
        visible = areas[areas > 0]
        assert visible.max() > 1.2 * visible.min()


def test_distractor_is_an_unannotated_look_alike() -> None:
    library = PhotoLibrary.from_folder(PHOTOS)
    plain = SyntheticVideoConfig(
        width=160, height=96, num_frames=8, num_distractors=0, noise_std=0, brightness_change=0
    )
    with_twin = SyntheticVideoConfig(
        width=160, height=96, num_frames=8, num_distractors=1, noise_std=0, brightness_change=0
    )
    a = make_synthetic_video(library, plain, seed=1, index=0)
    b = make_synthetic_video(library, with_twin, seed=1, index=0)
    changed_pixels = 0
    for frame_a, frame_b, labels_a, labels_b in zip(
        a.frames, b.frames, a.labels, b.labels, strict=True
    ):
        np.testing.assert_array_equal(labels_a, labels_b)  # drawn beneath annotated objects
        changed = np.any(frame_a != frame_b, axis=-1)
        assert not np.any(changed & (labels_b > 0))
        changed_pixels += int(changed.sum())
    assert changed_pixels > 500
    assert b.sources["distractors"] == [f"look-alike of {b.sources['objects']['1']}"]


def test_written_layout_and_palette(tmp_path: Path) -> None:
    make_synthetic_dataset(tmp_path, 1, seed=2, config=SMALL, photos=PHOTOS)
    mask = Image.open(tmp_path / "Annotations" / "480p" / "synth_000" / "00000.png")
    assert mask.mode == "P" and mask.size == (96, 64)
    palette = voc_palette().reshape(-1).tolist()
    assert palette[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]
    assert palette[255 * 3 : 256 * 3] == [224, 224, 192]
    assert mask.getpalette()[: 3 * 4] == palette[: 3 * 4]
    frame = Image.open(tmp_path / "JPEGImages" / "480p" / "synth_000" / "00007.jpg")
    assert frame.size == (96, 64)
    assert (tmp_path / "ImageSets" / "2017" / "val.txt").read_text() == "synth_000\n"
    info = json.loads((tmp_path / "synthetic.json").read_text())
    assert info["seed"] == 2 and info["config"]["num_frames"] == 8


def test_missing_photos_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError, match=r"fetch-samples\.sh") as error:
        make_synthetic_dataset(tmp_path / "out", 1, photos=tmp_path)
    assert "\n" not in str(error.value)
    monkeypatch.setenv("MASKLET_SAMPLES", str(tmp_path / "missing"))
    with pytest.raises(InputError, match=r"fetch-samples\.sh"):
        make_synthetic_dataset(tmp_path / "out", 1)
    monkeypatch.setenv("MASKLET_SAMPLES", str(PHOTOS))
    assert make_synthetic_dataset(tmp_path / "out", 1, config=SMALL) == ["synth_000"]


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="num_objects"):
        SyntheticVideoConfig(num_objects=1)
    with pytest.raises(ConfigError, match="exit_fraction"):
        SyntheticVideoConfig(exit_fraction=0.9)


@pytest.fixture
def cli_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure `bench` is registered, whatever else COMMAND_MODULES lists."""
    monkeypatch.setattr(masklet.cli, "COMMAND_MODULES", ("masklet.cli.bench",))


@pytest.mark.usefixtures("cli_modules")
def test_cli_make_synthetic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "bench",
        "make-synthetic",
        "--out",
        str(tmp_path / "d"),
        "--videos",
        "1",
        "--seed",
        "3",
        "--photos",
        str(PHOTOS),
        "--frames",
        "8",
        "--width",
        "96",
        "--height",
        "64",
    ]
    assert masklet.cli.main(args) == 0
    assert "wrote 1 videos" in capsys.readouterr().out
    assert len(list((tmp_path / "d" / "Annotations" / "480p" / "synth_000").glob("*.png"))) == 8
    assert masklet.cli.main(["bench"]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = ["bench", "make-synthetic", "--out", str(tmp_path / "e"), "--photos", str(empty)]
    assert masklet.cli.main(bad) == 2
    assert "fetch-samples.sh" in capsys.readouterr().err


def test_leading_frames_are_the_full_videos_first_frames() -> None:
    library = PhotoLibrary.from_folder(PHOTOS)
    full = make_synthetic_video(library, SMALL, 3, 1)
    prefix = make_synthetic_video(library, SMALL, 3, 1, leading_frames=2)
    assert len(prefix.frames) == len(prefix.labels) == 2 and prefix.unoccluded_areas.shape[0] == 2
    for t in range(2):
        np.testing.assert_array_equal(prefix.frames[t], full.frames[t])
        np.testing.assert_array_equal(prefix.labels[t], full.labels[t])
    np.testing.assert_array_equal(prefix.unoccluded_areas, full.unoccluded_areas[:2])
