"""The training data pipeline (`masklet.train.data`): readers on generated folders, the clip
sampler, augmentation, the weighted mix, determinism and the errors a user meets."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pycocotools import mask as coco_mask
from torch.utils.data import DataLoader

import masklet.train.data.synthetic as synthetic_data
from masklet.bench.photos import PhotoLibrary
from masklet.bench.synthetic import make_synthetic_dataset
from masklet.errors import ConfigError, InputError
from masklet.io.davis import write_davis_sequence, write_jpeg
from masklet.io.masks import write_indexed_png, write_object_pngs
from masklet.io.rle import mask_to_rle, mask_to_uncompressed_rle, rle_to_mask
from masklet.io.sav import sav_annotation_from_masks, write_sav_json
from masklet.io.video_writer import VideoWriter
from masklet.train.data import (
    AnnotatedVideo,
    AugmentOptions,
    ClipSampler,
    SampledClip,
    SourceMixer,
    SyntheticSource,
    TrainingData,
    TrainingDataset,
    augment_clip,
    collate_clips,
    open_source,
)
from masklet.train.data.synthetic import SyntheticClipVideo
from masklet.train.types import TrainClip

PHOTOS = Path(__file__).parent / "data" / "photos"
HEIGHT, WIDTH = 24, 32
NO_AUGMENT = AugmentOptions(enabled=False)


def gray_frame(value: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A uniform frame (JPEG keeps its value within a grey level or two)."""
    return np.full((height, width, 3), value, dtype=np.uint8)


def frame_value(t: int) -> int:
    return 10 * t + 5


def square(top: int, left: int, side: int = 6) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


def label_map(t: int) -> np.ndarray:
    """Object 1 on every frame, object 2 from frame 3 on, a void (255) band on the right."""
    labels = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    labels[square(2, t)] = 1
    if t >= 3:
        labels[square(14, 10)] = 2
    labels[:, -3:] = 255
    return labels


def mean_values(clip: TrainClip | SampledClip) -> list[int]:
    images = clip.images if isinstance(clip, TrainClip) else torch.from_numpy(clip.frames)
    return [round(float(frame.float().mean())) for frame in images]


class ToyVideo(AnnotatedVideo):
    """In memory: frame t has value `frame_value(t)`; object 1 is visible on every frame,
    object 2 from frame `late` on, object 3 never."""

    def __init__(
        self, name: str = "toy", length: int = 12, late: int = 5, hidden: bool = False
    ) -> None:
        self.name, self.length, self.late, self.hidden = name, length, late, hidden

    @property
    def num_frames(self) -> int:
        return self.length

    def frame_number(self, position: int) -> int:
        return position

    def visible_objects(self, position: int) -> list[int]:
        if self.hidden:
            return []
        return [1, 2] if position >= self.late else [1]

    def read_masks(self, position: int, obj_ids: Sequence[int]) -> dict[int, np.ndarray]:
        masks = {1: square(2, 2), 2: square(12, 12) if position >= self.late else None}
        return {i: mask for i, mask in masks.items() if i in obj_ids and mask is not None}

    def read_frames(self, positions: Sequence[int]) -> np.ndarray:
        return np.stack([gray_frame(frame_value(p)) for p in positions])


class ToySource:
    """A picklable in-memory source of ToyVideos (or one-frame images)."""

    frames_per_video: int | None = None

    def __init__(self, name: str, count: int = 4, images: bool = False) -> None:
        self.name, self.count, self.images_only = name, count, images

    def __len__(self) -> int:
        return self.count

    def video(self, index: int) -> AnnotatedVideo:
        return ToyVideo(f"v{index}", 1 if self.images_only else 12, late=0)


# -- readers -------------------------------------------------------------------------------


def write_mose(root: Path, sequence: str, count: int) -> None:
    for t in range(count):
        write_jpeg(root / "JPEGImages" / sequence / f"{t:05d}.jpg", gray_frame(frame_value(t)))
        write_indexed_png(root / "Annotations" / sequence / f"{t:05d}.png", label_map(t))


