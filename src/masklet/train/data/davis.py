"""DAVIS / MOSE / SA-V val layout readers: JPEG frame folders and PNG annotations.

    <root>/JPEGImages[/480p]/<seq>/%05d.jpg      frames (DAVIS has the 480p level, MOSE not;
    <root>/JPEGImages_24fps/<seq>/%05d.jpg        SA-V val/test keeps every 24 fps frame)
    <root>/Annotations[/480p]/<seq>/%05d.png     palette label maps (0 background, 1..N
                                                  objects, 255 void: not an object), or
    <root>/Annotations[_6fps]/<seq>/<obj:03d>/%05d.png   one binary PNG per object and frame

A sequence's annotated frames are the frames that have a PNG (for per-object folders, a PNG
of any object); a PNG is matched to the JPEG of the same frame number (file stem), so a 6 fps
annotation of 24 fps frames picks the right JPEGs. An object without a PNG on an annotated
frame is absent there. Files are read with `masklet.io` (`read_indexed_png`,
`read_object_pngs`, `load_rgb_image`); sequence folders are listed when a video is opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from masklet.errors import ConfigError, InputError
from masklet.io.image_folder import load_rgb_image
from masklet.io.masks import (
    VOID_LABEL,
    labels_to_masks,
    list_object_pngs,
    read_indexed_png,
    read_object_pngs,
)
from masklet.lru import LRUCache
from masklet.train.data.video import (
    NUMBERED_JPEG,
    NUMBERED_PNG,
    AnnotatedVideo,
    check_folder,
    numbered_files,
)

IMAGE_FOLDER_NAMES = ("JPEGImages", "JPEGImages_24fps")
ANNOTATION_FOLDER_NAMES = ("Annotations", "Annotations_6fps")
LAYOUT_HINT = (
    "expected JPEGImages[/480p]/<seq>/*.jpg (or JPEGImages_24fps) and "
    "Annotations[/480p]/<seq>/*.png (or <seq>/<obj:03d>/*.png, or Annotations_6fps)"
)
_MASK_CACHE_SIZE = 4


class _FolderVideo(AnnotatedVideo):
    """Frames from numbered JPEGs; masks supplied by a subclass."""

    def __init__(self, name: str, frame_files: Sequence[Path], frame_numbers: Sequence[int]):
        self.name = name
        self.frame_files = list(frame_files)
        self.frame_numbers = list(frame_numbers)

    @property
    def num_frames(self) -> int:
        return len(self.frame_numbers)

    def frame_number(self, position: int) -> int:
        return self.frame_numbers[position]

    def read_frames(self, positions: Sequence[int]) -> np.ndarray:
        return np.stack([load_rgb_image(self.frame_files[p]) for p in positions])


class PaletteVideo(_FolderVideo):
    """A sequence annotated with one palette label PNG per annotated frame."""

    def __init__(
        self,
        name: str,
        frame_files: Sequence[Path],
        frame_numbers: Sequence[int],
        mask_files: Sequence[Path],
    ) -> None:
        super().__init__(name, frame_files, frame_numbers)
        self.mask_files = list(mask_files)
        self._labels: LRUCache[int, np.ndarray] = LRUCache(_MASK_CACHE_SIZE)

    def labels(self, position: int) -> np.ndarray:
        """The `(H, W)` uint8 label map at `position` (255 = void)."""
        cached = self._labels.get(position)
        if cached is None:
            cached, _ = read_indexed_png(self.mask_files[position])
            self._labels.put(position, cached)
        return cached

    def visible_objects(self, position: int) -> list[int]:
        present = np.unique(self.labels(position))
        return [int(value) for value in present if value not in (0, VOID_LABEL)]

    def read_masks(self, position: int, obj_ids: Sequence[int]) -> dict[int, np.ndarray]:
        return labels_to_masks(self.labels(position), obj_ids)


class ObjectPngVideo(_FolderVideo):
    """A sequence annotated with `<obj:03d>/%05d.png` binary PNGs (SA-V val/test layout)."""

    def __init__(
        self,
        name: str,
        frame_files: Sequence[Path],
        frame_numbers: Sequence[int],
        mask_folder: Path,
        obj_ids: Sequence[int],
    ) -> None:
        super().__init__(name, frame_files, frame_numbers)
        self.mask_folder = mask_folder
        self.obj_ids = list(obj_ids)
        self._masks: LRUCache[int, dict[int, np.ndarray]] = LRUCache(_MASK_CACHE_SIZE)

    def _all_masks(self, position: int) -> dict[int, np.ndarray]:
        cached = self._masks.get(position)
        if cached is None:
            frame = self.frame_numbers[position]
            cached = read_object_pngs(self.mask_folder, frame, self.obj_ids)
            self._masks.put(position, cached)
        return cached

    def visible_objects(self, position: int) -> list[int]:
        return sorted(obj_id for obj_id, mask in self._all_masks(position).items() if mask.any())

    def read_masks(self, position: int, obj_ids: Sequence[int]) -> dict[int, np.ndarray]:
        masks = self._all_masks(position)
        return {obj_id: masks[obj_id] for obj_id in obj_ids if obj_id in masks}


def _find_level(root: Path, names: Sequence[str], given: str | Path | None, what: str) -> Path:
    """The frame or annotation folder: `given`, else the first of `names` under `root`; the
    DAVIS `480p` level is entered when present."""
    if given is not None:
        folder = check_folder(given, what)
    else:
        found = [root / name for name in names if (root / name).is_dir()]
        if not found:
            raise InputError(f"{root} has no {' or '.join(names)} folder; {LAYOUT_HINT}")
        folder = found[0]
    return folder / "480p" if (folder / "480p").is_dir() else folder


def _read_file_list(path: str | Path) -> list[str]:
    """Sequence names from a text file, one a line (blank lines and `#` comments skipped)."""
    try:
        lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise InputError(f"cannot read the file list {path}: {error}") from error
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


class DavisSource:
    """Annotated sequences in DAVIS, MOSE or SA-V val/test layout (see the module docstring).

    Args:
        root: dataset root holding `JPEGImages*` and `Annotations*`.
        image_folder, annotation_folder: explicit folders of sequence folders, instead of
            looking under `root` (like the reference's `img_folder` / `gt_folder`).
        file_list: a text file of sequence names, one a line, to train on only those.
        name: dataset name used in clip names.
    Raises:
        InputError: a missing folder, no sequence with both frames and annotations, or a
            listed sequence that is not there.
        ConfigError: neither `root` nor both explicit folders.
    """

    images_only = False
    frames_per_video: int | None = None

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        image_folder: str | Path | None = None,
        annotation_folder: str | Path | None = None,
        file_list: str | Path | None = None,
        name: str = "davis",
    ) -> None:
        if root is None and (image_folder is None or annotation_folder is None):
            raise ConfigError(
                "a DAVIS-layout source needs a root folder, or both image_folder and "
                "annotation_folder"
            )
        base = check_folder(root, "dataset folder") if root is not None else Path(".")
        self.name = name
        self.image_folder = _find_level(base, IMAGE_FOLDER_NAMES, image_folder, "frame folder")
        self.annotation_folder = _find_level(
            base, ANNOTATION_FOLDER_NAMES, annotation_folder, "annotation folder"
        )
        self.sequences = self._list_sequences(file_list)

    def _list_sequences(self, file_list: str | Path | None) -> list[str]:
        annotated = {p.name for p in self.annotation_folder.iterdir() if p.is_dir()}
        with_frames = sorted(n for n in annotated if (self.image_folder / n).is_dir())
        if file_list is None:
            if not with_frames:
                raise InputError(
                    f"no sequence in {self.annotation_folder} has frames in "
                    f"{self.image_folder}; {LAYOUT_HINT}"
                )
            return with_frames
        names = _read_file_list(file_list)
        missing = [n for n in names if n not in with_frames]
        if missing or not names:
            raise InputError(
                f"file list {file_list}: {len(missing)} sequences have no frames and "
                f"annotations under {self.annotation_folder.parent} (first: "
                f"{missing[0] if missing else '(the list is empty)'})"
            )
        return names

    def __len__(self) -> int:
        return len(self.sequences)

    def video(self, index: int) -> AnnotatedVideo:
        """Open sequence `index` (its folders are listed now)."""
        sequence = self.sequences[index]
        mask_folder = self.annotation_folder / sequence
        jpegs = numbered_files(self.image_folder / sequence, NUMBERED_JPEG)
        if any(path.is_dir() and path.name.isdigit() for path in mask_folder.iterdir()):
            frames_by_object = list_object_pngs(mask_folder)
            numbers = sorted({n for frames in frames_by_object.values() for n in frames})
            files = self._matching_frames(sequence, numbers, jpegs)
            return ObjectPngVideo(sequence, files, numbers, mask_folder, list(frames_by_object))
        pngs = numbered_files(mask_folder, NUMBERED_PNG)
        numbers = sorted(pngs)
        files = self._matching_frames(sequence, numbers, jpegs)
        return PaletteVideo(sequence, files, numbers, [pngs[n] for n in numbers])

    def _matching_frames(
        self, sequence: str, numbers: list[int], jpegs: dict[int, Path]
    ) -> list[Path]:
        if not numbers:
            raise InputError(
                f"sequence {sequence}: no numbered PNG annotations in "
                f"{self.annotation_folder / sequence}"
            )
        missing = [n for n in numbers if n not in jpegs]
        if missing:
            raise InputError(
                f"sequence {sequence}: annotated frame {missing[0]} has no JPEG "
                f"{missing[0]:05d}.jpg in {self.image_folder / sequence}"
            )
        return [jpegs[n] for n in numbers]
