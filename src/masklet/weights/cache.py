"""The local checkpoint cache: where files live, recorded SHA-256 digests, verify and list."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from masklet.weights.registry import WEIGHTS, WeightsEntry, get_weights

HOME_ENV = "MASKLET_HOME"
CHECKSUMS_FILE = "checksums.json"
PART_SUFFIX = ".part"
_HASH_CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class WeightsStatus:
    """What `list_weights` reports about one registry entry."""

    name: str
    file_name: str
    size: int  # expected size in bytes
    path: Path  # where the file is (or would be) cached
    cached_size: int | None  # size of the cached file, None if there is none
    partial_bytes: int  # bytes of an unfinished download (`.part`), 0 if none
    sha256: str | None  # published or recorded digest

    @property
    def cached(self) -> bool:
        """The cached file exists with the expected size (not hashed: see `verify`)."""
        return self.cached_size == self.size


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of checking a cached file against its expected size and SHA-256."""

    name: str
    path: Path
    expected_size: int
    actual_size: int | None  # None when the file is missing
    expected_sha256: str | None  # published or recorded digest (None: nothing to compare)
    actual_sha256: str | None  # None when missing or of the wrong size (not hashed)
    newly_recorded: bool = False  # no digest was known; the one computed now was recorded

    @property
    def problem(self) -> str | None:
        """One line naming what is wrong, or None when the file checks out."""
        if self.actual_size is None:
            return f"not downloaded (expected at {self.path})"
        if self.actual_size != self.expected_size:
            return f"size is {self.actual_size} bytes, expected {self.expected_size}: {self.path}"
        if self.expected_sha256 is not None and self.actual_sha256 != self.expected_sha256:
            return (
                f"SHA-256 {self.actual_sha256} differs from the expected "
                f"{self.expected_sha256}: {self.path} is corrupt"
            )
        return None

    @property
    def ok(self) -> bool:
        """True when the file exists with the right size and digest."""
        return self.problem is None


def default_cache_dir() -> Path:
    """`$MASKLET_HOME`, else the per-user cache directory plus `masklet`.

    Linux: `$XDG_CACHE_HOME/masklet` or `~/.cache/masklet`; macOS: `~/Library/Caches/masklet`;
    Windows: `%LOCALAPPDATA%\\masklet`.
    """
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "masklet"
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        base = Path(local) if local else Path.home() / "AppData" / "Local"
        return base / "masklet"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "masklet"


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The given cache directory (with `~` expanded), or `default_cache_dir()` when None."""
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def cached_path(
    name: str | WeightsEntry, cache_dir: str | os.PathLike[str] | None = None
) -> Path | None:
    """Path of the complete cached file for `name`, or None if it is not downloaded."""
    path = resolve_cache_dir(cache_dir) / get_weights(name).file_name
    return path if path.is_file() else None


# ---------------------------------------------------------------- recorded digests


def _read_records(root: Path) -> dict[str, dict[str, object]]:
    try:
        records = json.loads((root / CHECKSUMS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return records if isinstance(records, dict) else {}


def _write_record(root: Path, path: Path, sha256: str) -> None:
    """Record `path`'s digest with its size and mtime (atomic rewrite of the JSON file)."""
    records = _read_records(root)
    stat = path.stat()
    records[path.name] = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    temporary = root / f"{CHECKSUMS_FILE}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, root / CHECKSUMS_FILE)


def _record_of(root: Path, file_name: str) -> dict[str, object]:
    record = _read_records(root).get(file_name)
    return record if isinstance(record, dict) else {}


def _file_size(path: Path) -> int | None:
    """Size of a regular file in bytes, None when there is none."""
    return path.stat().st_size if path.is_file() else None


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _known_sha256(entry: WeightsEntry, root: Path) -> str | None:
    """The published digest, else the one recorded in the cache, else None."""
    recorded = _record_of(root, entry.file_name).get("sha256")
    return entry.sha256 or (recorded if isinstance(recorded, str) else None)


def _stat_matches_record(root: Path, path: Path) -> bool:
    """True when the file is unchanged (size, mtime) since its digest was last recorded."""
    record = _record_of(root, path.name)
    stat = path.stat()
    return record.get("size") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns


# ---------------------------------------------------------------- verify and list


def verify(
    name: str | WeightsEntry,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    full: bool = True,
) -> VerifyResult:
    """Check the cached file's size and SHA-256 against the registry or the recorded digest.

    `full=False` skips rehashing a file whose size and mtime are unchanged since its digest was
    recorded (what loads use). With no digest known yet, the computed one is recorded.
    """
    entry = get_weights(name)
    root = resolve_cache_dir(cache_dir)
    path = root / entry.file_name
    expected = _known_sha256(entry, root)
    result = VerifyResult(entry.name, path, entry.size, _file_size(path), expected, None)
    if result.actual_size != entry.size:
        return result
    if expected is not None and not full and _stat_matches_record(root, path):
        return replace(result, actual_sha256=expected)
    actual = _sha256_of(path)
    if expected is None or actual == expected:  # (re)record, so quick checks can skip hashing
        _write_record(root, path, actual)
    return replace(result, actual_sha256=actual, newly_recorded=expected is None)


def list_weights(cache_dir: str | os.PathLike[str] | None = None) -> list[WeightsStatus]:
    """Every registry entry with whether (and where) it is cached; does not hash anything."""
    root = resolve_cache_dir(cache_dir)
    return [
        WeightsStatus(
            name=entry.name,
            file_name=entry.file_name,
            size=entry.size,
            path=root / entry.file_name,
            cached_size=_file_size(root / entry.file_name),
            partial_bytes=_file_size(root / (entry.file_name + PART_SUFFIX)) or 0,
            sha256=_known_sha256(entry, root),
        )
        for entry in WEIGHTS.values()
    ]