@pytest.mark.parametrize("layout", ["davis", "mose"])
def test_palette_reader_frames_objects_and_void(tmp_path: Path, layout: str) -> None:
    if layout == "davis":
        frames = [gray_frame(frame_value(t)) for t in range(6)]
        write_davis_sequence(tmp_path, "bear", frames, [label_map(t) for t in range(6)])
    else:
        write_mose(tmp_path, "bear", 6)
    source = open_source(layout, str(tmp_path))
    assert len(source) == 1 and source.name == layout
    video = source.video(0)
    assert video.name == "bear" and video.num_frames == 6
    assert video.visible_objects(0) == [1] and video.visible_objects(4) == [1, 2]  # no 255
    masks = video.read_masks(4, [1, 2])
    np.testing.assert_array_equal(masks[1], square(2, 4))
    np.testing.assert_array_equal(masks[2], square(14, 10))
    assert not video.read_masks(0, [2])[2].any()
    frames_read = video.read_frames([3, 1])
    assert frames_read.shape == (2, HEIGHT, WIDTH, 3) and frames_read.dtype == np.uint8
    assert abs(int(frames_read[0].mean()) - frame_value(3)) <= 2
    assert abs(int(frames_read[1].mean()) - frame_value(1)) <= 2


def test_file_list_restricts_sequences(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        write_mose(tmp_path, name, 2)
    (tmp_path / "list.txt").write_text("c\na\n")
    source = open_source("mose", str(tmp_path), file_list=str(tmp_path / "list.txt"))
    assert [source.video(i).name for i in range(len(source))] == ["c", "a"]
    (tmp_path / "bad.txt").write_text("a\nzebra\n")
    with pytest.raises(InputError, match="zebra"):
        open_source("mose", str(tmp_path), file_list=str(tmp_path / "bad.txt"))


def test_per_object_pngs_match_frames_by_stem(tmp_path: Path) -> None:
    for t in range(13):
        write_jpeg(tmp_path / "JPEGImages_24fps" / "sav_1" / f"{t:05d}.jpg", gray_frame(5 * t))
    masks_dir = tmp_path / "Annotations_6fps" / "sav_1"
    for t in (0, 4, 8, 12):
        objects = {0: square(2, t), 3: square(12, 12) if t >= 8 else np.zeros_like(square(0, 0))}
        write_object_pngs(masks_dir, t, objects)
    video = open_source("davis", str(tmp_path)).video(0)
    assert video.num_frames == 4 and [video.frame_number(p) for p in range(4)] == [0, 4, 8, 12]
    assert video.visible_objects(1) == [0] and video.visible_objects(2) == [0, 3]
    np.testing.assert_array_equal(video.read_masks(3, [0, 3])[0], square(2, 12))
    assert abs(int(video.read_frames([2])[0].mean()) - 40) <= 2  # the JPEG of frame 8


def write_sav_video(folder: Path, video_id: str, count: int, as_mp4: bool) -> None:
    frames = [gray_frame(8 * t, 32, 48) for t in range(count)]
    if as_mp4:
        with VideoWriter(folder / f"{video_id}.mp4", fps=24) as writer:
            for frame in frames:
                writer.write(frame)
    else:
        for t, frame in enumerate(frames):
            write_jpeg(folder / video_id / f"{t:05d}.jpg", frame)
    box = np.zeros((32, 48), dtype=bool)
    box[4:12, 4:20] = True
    moved = np.roll(box, 16, axis=0)
    annotated = [{0: box, 1: moved} if k >= 1 else {0: box} for k in range(3)]  # 1 comes later
    write_sav_json(
        folder / f"{video_id}_manual.json",
        sav_annotation_from_masks(video_id, annotated, 32, 48, video_frame_count=count),
    )
    write_sav_json(
        folder / f"{video_id}_auto.json",
        sav_annotation_from_masks(video_id, [{5: box}] * 3, 32, 48, video_frame_count=count),
    )


@pytest.mark.parametrize("as_mp4", [True, False])
def test_sav_reader_every_fourth_frame(tmp_path: Path, as_mp4: bool) -> None:
    write_sav_video(tmp_path / "sav_000", "sav_000001", 9, as_mp4)
    video = open_source("sav", str(tmp_path)).video(0)
    assert video.name == "sav_000001" and video.num_frames == 3
    assert video.visible_objects(0) == [0] and video.visible_objects(2) == [0, 1]
    assert video.read_masks(2, [1])[1][20:28, 4:20].all()
    frames = video.read_frames([2, 1])
    assert abs(int(frames[0].mean()) - 64) <= 3 and abs(int(frames[1].mean()) - 32) <= 3
    with_auto = open_source("sav", str(tmp_path), include_auto=True).video(0)
    assert with_auto.visible_objects(0) == [0, 100_005]


def test_sa1b_and_coco_images(tmp_path: Path) -> None:
    write_jpeg(tmp_path / "sa1b" / "sa_1.jpg", gray_frame(100))
    annotations = [
        {"id": 7, "segmentation": mask_to_rle(square(2, 2)), "area": 36},
        {"id": 9, "segmentation": mask_to_rle(np.zeros((HEIGHT, WIDTH), bool)), "area": 0},
    ]
    info = {"image_id": 1, "height": HEIGHT, "width": WIDTH, "file_name": "sa_1.jpg"}
    (tmp_path / "sa1b" / "sa_1.json").write_text(
        json.dumps({"image": info, "annotations": annotations})
    )
    image = open_source("sa1b", str(tmp_path / "sa1b")).video(0)
    assert image.num_frames == 1 and image.visible_objects(0) == [7]
    np.testing.assert_array_equal(image.read_masks(0, [7])[7], square(2, 2))

    write_jpeg(tmp_path / "coco" / "train" / "a.jpg", gray_frame(50))
    polygon = [[2.0, 2.0, 12.0, 2.0, 12.0, 12.0, 2.0, 12.0]]
    records = [
        {"id": 1, "image_id": 3, "segmentation": polygon, "area": 100, "iscrowd": 0},
        {"id": 2, "image_id": 3, "segmentation": mask_to_rle(square(14, 14)), "iscrowd": 0},
        {
            "id": 3,
            "image_id": 3,
            "segmentation": mask_to_uncompressed_rle(square(0, 20)),
            "area": 36,
            "iscrowd": 1,
        },
    ]
    instances = {
        "images": [{"id": 3, "file_name": "a.jpg", "height": HEIGHT, "width": WIDTH}],
        "annotations": records,
    }
    (tmp_path / "coco" / "annotations").mkdir()
    annotation_file = tmp_path / "coco" / "annotations" / "instances_train.json"
    annotation_file.write_text(json.dumps(instances))
    coco = open_source("coco", str(annotation_file))  # image folder guessed: coco/train
    assert coco.images_only and coco.video(0).visible_objects(0) == [1, 2]
    with_crowd = open_source("coco", str(annotation_file), include_crowd=True).video(0)
    masks = with_crowd.read_masks(0, [1, 2, 3])
    expected_polygon = rle_to_mask(coco_mask.merge(coco_mask.frPyObjects(polygon, 24, 32)))
    np.testing.assert_array_equal(masks[1], expected_polygon)
    np.testing.assert_array_equal(masks[2], square(14, 14))
    np.testing.assert_array_equal(masks[3], square(0, 20))


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    for kind in ("davis", "mose", "sav", "sa1b", "coco"):
        with pytest.raises(InputError, match="nowhere"):
            open_source(kind, str(tmp_path / "nowhere"))
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "Annotations").mkdir()
    with pytest.raises(InputError, match=f"no sequence in {tmp_path}.*expected JPEGImages"):
        open_source("mose", str(tmp_path))
    with pytest.raises(InputError, match=f"no SA-V videos in {tmp_path}: expected"):
        open_source("sav", str(tmp_path))
    with pytest.raises(InputError, match=f"no SA-1B images in {tmp_path}: expected"):
        open_source("sa1b", str(tmp_path))
    with pytest.raises(ConfigError, match="unknown data source kind 'kitti'"):
        open_source("kitti", str(tmp_path))
    with pytest.raises(ConfigError, match="unknown option 'colour'"):
        open_source("sav", str(tmp_path), colour=True)


