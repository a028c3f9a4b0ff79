"""Prompt syntax of `masklet track`: `--prompt SPEC` strings and the `--prompts FILE.json` file.

A SPEC is comma-separated `key=value` items (see docs/cli.md):

    frame=0,obj=1,point=120:80              a click (label 1 = foreground) on frame 0
    frame=0,obj=1,point=120:80;140:90:0     two clicks, the second one background (label 0)
    obj=2,box=10:20:110:90,point=60:50      a box (x0:y0:x1:y1) plus a click
    frame=5,obj=3,mask=person.png           a mask (non-zero pixels; `label=K`: pixels == K)

`frame` defaults to 0 and `obj` to 1; `point` may repeat, `neg=x:y` is `point=x:y:0`.
Several prompts for the same object and frame are merged (clicks add up; one box, one mask).
Coordinates are pixels of the video frame, x to the right, y down.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from masklet.errors import InputError
from masklet.io.files import describe_os_error
from masklet.io.masks import read_png_palette
from masklet.io.pil_images import read_mask_values
from masklet.predictors.prompts import CLICK_LABELS, check_inside, check_labels

_KEYS = ("frame", "obj", "point", "neg", "box", "mask", "label")
_FILE_KEYS = ("frame", "obj", "points", "box", "mask", "label")


@dataclass(frozen=True)
class ObjectPrompt:
    """The prompt of one object on one frame: clicks and/or a box, or a mask file."""

    frame: int
    obj_id: int
    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()  # 1 foreground, 0 background, one per point
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1
    mask_path: Path | None = None
    mask_label: int | None = None  # use pixels == label (default: any non-zero pixel)
    origin: str = ""  # where it was written (for error messages)

    @property
    def has_prompt(self) -> bool:
        return bool(self.points) or self.box is not None or self.mask_path is not None


# ---------------------------------------------------------------- values


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{what}: {text!r} is not a finite number")
    return value


def _integer(value: Any, what: str, minimum: int | None = 0) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.removeprefix("-").isdigit():
        raise InputError(f"{what} must be a whole number, got {value!r}")
    number = int(text)
    if minimum is not None and number < minimum:
        raise InputError(f"{what} must be >= {minimum}, got {number}")
    return number


def _json_numbers(values: Any, what: str, field: str) -> list[Any]:
    """The items of a JSON list field, checked to be JSON numbers (not strings, true, null)."""
    if not isinstance(values, list):
        raise InputError(f"{what}: {field} must be a list of numbers, got {json.dumps(values)}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{what}: {field} must hold numbers, got {json.dumps(value)}")
    return values


def _json_integer(entry: dict[str, Any], key: str, default: int | None, what: str) -> Any:
    """`entry[key]` (or `default`), checked to be a JSON whole number when given."""
    value = entry.get(key, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InputError(f"{what}: {key} must be a whole number, got {json.dumps(value)}")
    return value


def _point(values: Sequence[Any], what: str) -> tuple[tuple[float, float], int]:
    if len(values) not in (2, 3):
        raise InputError(f"{what}: a point is x:y or x:y:label, got {len(values)} values")
    x, y = (_number(str(v), what) for v in values[:2])
    label = 1 if len(values) == 2 else _integer(values[2], f"{what} label")
    check_labels(label, f"{what}: label", CLICK_LABELS)
    return (x, y), label


def _box(values: Sequence[Any], what: str) -> tuple[float, float, float, float]:
    if len(values) != 4:
        raise InputError(f"{what}: a box is x0:y0:x1:y1, got {len(values)} values")
    x0, y0, x1, y1 = (_number(str(v), what) for v in values)
    if x0 >= x1 or y0 >= y1:
        raise InputError(f"{what}: box needs x0 < x1 and y0 < y1, got {x0:g}:{y0:g}:{x1:g}:{y1:g}")
    return x0, y0, x1, y1


# ---------------------------------------------------------------- --prompt SPEC


def _split_items(text: str) -> list[tuple[str, str]]:
    items = []
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not key or not value:
            raise InputError(f"bad --prompt {text!r}: {item.strip()!r} is not key=value")
        if key not in _KEYS:
            raise InputError(
                f"bad --prompt {text!r}: unknown key {key!r} (keys: {', '.join(_KEYS)})"
            )
        items.append((key, value))
    return items


def parse_prompt_spec(text: str) -> ObjectPrompt:
    """Parse one `--prompt` SPEC (see the module docstring)."""
    what = f"--prompt {text!r}"
    fields: dict[str, Any] = {"frame": 0, "obj_id": 1}
    points: list[tuple[float, float]] = []
    labels: list[int] = []
    seen: set[str] = set()
    for key, value in _split_items(text):
        if key in seen and key not in ("point", "neg"):
            raise InputError(f"bad {what}: {key} given twice")
        seen.add(key)
        if key in ("point", "neg"):
            for part in value.split(";"):
                xy, label = _point(part.split(":"), f"bad {what}")
                points.append(xy)
                labels.append(0 if key == "neg" else label)
        elif key == "frame":
            fields["frame"] = _integer(value, f"bad {what}: frame", minimum=None)
        elif key == "obj":
            fields["obj_id"] = _integer(value, f"bad {what}: obj")
        elif key == "box":
            fields["box"] = _box(value.split(":"), f"bad {what}")
        elif key == "mask":
            fields["mask_path"] = Path(value)
        else:
            fields["mask_label"] = _integer(value, f"bad {what}: label", minimum=1)
    return _finish(ObjectPrompt(points=tuple(points), labels=tuple(labels), origin=what, **fields))


def _finish(prompt: ObjectPrompt) -> ObjectPrompt:
    """Check that the prompt gives its object something to track, and nothing contradictory."""
    if not prompt.has_prompt:
        raise InputError(
            f"{prompt.origin}: object {prompt.obj_id} has no prompt (give point=, box= or mask=)"
        )
    if prompt.mask_path is not None and (prompt.points or prompt.box is not None):
        raise InputError(f"{prompt.origin}: a mask prompt cannot be combined with points or a box")
    if prompt.mask_label is not None and prompt.mask_path is None:
        raise InputError(f"{prompt.origin}: label= selects a value of a mask= file; give mask=")
    return prompt


# ---------------------------------------------------------------- --prompts FILE.json


def _file_entry(entry: Any, index: int, folder: Path, path: Path) -> ObjectPrompt:
    what = f"{path}: prompt {index}"
    if not isinstance(entry, dict):
        raise InputError(f"{what} must be an object with frame, obj, points/box/mask")
    unknown = sorted(set(entry) - set(_FILE_KEYS))
    if unknown:
        raise InputError(f"{what}: unknown key {unknown[0]!r} (keys: {', '.join(_FILE_KEYS)})")
    points: list[tuple[float, float]] = []
    labels: list[int] = []
    raw_points = entry.get("points", [])
    if not isinstance(raw_points, list) or not all(isinstance(p, list) for p in raw_points):
        raise InputError(f"{what}: points must be a list of [x, y] or [x, y, label]")
    for raw in raw_points:
        xy, label = _point(_json_numbers(raw, what, "a point"), what)
        points.append(xy)
        labels.append(label)
    box = entry.get("box")
    if box is not None and not isinstance(box, list):
        raise InputError(f"{what}: box must be [x0, y0, x1, y1]")
    mask = entry.get("mask")
    if mask is not None and not isinstance(mask, str):
        raise InputError(f"{what}: mask must be a file path (relative to the JSON file)")
    mask_label = _json_integer(entry, "label", None, what)
    prompt = ObjectPrompt(
        frame=_integer(_json_integer(entry, "frame", 0, what), f"{what}: frame", minimum=None),
        obj_id=_integer(_json_integer(entry, "obj", 1, what), f"{what}: obj"),
        points=tuple(points),
        labels=tuple(labels),
        box=None if box is None else _box(_json_numbers(box, what, "box"), what),
        mask_path=None if mask is None else folder / mask,
        mask_label=None if mask_label is None else _integer(mask_label, f"{what}: label", 1),
        origin=what,
    )
    return _finish(prompt)


def load_prompts_file(path: Path) -> list[ObjectPrompt]:
    """Read a prompts file: a JSON list of prompts, or `{"prompts": [...]}` (docs/cli.md).
    Mask paths are relative to the file's folder."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"prompts file not found: {path}") from None
    except OSError as error:
        raise InputError(f"cannot read prompts file {path}: {describe_os_error(error)}") from None
    except UnicodeDecodeError as error:
        raise InputError(f"prompts file {path} is not UTF-8 text: {error.reason}") from None
    except json.JSONDecodeError as error:
        raise InputError(f"prompts file {path} is not valid JSON: {error}") from None
    except RecursionError:
        raise InputError(f"prompts file {path} is nested too deeply to be a prompts file") from None
    entries = data.get("prompts") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise InputError(
            f'prompts file {path} must hold a non-empty list (or {{"prompts": [...]}})'
        )
    return [_file_entry(entry, i, path.parent, path) for i, entry in enumerate(entries)]


