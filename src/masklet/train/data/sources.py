"""`open_source`: build a training source from a short spec (what a TOML config names)."""

from __future__ import annotations

import inspect
from typing import Any

from masklet.errors import ConfigError
from masklet.train.data.davis import DavisSource
from masklet.train.data.images import CocoSource, Sa1bSource
from masklet.train.data.sav import SavSource
from masklet.train.data.synthetic import SyntheticSource
from masklet.train.data.video import ClipSource

SOURCE_KINDS = ("davis", "mose", "sav", "sa1b", "coco", "synthetic")


_SOURCE_TYPES: dict[str, type[Any]] = {
    "davis": DavisSource,
    "mose": DavisSource,
    "sav": SavSource,
    "sa1b": Sa1bSource,
    "coco": CocoSource,
    "synthetic": SyntheticSource,
}


def _check_options(kind: str, source_type: type[Any], options: dict[str, Any]) -> None:
    """ConfigError for an option that `source_type` does not take."""
    parameters = inspect.signature(source_type).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return  # it checks its own extra options
    known = [name for name, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown option {unknown[0]!r} for a {kind} source; known: {', '.join(known)}"
        )


def open_source(kind: str, path: str | None = None, **options: Any) -> ClipSource:
    """Open a training source.

    Kinds, their `path` and options (every kind also takes `name`, the dataset name used in
    clip names, default the kind):
    - "davis", "mose": `path` the dataset root holding `JPEGImages[/480p]` (or
      `JPEGImages_24fps`) and `Annotations[/480p]` (or `Annotations_6fps`), with palette
      PNGs or per-object `<obj:03d>/` PNG folders. Options: `image_folder`,
      `annotation_folder` (explicit folders; with both, `path` may be None for "davis"),
      `file_list` (text file of sequence names, one a line).
    - "sav": `path` a folder searched recursively for `<id>_manual.json` next to `<id>.mp4`
      or an `<id>/` JPEG folder. Options: `include_auto` (bool, default False: also use
      `<id>_auto.json`).
    - "sa1b": `path` a folder of `sa_*.jpg` + `sa_*.json`. No options.
    - "coco": `path` the instances JSON. Options: `image_folder` (default guessed from
      `<root>/annotations/instances_<split>.json` -> `<root>/<split>`), `include_crowd`
      (bool, default False).
    - "synthetic": `path` the photo folder (None: `$MASKLET_SAMPLES`, else
      `~/.cache/masklet-samples`). Options: `split` ("train" | "eval", default "train"),
      `width` (256), `height` (144), `num_frames` (8, >= the clip length), `num_objects`
      (3), `num_videos` (1,000,000), `seed` (0), `images` (False: True gives one-frame
      multi-object images), and any other `masklet.bench.SyntheticVideoConfig` field.

    Raises:
        ConfigError: unknown kind or option, or a missing path.
        InputError: a missing folder or file, or one with no usable video or image (the
            message names it and the layout expected).
    """
    source_type = _SOURCE_TYPES.get(kind)
    if source_type is None:
        raise ConfigError(f"unknown data source kind {kind!r}; known: {', '.join(SOURCE_KINDS)}")
    _check_options(kind, source_type, options)
    options.setdefault("name", kind)
    if kind == "synthetic":
        return SyntheticSource(path, **options)
    if kind == "davis" and path is None:
        return DavisSource(None, **options)
    if path is None:
        raise ConfigError(f"a {kind} source needs a path")
    source: ClipSource = source_type(path, **options)
    return source