# -- sampler -------------------------------------------------------------------------------


def test_sampler_consecutive_frames_and_reversal() -> None:
    sampler = ClipSampler(num_frames=4, max_objects=3, reverse_time_prob=0.0)
    for seed in range(5):
        clip = sampler.sample(ToyVideo(), np.random.default_rng(seed), dataset="toy")
        values = mean_values(clip)
        start = (values[0] - 5) // 10
        assert values == [frame_value(start + i) for i in range(4)]
        assert clip.name == f"toy/toy@{start}"
    backwards = ClipSampler(4, 3, reverse_time_prob=1.0).sample(
        ToyVideo(), np.random.default_rng(0)
    )
    values = mean_values(backwards)
    last = (values[0] - 5) // 10
    assert values == [frame_value(last - i) for i in range(4)]


def test_sampler_objects_visible_on_first_frame_and_capped() -> None:
    for seed in range(10):
        clip = ClipSampler(6, 3).sample(ToyVideo(late=5), np.random.default_rng(seed))
        first = (mean_values(clip)[0] - 5) // 10
        assert clip.obj_ids == ((1, 2) if first >= 5 else (1,))  # object 3 never
        assert clip.masks.shape == (6, len(clip.obj_ids), HEIGHT, WIDTH)
        assert clip.masks[0].reshape(len(clip.obj_ids), -1).any(1).all()
    capped = ClipSampler(2, max_objects=1).sample(ToyVideo(late=0), np.random.default_rng(1))
    assert len(capped.obj_ids) == 1 and capped.masks.shape[1] == 1


