"""`masklet info VIDEO [--json]`: frame count, fps, size, codec and duration of a video file
(or the frame count and size of a folder of frames)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from masklet.errors import InputError
from masklet.io.image_folder import ImageFolderSource
from masklet.io.video_file import probe_video


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `info` command."""
    parser = subparsers.add_parser("info", help="frames, fps, size and codec of a video")
    parser.add_argument("video", type=Path, help="video file or folder of JPEG/PNG frames")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def describe(path: Path) -> dict[str, Any]:
    """What `masklet info` reports, as a dict (folders: no fps, codec or duration)."""
    if path.is_dir():
        with ImageFolderSource(path) as source:
            return {
                "path": str(path),
                "frames": source.num_frames,
                "fps": None,
                "width": source.width,
                "height": source.height,
                "codec": None,
                "duration": None,
            }
    if not path.exists():
        raise InputError(f"video not found: {path}")
    return dataclasses.asdict(probe_video(path))


def _text(info: dict[str, Any]) -> str:
    lines = [
        f"path:      {info['path']}",
        f"frames:    {info['frames']}",
        f"size:      {info['width']}x{info['height']} (width x height)",
    ]
    if info["fps"] is not None:
        lines += [
            f"fps:       {info['fps']:g}",
            f"duration:  {info['duration']:.3f} s",
            f"codec:     {info['codec']}",
        ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Handler of `masklet info`."""
    info = describe(args.video)
    print(json.dumps(info) if args.json else _text(info))
    return 0
