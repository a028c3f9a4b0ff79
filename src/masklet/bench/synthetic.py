"""Deterministic synthetic VOS benchmark in DAVIS layout, built from real photos.

    make_synthetic_dataset("bench/synth", num_videos=10, seed=0)

writes ``JPEGImages/480p/<seq>/%05d.jpg`` frames, ``Annotations/480p/<seq>/%05d.png``
indexed PNGs (PASCAL VOC palette, 0 background, 1..N objects), ``ImageSets/2017/val.txt``
and ``synthetic.json`` (seed, knobs, photo sources and per-object events). The ``480p``
folder name is kept for layout compatibility whatever the configured resolution.

Backgrounds are real photos seen through a panning, zooming camera; objects are exact
shapes (photo silhouettes or procedural shapes) textured with real photo crops, composited
with their exact masks, so the annotation is pixel-exact. What happens in each video is
described in ``scenario``; the difficulty knobs are ``SyntheticVideoConfig``. Video ``i``
of seed ``s`` depends only on ``(s, i)``, the knobs and the photo folder's contents.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from masklet.bench.config import SyntheticVideoConfig
from masklet.bench.motion import CameraPath, Stage, plan_camera
from masklet.bench.photos import PhotoLibrary, Silhouette, load_rgb, load_silhouette
from masklet.bench.render import apply_photometric, compose_frame, render_background, warp_sprite
from masklet.bench.scenario import (
    ObjectPlan,
    plan_distractor,
    plan_occluder,
    plan_target,
    plan_wanderer,
)
from masklet.bench.shapes import PROCEDURAL_SHAPES, Sprite, look_alike, make_sprite
from masklet.errors import InputError
from masklet.io.davis import write_davis_sequence, write_image_set
from masklet.io.files import write_json

MAX_ATTEMPTS = 20
TEXTURE_MAX_SIDE = 640


@dataclass(frozen=True)
class SyntheticVideo:
    """A rendered video with its exact annotation.

    Attributes:
        name: sequence name.
        frames: T frames, HxWx3 uint8 RGB.
        labels: T label maps, HxW uint8 (0 background, k = annotated object k).
        unoccluded_areas: T x N int array, pixels of object k+1 inside frame t before
            occlusion (0 when it is out of the frame).
        sources: photo and shape names used, for the dataset metadata.
    """

    name: str
    frames: tuple[np.ndarray, ...]
    labels: tuple[np.ndarray, ...]
    unoccluded_areas: np.ndarray
    sources: dict[str, Any]

    def events(self) -> dict[str, dict[str, list[int]]]:
        """Per object: frames where it is out of view, and frames where it is occluded."""
        result = {}
        for index in range(self.unoccluded_areas.shape[1]):
            full = self.unoccluded_areas[:, index]
            visible = np.array([np.count_nonzero(lab == index + 1) for lab in self.labels])
            result[str(index + 1)] = {
                "absent_frames": [int(t) for t in np.flatnonzero(full == 0)],
                "occluded_frames": [int(t) for t in np.flatnonzero((full > 0) & (visible < full))],
            }
        return result


class _PhotoCache:
    """Loads each photo and silhouette of a library once per dataset."""

    def __init__(self, library: PhotoLibrary) -> None:
        self.library = library
        self._rgb: dict[tuple[Path, int], Image.Image] = {}
        self._silhouettes: dict[Path, Silhouette] = {}

    def rgb(self, path: Path, max_side: int) -> Image.Image:
        key = (path, max_side)
        if key not in self._rgb:
            self._rgb[key] = load_rgb(path, max_side)
        return self._rgb[key]

    def shape(self, choice: str | Path) -> Silhouette | str:
        if isinstance(choice, str):
            return choice
        if choice not in self._silhouettes:
            self._silhouettes[choice] = load_silhouette(choice)
        return self._silhouettes[choice]


def _pick(items: list[Any], rng: np.random.Generator) -> Any:
    return items[int(rng.integers(len(items)))]


def _make_sprites(
    cache: _PhotoCache, config: SyntheticVideoConfig, background: Path, rng: np.random.Generator
) -> tuple[list[Sprite], float]:
    """Sprites of the annotated objects (target first) and their base scale."""
    textures = [p for p in cache.library.backgrounds if p != background] or [background]
    shapes: list[str | Path] = [*cache.library.silhouettes, *PROCEDURAL_SHAPES]
    max_scale = config.scale_range[1]
    sprites = []
    for _ in range(config.num_objects):
        jitter = rng.uniform(0.8, 1.2)
        longest = max(round(config.object_size * config.height * jitter * max_scale), 8)
        texture = cache.rgb(_pick(textures, rng), TEXTURE_MAX_SIDE)
        sprites.append(make_sprite(cache.shape(_pick(shapes, rng)), texture, longest, rng))
    return sprites, 1.0 / max_scale


def _plan_objects(
    config: SyntheticVideoConfig,
    sprites: list[Sprite],
    base_scale: float,
    rng: np.random.Generator,
) -> list[ObjectPlan]:
    """Tracks and roles of all objects; annotated ones get labels 1..N."""
    stage = Stage(config.width, config.height, config.scale_range, config.max_rotation_deg)
    side = -1 if rng.random() < 0.5 else 1
    target = plan_target(stage, config, sprites[0], base_scale, side, rng)
    occluder = plan_occluder(stage, config, target, base_scale, side, rng)
    plans = [
        ObjectPlan(sprites[0], target, 1, 1.0, "target"),
        ObjectPlan(sprites[1], occluder, 2, 2.0, "occluder"),
    ]
    for index, sprite in enumerate(sprites[2:], start=3):
        track = plan_wanderer(stage, base_scale, rng)
        plans.append(ObjectPlan(sprite, track, index, float(rng.uniform(0.5, 3.0)), "wanderer"))
    for _ in range(config.num_distractors):
        twin = look_alike(sprites[0], config.distractor_similarity, rng)
        track = plan_distractor(stage, config, target, twin, base_scale, side, rng)
        plans.append(ObjectPlan(twin, track, 0, 0.0, "distractor"))
    return sorted(plans, key=lambda plan: plan.depth)


def _render(
    config: SyntheticVideoConfig,
    photo: Image.Image,
    camera: CameraPath,
    plans: list[ObjectPlan],
    rng: np.random.Generator,
    leading_frames: int | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Render the first ``leading_frames`` frames (None: all); returns frames, label maps and
    unoccluded areas (T x N)."""
    size = (config.width, config.height)
    num_labels = max(plan.label for plan in plans)
    count = config.num_frames if leading_frames is None else min(leading_frames, config.num_frames)
    areas = np.zeros((count, num_labels), dtype=np.int64)
    frequency, phase = rng.uniform(0.5, 1.0), rng.uniform(0, 2 * math.pi)
    frames, labels = [], []
    for t in range(count):
        u = t / (config.num_frames - 1)
        background = render_background(photo, camera.window(u), size)
        layers = [(warp_sprite(plan.sprite, plan.track.at(u), size), plan.label) for plan in plans]
        for placed, label in layers:
            if label > 0 and placed is not None:
                areas[t, label - 1] = placed.area
        frame, label_map = compose_frame(background, layers)
        gain = 1.0 + config.brightness_change * math.sin(2 * math.pi * frequency * u + phase)
        frames.append(apply_photometric(frame, gain, config.noise_std, rng))
        labels.append(label_map)
    return frames, labels, areas