def test_sampler_absent_objects_get_empty_masks() -> None:
    clip = ClipSampler(12, 3, reverse_time_prob=1.0).sample(
        ToyVideo(late=5), np.random.default_rng(0)
    )
    assert clip.obj_ids == (1, 2)  # reversed: frame 11 first, where both are visible
    assert not clip.masks[-1, 1].any() and clip.masks[0, 1].any()


def test_sampler_errors_name_the_video() -> None:
    with pytest.raises(
        InputError, match="video short has 3 annotated frames, fewer than the clip length 8"
    ):
        ClipSampler(8, 3).sample(ToyVideo("short", length=3), np.random.default_rng(0))
    with pytest.raises(InputError, match="video empty: no object is visible"):
        ClipSampler(2, 3).sample(ToyVideo("empty", hidden=True), np.random.default_rng(0))


# -- augmentation --------------------------------------------------------------------------


def marked_clip(num_frames: int = 3) -> SampledClip:
    frames = np.stack([gray_frame(40) for _ in range(num_frames)])
    masks = np.zeros((num_frames, 1, HEIGHT, WIDTH), dtype=bool)
    frames[:, 4:10, 2:8] = 250  # a bright square at the left, and its mask
    masks[:, 0, 4:10, 2:8] = True
    return SampledClip("toy/marked@0", frames, masks, (1,))


def test_augment_shapes_dtypes_and_determinism() -> None:
    clip = marked_clip()
    first = augment_clip(clip, 16, AugmentOptions(), np.random.default_rng(3))
    again = augment_clip(clip, 16, AugmentOptions(), np.random.default_rng(3))
    assert first.images.shape == (3, 3, 16, 16) and first.images.dtype == torch.uint8
    assert first.masks.shape == (3, 1, 16, 16) and first.masks.dtype == torch.bool
    assert first.obj_ids == (1,) and first.masks[0].any()
    assert torch.equal(first.images, again.images) and torch.equal(first.masks, again.masks)
    plain = augment_clip(clip, 16, NO_AUGMENT, np.random.default_rng(3))
    assert plain.masks[:, 0, 3:6, 1:4].all() and not plain.masks[:, 0, :, 4:].any()


def test_flip_moves_image_and_mask_together() -> None:
    flip_only = AugmentOptions(
        hflip_prob=1.0,
        affine_degrees=0,
        affine_shear=0,
        clip_brightness=0,
        clip_contrast=0,
        clip_saturation=0,
        grayscale_prob=0,
        frame_brightness=0,
        frame_contrast=0,
        frame_saturation=0,
    )
    out = augment_clip(marked_clip(), 32, flip_only, np.random.default_rng(0))
    mask = out.masks[0, 0]
    assert not mask[:, :16].any() and mask[:, 16:].any()  # the square moved to the right
    assert out.images[0, :, mask].float().mean() > 200  # and the bright pixels with it
    assert out.images[0, :, ~mask].float().mean() < 60


def test_affine_keeps_masks_binary_and_aligned() -> None:
    no_colour = AugmentOptions(hflip_prob=0, clip_brightness=0, frame_brightness=0)
    for seed in range(4):
        out = augment_clip(marked_clip(), 32, no_colour, np.random.default_rng(seed))
        mask = out.masks[0, 0]
        assert out.masks.dtype == torch.bool and mask.any()
        assert out.images[0, 0][mask].float().mean() > out.images[0, 0][~mask].float().mean() + 100