# ---------------------------------------------------------------- merging and checking


def _merge_two(first: ObjectPrompt, second: ObjectPrompt) -> ObjectPrompt:
    where = f"object {first.obj_id} on frame {first.frame}"
    if first.mask_path is not None or second.mask_path is not None:
        raise InputError(f"{where} has a mask prompt and another prompt ({second.origin})")
    if first.box is not None and second.box is not None:
        raise InputError(f"{where} has two boxes ({first.origin} and {second.origin})")
    return replace(
        first,
        points=first.points + second.points,
        labels=first.labels + second.labels,
        box=first.box if first.box is not None else second.box,
    )


def merge_prompts(prompts: Iterable[ObjectPrompt]) -> list[ObjectPrompt]:
    """One prompt per (frame, object): clicks of repeated specs add up. Sorted by frame, obj."""
    merged: dict[tuple[int, int], ObjectPrompt] = {}
    for prompt in prompts:
        key = (prompt.frame, prompt.obj_id)
        merged[key] = _merge_two(merged[key], prompt) if key in merged else prompt
    return [merged[key] for key in sorted(merged)]


def load_mask(prompt: ObjectPrompt, height: int, width: int) -> np.ndarray:
    """The (H, W) bool mask of a mask prompt, checked against the frame size."""
    assert prompt.mask_path is not None
    path = prompt.mask_path
    if not path.is_file():
        raise InputError(f"{prompt.origin}: mask file not found: {path}")
    try:  # as displayed (EXIF orientation applied), like the frames it is drawn on
        values = read_mask_values(path, what="mask")
    except InputError as error:
        raise InputError(f"{prompt.origin}: {error}") from None
    if values.shape[:2] != (height, width):
        raise InputError(
            f"{prompt.origin}: mask {path} is {values.shape[1]}x{values.shape[0]}, "
            f"the video is {width}x{height}"
        )
    mask = values != 0 if prompt.mask_label is None else values == prompt.mask_label
    if not mask.any():
        raise InputError(f"{prompt.origin}: mask {path} selects no pixel")
    return mask