def _first_frame_ok(labels: np.ndarray, areas: np.ndarray) -> bool:
    """Every annotated object shows at least half of itself (and 16 px) in frame 0."""
    for index, full in enumerate(areas):
        visible = int(np.count_nonzero(labels == index + 1))
        if full == 0 or visible < max(16, full // 2):
            return False
    return True


def make_synthetic_video(
    library: PhotoLibrary,
    config: SyntheticVideoConfig,
    seed: int,
    index: int,
    cache: _PhotoCache | None = None,
    leading_frames: int | None = None,
) -> SyntheticVideo:
    """Render video ``index`` of dataset ``seed`` (deterministic in both).

    ``leading_frames``: render only the first this many frames (e.g. 1 for a multi-object
    image). They are the full video's when its first draw places every object; after a
    redraw they come from another (equally valid, deterministic) draw, since the skipped
    frames' noise is not drawn."""
    cache = cache or _PhotoCache(library)
    rng = np.random.default_rng([seed, index])
    max_side = round(
        max(config.width, config.height) * config.camera_zoom * (1 + config.camera_pan) * 1.2
    )
    for _ in range(MAX_ATTEMPTS):
        background = _pick(list(library.backgrounds), rng)
        photo = cache.rgb(background, max_side)
        camera = plan_camera(
            photo.size, config.width / config.height, config.camera_pan, config.camera_zoom, rng
        )
        sprites, base_scale = _make_sprites(cache, config, background, rng)
        plans = _plan_objects(config, sprites, base_scale, rng)
        frames, labels, areas = _render(config, photo, camera, plans, rng, leading_frames)
        if _first_frame_ok(labels[0], areas[0]):
            sources = {
                "background": background.name,
                "objects": {
                    str(p.label): p.sprite.source
                    for p in sorted(plans, key=lambda p: p.label)
                    if p.label
                },
                "distractors": [p.sprite.source for p in plans if p.label == 0],
            }
            return SyntheticVideo(
                f"synth_{index:03d}", tuple(frames), tuple(labels), areas, sources
            )
    raise InputError(f"could not place all objects visibly in frame 0 of video {index}")


def write_davis_video(video: SyntheticVideo, root: Path, jpeg_quality: int = 90) -> None:
    """Write one video's JPEG frames and indexed-PNG annotations (PASCAL VOC palette) in DAVIS
    layout (`masklet.io.davis.write_davis_sequence`)."""
    write_davis_sequence(root, video.name, video.frames, video.labels, jpeg_quality=jpeg_quality)


def make_synthetic_dataset(
    out_dir: str | Path,
    num_videos: int,
    seed: int = 0,
    config: SyntheticVideoConfig | None = None,
    photos: str | Path | None = None,
    photo_split: str | None = None,
) -> list[str]:
    """Generate ``num_videos`` videos into ``out_dir`` (DAVIS layout) and return their names.

    Args:
        out_dir: dataset root; created when missing.
        num_videos: number of videos (>= 1).
        seed: dataset seed; video i uses the generator seeded with ``(seed, i)``.
        config: difficulty knobs (defaults: DAVIS 480p, 48 frames).
        photos: photo folder; default ``$MASKLET_SAMPLES`` or ``~/.cache/masklet-samples``.
        photo_split: None uses every photo; "train" or "eval" only that part of the folder
            (``PhotoLibrary.split``), so that evaluation videos never show training photos.
    Raises:
        InputError: no photos found, or ``num_videos < 1``.
        ConfigError: ``photo_split`` is not None, "train" or "eval".
    """
    if num_videos < 1:
        raise InputError(f"num_videos must be >= 1, got {num_videos}")
    config = config or SyntheticVideoConfig()
    library = PhotoLibrary.from_folder(photos)
    if photo_split is not None:
        library = library.split(photo_split)
    cache = _PhotoCache(library)
    root = Path(out_dir)
    names, metadata = [], []
    for index in range(num_videos):
        video = make_synthetic_video(library, config, seed, index, cache)
        write_davis_video(video, root, config.jpeg_quality)
        names.append(video.name)
        metadata.append({"name": video.name, "sources": video.sources, "events": video.events()})
    write_image_set(root, names)
    info = {"seed": seed, "config": asdict(config), "videos": metadata}
    write_json(root / "synthetic.json", info, indent=1)
    return names