def test_augment_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="hflip_prob"):
        AugmentOptions(hflip_prob=1.5)
    with pytest.raises(ConfigError, match="frame_contrast"):
        AugmentOptions(frame_contrast=-0.1)


# -- mixing and the training entry point ---------------------------------------------------


def test_mixer_weights() -> None:
    with pytest.raises(ConfigError, match="weight of source 'a'"):
        SourceMixer([(ToySource("a"), 0.0)])
    mixer = SourceMixer([(ToySource("a"), 3.0), (ToySource("b"), 1.0)])
    rng = np.random.default_rng(0)
    picks = [mixer.pick(rng).name for _ in range(400)]
    assert 270 <= picks.count("a") <= 330


def make_data(seed: int = 0, **sources: float) -> TrainingData:
    pairs = [(ToySource(name, images=name.startswith("image")), w) for name, w in sources.items()]
    return TrainingData(pairs, 16, 4, 3, 0.5, AugmentOptions(), seed)


def test_training_data_is_deterministic_in_seed_and_index() -> None:
    data = make_data(video=1.0, images=1.0)
    first, again = data.sample(5), make_data(video=1.0, images=1.0).sample(5)
    assert first.name == again.name and torch.equal(first.images, again.images)
    assert torch.equal(first.masks, again.masks)
    others = [data.sample(i) for i in range(6, 12)]
    assert any(not torch.equal(first.images, o.images) or first.name != o.name for o in others)
    lengths = {clip.name.split("/")[0]: clip.num_frames for clip in [first, *others]}
    assert lengths == {"video": 4, "images": 1}
    other_seed = make_data(seed=1, video=1.0, images=1.0).sample(5)
    assert other_seed.name != first.name or not torch.equal(other_seed.images, first.images)


def test_dataset_and_dataloader_with_workers() -> None:
    data = make_data(video=1.0)
    dataset = TrainingDataset(data, length=4)
    assert len(dataset) == 4
    loader = DataLoader(
        dataset,
        batch_size=2,
        num_workers=2,
        collate_fn=collate_clips,
        multiprocessing_context="spawn",
    )
    batches = list(loader)
    assert [len(batch) for batch in batches] == [2, 2]
    assert torch.equal(batches[1][1].images, data.sample(3).images)


def test_training_data_rejects_too_short_synthetic_videos() -> None:
    synthetic = SyntheticSource(PHOTOS, width=64, height=48, num_frames=8)
    with pytest.raises(ConfigError, match="fewer than the clip length num_frames=10"):
        TrainingData([(synthetic, 1.0)], 16, 10, 3, 0.5, AugmentOptions(), 0)


# -- synthetic source and photo split ------------------------------------------------------


def test_photo_split_is_disjoint_and_deterministic() -> None:
    library = PhotoLibrary.from_folder(PHOTOS)
    train, evaluation = library.split("train"), library.split("eval")
    assert train.backgrounds and evaluation.backgrounds
    assert not set(train.backgrounds) & set(evaluation.backgrounds)
    assert set(train.backgrounds) | set(evaluation.backgrounds) == set(library.backgrounds)
    # A single silhouette cannot be split: both sides use it.
    assert train.silhouettes == evaluation.silhouettes == library.silhouettes
    assert library.split("eval") == evaluation
    with pytest.raises(ConfigError, match="photo split"):
        library.split("test")


def test_synthetic_source_is_deterministic_and_uses_train_photos() -> None:
    source = open_source("synthetic", str(PHOTOS), width=64, height=48, num_objects=2)
    first, again = source.video(2), source.video(2)
    assert isinstance(first, type(again))
    np.testing.assert_array_equal(first.read_frames(range(8)), again.read_frames(range(8)))
    train_names = {p.name for p in PhotoLibrary.from_folder(PHOTOS).split("train").backgrounds}
    videos = [source.video(i) for i in range(8)]
    assert all(isinstance(video, SyntheticClipVideo) for video in videos)
    backgrounds = {video.sources["background"] for video in videos}  # type: ignore[attr-defined]
    assert backgrounds <= train_names
    images = open_source("synthetic", str(PHOTOS), width=64, height=48, images=True)
    data = TrainingData([(images, 1.0)], 16, 8, 3, 0.5, AugmentOptions(), 0)
    clip = data.sample(0)
    assert clip.num_frames == 1 and 1 <= clip.num_objects <= 3 and clip.masks[0].any()