def check_prompt(prompt: ObjectPrompt, num_frames: int | None, height: int, width: int) -> None:
    """Check a prompt against the video: frame in range, clicks and box inside the frame."""
    if num_frames is not None and not 0 <= prompt.frame < num_frames:
        raise InputError(
            f"{prompt.origin}: frame {prompt.frame} is out of range, the video has "
            f"{num_frames} frames (0..{num_frames - 1})"
        )
    if prompt.frame < 0:
        raise InputError(f"{prompt.origin}: frame {prompt.frame} is negative (frames count from 0)")
    try:
        check_inside(np.array(prompt.points).reshape(-1, 2), (height, width), frame_name="frame")
        if prompt.box is not None:
            check_inside(np.array(prompt.box), (height, width), True, "box corner", "frame")
    except InputError as error:
        raise InputError(f"{prompt.origin}: {error}") from None
    if prompt.mask_path is not None:
        load_mask(prompt, height, width)


def prompt_palette(prompts: Iterable[ObjectPrompt]) -> np.ndarray | None:
    """The palette of the first indexed (P-mode) mask prompt, to keep its colours on output."""
    for prompt in prompts:
        if prompt.mask_path is None:
            continue
        palette = read_png_palette(prompt.mask_path)
        if palette is not None:
            return palette
    return None
