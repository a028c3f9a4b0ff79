"""Image datasets as one-frame videos: SA-1B and COCO instance segmentation.

    SA-1B:  <root>/sa_<n>.jpg + <root>/sa_<n>.json, each JSON `{"image": {...},
            "annotations": [{"id", "segmentation": compressed RLE, "area", ...}]}`
    COCO:   one instances JSON (`{"images": [...], "annotations": [{"id", "image_id",
            "segmentation", "area", "iscrowd"}]}`) and a folder of the image files; a
            segmentation is a list of polygons (`[x0, y0, x1, y1, ...]` in pixels), a
            compressed RLE or an uncompressed RLE (`counts` a list of runs).

Object ids are the annotations' `id`. An annotation with zero area is not an object. Masks
are decoded only for the objects a clip uses (`masklet.io.rle.rle_to_mask`; polygons are
rasterised by pycocotools). Every image is a clip of one frame; the sampler caps its objects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from masklet.errors import ConfigError, InputError
from masklet.io.image_folder import load_rgb_image
from masklet.io.rle import rle_area, rle_to_mask
from masklet.train.data.video import AnnotatedVideo, check_folder

SA1B_HINT = "expected sa_*.jpg images, each with a sa_*.json annotation file of the same name"


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InputError(f"{what} not found: {path}") from error
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read {what} {path}: {error}") from error


def segmentation_to_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """A COCO segmentation (polygons, compressed or uncompressed RLE) as an `(H, W)` bool
    mask; polygons with fewer than 3 points are ignored."""
    if isinstance(segmentation, Mapping):
        return rle_to_mask(segmentation)
    if not isinstance(segmentation, list):
        raise InputError(f"unknown COCO segmentation of type {type(segmentation).__name__}")
    polygons = [[float(v) for v in polygon] for polygon in segmentation if len(polygon) >= 6]
    if not polygons:
        return np.zeros((height, width), dtype=bool)
    merged = coco_mask.merge(coco_mask.frPyObjects(polygons, height, width))
    return rle_to_mask(merged)


class AnnotatedImage(AnnotatedVideo):
    """One image and its object annotations (`{obj_id: annotation dict}`)."""

    def __init__(
        self,
        name: str,
        image_file: Path,
        annotations: Mapping[int, Mapping[str, Any]],
        size: tuple[int, int],
    ) -> None:
        self.name = name
        self.image_file = image_file
        self.annotations = dict(annotations)
        self.height, self.width = size

    @property
    def num_frames(self) -> int:
        return 1

    def frame_number(self, position: int) -> int:
        return 0

    def _area(self, annotation: Mapping[str, Any]) -> float:
        if "area" in annotation:
            return float(annotation["area"])
        segmentation = annotation.get("segmentation")
        if isinstance(segmentation, Mapping):
            return float(rle_area(segmentation))
        return float(segmentation_to_mask(segmentation, self.height, self.width).sum())

    def visible_objects(self, position: int) -> list[int]:
        return sorted(i for i, annotation in self.annotations.items() if self._area(annotation))

    def read_masks(self, position: int, obj_ids: Sequence[int]) -> dict[int, np.ndarray]:
        return {
            obj_id: segmentation_to_mask(
                self.annotations[obj_id]["segmentation"], self.height, self.width
            )
            for obj_id in obj_ids
            if obj_id in self.annotations
        }

    def read_frames(self, positions: Sequence[int]) -> np.ndarray:
        frame = load_rgb_image(self.image_file)
        return np.stack([frame for _ in positions])


def _by_id(annotations: Sequence[Mapping[str, Any]], source: Path) -> dict[int, Any]:
    """Annotations keyed by their `id` (their index when they have none)."""
    keyed = {}
    for index, annotation in enumerate(annotations):
        if "segmentation" not in annotation:
            raise InputError(f"{source}: annotation {index} has no segmentation")
        keyed[int(annotation.get("id", index))] = annotation
    return keyed


class Sa1bSource:
    """SA-1B images (see the module docstring); each JSON is parsed when its image is opened.

    Raises:
        InputError: a missing folder, or no image with its JSON in it.
    """

    images_only = True
    frames_per_video: int | None = 1

    def __init__(self, root: str | Path, *, name: str = "sa1b") -> None:
        self.root = check_folder(root, "SA-1B folder")
        self.name = name
        self.images = [
            path for path in sorted(self.root.glob("*.jpg")) if path.with_suffix(".json").is_file()
        ]
        if not self.images:
            raise InputError(f"no SA-1B images in {self.root}: {SA1B_HINT}")

    def __len__(self) -> int:
        return len(self.images)

    def video(self, index: int) -> AnnotatedVideo:
        image_file = self.images[index]
        json_file = image_file.with_suffix(".json")
        data = _read_json(json_file, "SA-1B annotation file")
        info = data.get("image", {}) if isinstance(data, dict) else {}
        if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
            raise InputError(f"{json_file} is not a SA-1B annotation: no 'annotations' list")
        size = (int(info.get("height", 0)), int(info.get("width", 0)))
        annotations = _by_id(data["annotations"], json_file)
        return AnnotatedImage(image_file.stem, image_file, annotations, size)


def _guess_coco_images(annotation_file: Path) -> Path:
    """`<root>/<split>` for `<root>/annotations/instances_<split>.json`, else ConfigError."""
    split = annotation_file.stem.removeprefix("instances_")
    for folder in (annotation_file.parent.parent / split, annotation_file.parent / split):
        if folder.is_dir():
            return folder
    raise ConfigError(
        f"cannot guess the image folder of {annotation_file} (looked for a '{split}' folder "
        f"next to it and one level up): pass image_folder"
    )


class CocoSource:
    """COCO-style instance segmentation (see the module docstring). The JSON is parsed once;
    images without an object (after leaving out crowd regions unless `include_crowd`) are
    skipped.

    Args:
        annotation_file: the instances JSON.
        image_folder: folder of the images' `file_name`s (default: guessed from the layout
            `<root>/annotations/instances_<split>.json` + `<root>/<split>/`).
        include_crowd: keep `iscrowd` annotations as objects.
        name: dataset name used in clip names.
    Raises:
        InputError: a missing or unreadable file or folder, or no image with an object.
        ConfigError: no image folder given and none found.
    """

    images_only = True
    frames_per_video: int | None = 1

    def __init__(
        self,
        annotation_file: str | Path,
        *,
        image_folder: str | Path | None = None,
        include_crowd: bool = False,
        name: str = "coco",
    ) -> None:
        self.annotation_file = Path(annotation_file).expanduser()
        if not self.annotation_file.is_file():
            raise InputError(f"COCO annotation file not found: {self.annotation_file}")
        folder = _guess_coco_images(self.annotation_file) if image_folder is None else image_folder
        self.image_folder = check_folder(folder, "COCO image folder")
        self.name = name
        data = _read_json(self.annotation_file, "COCO annotation file")
        if not isinstance(data, dict) or not {"images", "annotations"} <= data.keys():
            raise InputError(f"{self.annotation_file} is not a COCO instances file")
        self.entries = self._group(data, include_crowd)
        if not self.entries:
            raise InputError(
                f"{self.annotation_file}: no image has an object annotation (expected "
                f"'annotations' entries with 'image_id' and 'segmentation')"
            )

    @staticmethod
    def _group(data: Mapping[str, Any], include_crowd: bool) -> list[tuple[Any, dict[int, Any]]]:
        """`(image record, {annotation id: annotation})` per image with an object, by id."""
        objects: dict[int, dict[int, Any]] = {}
        for index, annotation in enumerate(data["annotations"]):
            if annotation.get("iscrowd", 0) and not include_crowd:
                continue
            per_image = objects.setdefault(int(annotation["image_id"]), {})
            per_image[int(annotation.get("id", index))] = annotation
        images = {int(image["id"]): image for image in data["images"]}
        return [(images[i], objects[i]) for i in sorted(objects) if i in images]

    def __len__(self) -> int:
        return len(self.entries)

    def video(self, index: int) -> AnnotatedVideo:
        image, annotations = self.entries[index]
        image_file = self.image_folder / str(image["file_name"])
        size = (int(image["height"]), int(image["width"]))
        return AnnotatedImage(Path(image_file).stem, image_file, annotations, size)