def test_eval_split_dataset_uses_eval_photos(tmp_path: Path) -> None:
    from masklet.bench.config import SyntheticVideoConfig

    config = SyntheticVideoConfig(width=64, height=48, num_frames=8)
    make_synthetic_dataset(tmp_path, 2, seed=0, config=config, photos=PHOTOS, photo_split="eval")
    info = json.loads((tmp_path / "synthetic.json").read_text())
    eval_names = {p.name for p in PhotoLibrary.from_folder(PHOTOS).split("eval").backgrounds}
    assert {video["sources"]["background"] for video in info["videos"]} <= eval_names


def test_training_data_end_to_end_from_disk(tmp_path: Path) -> None:
    write_mose(tmp_path / "mose", "long", 10)
    write_mose(tmp_path / "short", "brief", 3)
    source = open_source("mose", str(tmp_path / "mose"))
    data = TrainingData([(source, 1.0)], 16, 8, 2, 0.5, AugmentOptions(), seed=7)
    clip = data.sample(0)
    assert clip.num_frames == 8 and clip.images.shape == (8, 3, 16, 16)
    assert clip.name.startswith("mose/long@") and clip.masks[0].any()
    short = open_source("mose", str(tmp_path / "short"))
    too_long = TrainingData([(short, 1.0)], 16, 8, 2, 0.5, AugmentOptions(), seed=7)
    with pytest.raises(InputError, match="video brief has 3 annotated frames"):
        too_long.sample(0)


def test_reader_errors_name_the_files(tmp_path: Path) -> None:
    write_mose(tmp_path, "seq", 2)
    write_indexed_png(tmp_path / "Annotations" / "seq" / "00007.png", label_map(0))
    with pytest.raises(InputError, match=r"annotated frame 7 has no JPEG 00007\.jpg"):
        open_source("mose", str(tmp_path)).video(0)
    annotation_file = tmp_path / "instances_val.json"
    annotation_file.write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(ConfigError, match="pass image_folder"):
        open_source("coco", str(annotation_file))
    with pytest.raises(InputError, match="no image has an object"):
        open_source("coco", str(annotation_file), image_folder=str(tmp_path))


def test_synthetic_source_redraws_a_video_whose_objects_do_not_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = open_source("synthetic", str(PHOTOS), width=64, height=48, num_objects=2)
    real = synthetic_data.make_synthetic_video
    seeds: list[int] = []

    def crowded_first_seed(library: Any, config: Any, seed: int, index: int, **kw: Any) -> Any:
        seeds.append(seed)
        if seed == 0:
            raise InputError(f"could not place all objects visibly in frame 0 of video {index}")
        return real(library, config, seed, index, **kw)

    monkeypatch.setattr(synthetic_data, "make_synthetic_video", crowded_first_seed)
    first = source.video(3).read_frames(range(8))
    np.testing.assert_array_equal(first, source.video(3).read_frames(range(8)))
    assert seeds == [0, synthetic_data.RETRY_SEED_STRIDE] * 2


def test_synthetic_source_names_the_knobs_when_no_seed_fits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = open_source("synthetic", str(PHOTOS), width=64, height=48, num_objects=2)

    def never_fits(library: Any, config: Any, seed: int, index: int, **kw: Any) -> Any:
        raise InputError(f"could not place all objects visibly in frame 0 of video {index}")

    monkeypatch.setattr(synthetic_data, "make_synthetic_video", never_fits)
    with pytest.raises(InputError, match=r"video 5, nor with 4 other seeds.*num_objects=2"):
        source.video(5)


def test_synthetic_image_source_renders_only_the_first_frame() -> None:
    images = open_source("synthetic", str(PHOTOS), width=64, height=48, images=True)
    videos = open_source("synthetic", str(PHOTOS), width=64, height=48)
    image, video = images.video(0), videos.video(0)
    assert image.num_frames == 1 and video.num_frames == 8
    # Video 0's first draw places every object: the image is the video's first frame.
    np.testing.assert_array_equal(image.read_frames([0]), video.read_frames([0]))
    np.testing.assert_array_equal(image.read_frames([0]), images.video(0).read_frames([0]))
