"""Evaluate a folder of predicted masks against ground truth (DAVIS or SA-V layout).

Layouts (frame files are ``%05d.png``; the stem is the frame index):

- ``davis``: ``<root>/<seq>/<frame>.png`` indexed PNGs, 0 background, 1..N objects, 255
  void. The ground-truth root may also be a DAVIS root holding ``Annotations/480p``. Objects
  are the labels that occur in any ground-truth frame of the sequence; the predicted mask of
  object k is ``prediction == k`` (other labels are ignored).
- ``sav``: ``<root>/<video>/<object>/<frame>.png`` one binary PNG per object (non-zero =
  object) on the annotated frames only; the object id is the folder name read as an integer.

Frames evaluated: the ground-truth frames of the sequence (DAVIS) or of the object (SA-V),
without the first and last one when ``skip_first_last`` (standard semi-supervised protocol).
A missing prediction file is scored as an empty mask and reported in
``VideoScores.missing_files``; a prediction of another size raises ``InputError``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from masklet.errors import InputError
from masklet.eval.aggregate import EvaluationResult, ObjectScores, VideoScores
from masklet.eval.metrics import boundary_f_measure, region_similarity
from masklet.io.pil_images import read_label_values

DATASET_FORMATS: tuple[str, ...] = ("davis", "sav")
VOID_LABEL = 255


def read_label_png(path: Path) -> np.ndarray:
    """Read a label PNG as an HxW int64 array of palette indices or gray values.

    Indexed ("P"), gray ("L", "I", "I;16", "1") images give their stored values; RGB(A)
    images are accepted only when all colour channels are equal (a gray image saved as RGB).
    Read with `masklet.io.pil_images.read_label_values` (turned upright by any EXIF
    orientation, as every image masklet reads).

    Raises:
        InputError: unreadable file, or a colour image that is not gray.
    """
    return read_label_values(path, what="mask").astype(np.int64)


def _png_stems(folder: Path) -> list[str]:
    return sorted(path.stem for path in folder.glob("*.png"))


def _subfolders(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_dir())


def _frames_to_evaluate(frames: list[str], skip_first_last: bool) -> list[str]:
    return frames[1:-1] if skip_first_last else frames


def _read_prediction(
    pred_path: Path, shape: tuple[int, ...], pred_root: Path, missing: list[str]
) -> np.ndarray:
    """Read one predicted label image; empty (zeros) and recorded when the file is missing."""
    if not pred_path.is_file():
        missing.append(pred_path.relative_to(pred_root).as_posix())
        return np.zeros(shape, dtype=np.int64)
    labels = read_label_png(pred_path)
    if labels.shape != shape:
        raise InputError(
            f"prediction {pred_path} has size {labels.shape[1]}x{labels.shape[0]}, "
            f"ground truth has {shape[1]}x{shape[0]}"
        )
    return labels


def resolve_davis_annotations(gt_root: Path) -> Path:
    """Return the folder holding the sequence folders of a DAVIS ground truth."""
    for candidate in (gt_root / "Annotations" / "480p", gt_root / "Annotations"):
        if candidate.is_dir() and _subfolders(candidate):
            return candidate
    return gt_root


def _check_roots(pred_root: Path, gt_root: Path) -> None:
    if not gt_root.is_dir():
        raise InputError(f"ground-truth folder {gt_root} does not exist")
    if not pred_root.is_dir():
        raise InputError(f"prediction folder {pred_root} does not exist")


def _evaluate_davis_sequence(
    name: str, gt_dir: Path, pred_root: Path, skip_first_last: bool
) -> VideoScores:
    frames = _png_stems(gt_dir)
    if not frames:
        raise InputError(f"ground-truth sequence {gt_dir} holds no PNG masks")
    gt_frames = {frame: read_label_png(gt_dir / f"{frame}.png") for frame in frames}
    labels = np.unique(np.concatenate([np.unique(gt) for gt in gt_frames.values()]))
    object_ids = [int(label) for label in labels if label not in (0, VOID_LABEL)]
    evaluated = _frames_to_evaluate(frames, skip_first_last)
    j_values: dict[int, list[float]] = {obj: [] for obj in object_ids}
    f_values: dict[int, list[float]] = {obj: [] for obj in object_ids}
    missing: list[str] = []
    for frame in evaluated:
        gt = gt_frames[frame]
        pred = _read_prediction(pred_root / name / f"{frame}.png", gt.shape, pred_root, missing)
        void = gt == VOID_LABEL
        for obj in object_ids:
            j_values[obj].append(region_similarity(pred == obj, gt == obj, void))
            f_values[obj].append(boundary_f_measure(pred == obj, gt == obj, void))
    objects = tuple(
        ObjectScores(obj, tuple(evaluated), tuple(j_values[obj]), tuple(f_values[obj]))
        for obj in object_ids
    )
    return VideoScores(name=name, objects=objects, missing_files=tuple(missing))


def evaluate_davis(
    pred_root: str | Path, gt_root: str | Path, skip_first_last: bool = True
) -> EvaluationResult:
    """Evaluate DAVIS-layout predictions (see the module docstring).

    Args:
        pred_root: folder with ``<seq>/<frame>.png`` indexed predictions.
        gt_root: folder with ``<seq>/<frame>.png`` ground truth, or a DAVIS root.
        skip_first_last: leave out each sequence's first and last frame.
    """
    pred_path, gt_path = Path(pred_root), Path(gt_root)
    _check_roots(pred_path, gt_path)
    annotations = resolve_davis_annotations(gt_path)
    sequences = _subfolders(annotations)
    if not sequences:
        raise InputError(f"no sequence folders in ground truth {annotations}")
    if not _png_stems(sequences[0]) and _subfolders(sequences[0]):
        raise InputError(f"{annotations} looks like the SA-V layout; use --format sav")
    videos = tuple(
        _evaluate_davis_sequence(seq.name, seq, pred_path, skip_first_last) for seq in sequences
    )
    return EvaluationResult("davis", videos, skip_first_last)


def _evaluate_sav_object(
    video: str, obj_dir: Path, pred_root: Path, skip_first_last: bool, missing: list[str]
) -> ObjectScores:
    try:
        object_id = int(obj_dir.name)
    except ValueError as error:
        raise InputError(
            f"{obj_dir} is not an SA-V object folder (<video>/<object number>/<frame>.png); "
            "for DAVIS data use --format davis"
        ) from error
    evaluated = _frames_to_evaluate(_png_stems(obj_dir), skip_first_last)
    j_values: list[float] = []
    f_values: list[float] = []
    for frame in evaluated:
        gt = read_label_png(obj_dir / f"{frame}.png") > 0
        pred_path = pred_root / video / obj_dir.name / f"{frame}.png"
        pred = _read_prediction(pred_path, gt.shape, pred_root, missing) > 0
        j_values.append(region_similarity(pred, gt))
        f_values.append(boundary_f_measure(pred, gt))
    return ObjectScores(object_id, tuple(evaluated), tuple(j_values), tuple(f_values))


def evaluate_sav(
    pred_root: str | Path, gt_root: str | Path, skip_first_last: bool = True
) -> EvaluationResult:
    """Evaluate SA-V-layout predictions (see the module docstring).

    Args:
        pred_root: folder with ``<video>/<object>/<frame>.png`` binary predictions.
        gt_root: folder with ``<video>/<object>/<frame>.png`` binary ground truth.
        skip_first_last: leave out each object's first and last annotated frame.
    """
    pred_path, gt_path = Path(pred_root), Path(gt_root)
    _check_roots(pred_path, gt_path)
    video_dirs = _subfolders(gt_path)
    if not video_dirs:
        raise InputError(f"no video folders in ground truth {gt_path}")
    videos = []
    for video_dir in video_dirs:
        object_dirs = _subfolders(video_dir)
        if not object_dirs and _png_stems(video_dir):
            raise InputError(f"{video_dir} holds PNGs directly: DAVIS layout, use --format davis")
        missing: list[str] = []
        objects = tuple(
            _evaluate_sav_object(video_dir.name, obj_dir, pred_path, skip_first_last, missing)
            for obj_dir in object_dirs
        )
        ordered = tuple(sorted(objects, key=lambda obj: obj.object_id))
        videos.append(VideoScores(video_dir.name, ordered, tuple(missing)))
    return EvaluationResult("sav", tuple(videos), skip_first_last)


def evaluate(
    pred_root: str | Path,
    gt_root: str | Path,
    dataset_format: str = "davis",
    skip_first_last: bool = True,
) -> EvaluationResult:
    """Evaluate predictions in ``dataset_format`` (``"davis"`` or ``"sav"``) layout."""
    if dataset_format == "davis":
        return evaluate_davis(pred_root, gt_root, skip_first_last)
    if dataset_format == "sav":
        return evaluate_sav(pred_root, gt_root, skip_first_last)
    raise InputError(f"unknown dataset format {dataset_format!r}; choose from {DATASET_FORMATS}")
