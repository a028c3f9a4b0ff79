"""Writing output files so that each one is complete or absent, with one-line write errors.

- `AtomicFile(path)`: a file written under a temporary name next to `path` (a hidden
  `.<stem>.partial-<pid><suffix>` in the same folder, so the rename is atomic and the suffix
  still tells PIL and FFmpeg the format); `commit()` renames it over `path`, `discard()`
  removes it. As a context manager it commits on success and discards on any error. So a
  crash, Ctrl-C or a full disk never leaves a half-written file under its final name.
- Every `OSError` while creating the folder, writing or renaming becomes a `MaskletError`
  naming the file and the problem (`write_failure`, `describe_os_error`: "no space left on
  device (disk full)", "read-only file system", "permission denied", ...).
- `write_png(path, image)` and `write_json(path, data)` are built on it;
  `make_output_folder(folder)` creates an output folder with the same kind of message.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from PIL import Image

from masklet.errors import MaskletError

_PROBLEMS = {
    errno.ENOSPC: "no space left on device (disk full)",
    errno.EDQUOT: "disk quota exceeded (disk full for this user)",
    errno.EFBIG: "file too large for this file system",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENOENT: "no such file or folder",
}


def describe_os_error(error: BaseException) -> str:
    """A short lower-case phrase for what went wrong (`OSError`s and FFmpeg errors)."""
    code = getattr(error, "errno", None)
    if code in _PROBLEMS:
        return _PROBLEMS[code]
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return str(reason).splitlines()[0]


def write_failure(path: str | Path, error: BaseException) -> MaskletError:
    """The error to raise when writing `path` failed with `error`."""
    return MaskletError(f"cannot write {path}: {describe_os_error(error)}")


def temporary_path(path: Path) -> Path:
    """Where `path` is written before it is complete (same folder and suffix, hidden)."""
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


class AtomicFile:
    """Write `path` under `temporary` (its parent folders are created), then `commit()`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.temporary = temporary_path(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise write_failure(self.path, error) from error

    def commit(self) -> None:
        """Rename the finished temporary file over `path`."""
        try:
            os.replace(self.temporary, self.path)
        except OSError as error:
            self.discard()
            raise write_failure(self.path, error) from error

    def discard(self) -> None:
        """Remove the temporary file, if any (never raises)."""
        with contextlib.suppress(OSError):
            self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.temporary

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is None:
            self.commit()
            return
        self.discard()
        if isinstance(error, OSError):
            raise write_failure(self.path, error) from error


def write_png(path: str | Path, image: Image.Image | np.ndarray) -> Path:
    """Write a PNG atomically (an array goes through `Image.fromarray`). Returns the path."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    with AtomicFile(path) as temporary:
        picture.save(temporary, format="PNG")
    return Path(path)


def write_json(path: str | Path, data: Any, indent: int | None = None) -> Path:
    """Write `data` as JSON (plus a final newline) atomically. Returns the path."""
    text = json.dumps(data, indent=indent) + "\n"
    with AtomicFile(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def make_output_folder(folder: str | Path) -> None:
    """Create an output folder and its parents; one-line errors when that is impossible."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise MaskletError(f"output folder {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MaskletError(
            f"cannot create output folder {folder}: {describe_os_error(error)}"
        ) from error
