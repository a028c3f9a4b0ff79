"""Official SAM 2 / SAM 2.1 checkpoints: registry, cache, resumable verified downloads.

The registry holds Meta's eight released files with their exact sizes. None of their SHA-256
digests is published, so the digest of a file is computed after its first complete download
(or the first time a hand-placed file is checked) and recorded in `checksums.json` in the cache
directory; `verify` and later loads compare against it ("trust on first use").

Cache directory: see `default_cache_dir`. `$MASKLET_WEIGHTS_BASE_URL` replaces the official URL
prefix (mirrors, tests).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import IO

from tqdm import tqdm

from masklet.errors import CheckpointError, ConfigError

OFFICIAL_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2"
BASE_URL_ENV = "MASKLET_WEIGHTS_BASE_URL"
HOME_ENV = "MASKLET_HOME"
CHECKSUMS_FILE = "checksums.json"
PART_SUFFIX = ".part"
_CHUNK_BYTES = 1 << 20
_HASH_CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class WeightsEntry:
    """One downloadable checkpoint: the preset it belongs to, where it lives, how big it is."""

    name: str  # preset name, e.g. "sam2.1_hiera_t"
    file_name: str  # e.g. "sam2.1_hiera_tiny.pt"
    url: str  # official URL; `MASKLET_WEIGHTS_BASE_URL` may replace its prefix
    size: int  # exact size in bytes
    sha256: str | None = None  # published digest, if any
    aliases: tuple[str, ...] = ()  # other names users know (HF ids, ...)

    @property
    def stem(self) -> str:
        """File name without `.pt` (`sam2.1_hiera_tiny`)."""
        return self.file_name.removesuffix(".pt")

    def download_url(self) -> str:
        """The URL to fetch, with the base URL override from the environment applied."""
        base_url = os.environ.get(BASE_URL_ENV, "").rstrip("/")
        if base_url and self.url.startswith(OFFICIAL_BASE_URL):
            return base_url + self.url[len(OFFICIAL_BASE_URL) :]
        return self.url


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


_RELEASE_DIRS = {"sam2": "072824", "sam2.1": "092824"}
_VARIANTS = (("t", "tiny"), ("s", "small"), ("b+", "base_plus"), ("l", "large"))
_SIZES = {  # exact bytes of the released files, in `_VARIANTS` order
    "sam2": (155_906_050, 184_309_650, 323_493_298, 897_952_466),
    "sam2.1": (156_008_466, 184_416_285, 323_606_802, 898_083_611),
}


def _official_entries() -> tuple[WeightsEntry, ...]:
    entries = []
    for release, directory in _RELEASE_DIRS.items():
        for (short, long), size in zip(_VARIANTS, _SIZES[release], strict=True):
            stem = f"{release}_hiera_{long}"
            url = f"{OFFICIAL_BASE_URL}/{directory}/{stem}.pt"
            hf_id = f"facebook/{release}-hiera-{long.replace('_', '-')}"
            entries.append(
                WeightsEntry(f"{release}_hiera_{short}", f"{stem}.pt", url, size, None, (hf_id,))
            )
    return tuple(entries)


_ENTRIES: tuple[WeightsEntry, ...] = _official_entries()
WEIGHTS: Mapping[str, WeightsEntry] = MappingProxyType({entry.name: entry for entry in _ENTRIES})


def _alias_table() -> dict[str, WeightsEntry]:
    table: dict[str, WeightsEntry] = {}
    for entry in _ENTRIES:
        for alias in (entry.name, entry.stem, entry.file_name, *entry.aliases):
            table[alias.lower()] = entry
    return table


_ALIASES: Mapping[str, WeightsEntry] = MappingProxyType(_alias_table())


def get_weights(name: str | WeightsEntry) -> WeightsEntry:
    """Registry entry for a preset name, file stem, file name or Hugging Face id.

    A `WeightsEntry` is returned unchanged, so callers (and tests) may pass their own.
    """
    if isinstance(name, WeightsEntry):
        return name
    entry = _ALIASES.get(name.strip().lower())
    if entry is None:
        known = ", ".join(WEIGHTS)
        raise ConfigError(f"unknown checkpoint {name!r}; known: {known}")
    return entry


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
        for entry in _ENTRIES
    ]


# ---------------------------------------------------------------- download


def _by_hand(url: str, path: Path) -> str:
    return f"to get it by hand, download {url} and save it as {path}"


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    request = urllib.request.Request(url, headers=headers)
    response: http.client.HTTPResponse = urllib.request.urlopen(request, timeout=timeout)
    return response


def _announced_total(response: http.client.HTTPResponse, offset: int) -> int | None:
    """Total file size the server announces (Content-Range, else Content-Length)."""
    content_range = response.headers.get("Content-Range", "")
    if response.status == 206 and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    if length is None or not length.isdigit():
        return None
    return int(length) + (offset if response.status == 206 else 0)


def _range_start(response: http.client.HTTPResponse) -> int | None:
    """First byte of a 206 response (`Content-Range: bytes START-END/TOTAL`)."""
    unit_and_range = response.headers.get("Content-Range", "").split("/")[0]
    start = unit_and_range.replace("bytes", "").strip().split("-")[0]
    return int(start) if start.isdigit() else None


def _copy(response: IO[bytes], sink: IO[bytes], offset: int, size: int, bar: tqdm) -> int:
    """Stream the body into `sink`; return the file size reached. Raises if over `size`."""
    while chunk := response.read(_CHUNK_BYTES):
        offset += len(chunk)
        if offset > size:
            raise CheckpointError(f"server sent more than the expected {size} bytes")
        sink.write(chunk)
        bar.update(len(chunk))
    return offset


def _transfer(url: str, part: Path, size: int, progress: bool, timeout: float) -> None:
    """Bring `part` to `size` bytes, resuming from its current length when the server can."""
    offset = _file_size(part) or 0
    if offset >= size:  # complete (or too long: restart)
        if offset == size:
            return
        offset = 0
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as error:
        if error.code != 416 or offset == 0:
            raise
        offset = 0  # range not satisfiable: the partial file is unusable, start over
        response = _open(url, 0, timeout)
    with response:
        if response.status != 206:
            offset = 0  # the server ignored the Range header: restart from the first byte
        elif _range_start(response) != offset:
            part.unlink(missing_ok=True)
            raise ConnectionError(f"server sent a range not starting at byte {offset}")
        total = _announced_total(response, offset)
        if total is not None and total != size:
            raise CheckpointError(f"server reports {total} bytes, expected {size}")
        show = progress and sys.stderr.isatty()
        bar = tqdm(
            total=size,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name.removesuffix(PART_SUFFIX),
            disable=not show,
        )
        with bar, part.open("ab" if offset else "wb") as sink:
            reached = _copy(response, sink, offset, size, bar)
    if reached < size:
        raise ConnectionError(f"connection closed after {reached} of {size} bytes")


def _finish(entry: WeightsEntry, part: Path, path: Path, root: Path) -> None:
    """Check the complete `.part` (size, digest), move it into place and record its digest."""
    actual_size = part.stat().st_size
    if actual_size != entry.size:
        raise CheckpointError(f"downloaded {actual_size} bytes, expected {entry.size}")
    digest = _sha256_of(part)
    expected = _known_sha256(entry, root)
    if expected is not None and digest != expected:
        raise CheckpointError(f"downloaded file has SHA-256 {digest}, expected {expected}")
    os.replace(part, path)
    _write_record(root, path, digest)


def download(
    name: str | WeightsEntry,
    cache_dir: str | os.PathLike[str] | None = None,
    url: str | None = None,
    progress: bool = True,
    *,
    expected_size: int | None = None,
    force: bool = False,
    timeout: float = 30.0,
) -> Path:
    """Download a checkpoint into the cache (resuming a `.part` file) and return its path.

    `name` is a registry name or alias, or a `WeightsEntry` of one's own; `url` and
    `expected_size` override the entry's. An already cached file of the right size is returned
    without a request unless `force`. Network failures raise `CheckpointError` on one line that
    names the URL and the target path; wrong sizes or digests raise and leave no file behind.
    """
    entry = get_weights(name)
    if expected_size is not None:
        entry = replace(entry, size=expected_size)
    source = url or entry.download_url()
    root = resolve_cache_dir(cache_dir)
    path = root / entry.file_name
    if _file_size(path) == entry.size and not force:
        return path
    part = path.with_name(path.name + PART_SUFFIX)
    try:
        root.mkdir(parents=True, exist_ok=True)
        _transfer(source, part, entry.size, progress, timeout)
        _finish(entry, part, path, root)
    except CheckpointError as error:  # wrong size or digest: keep nothing of it
        part.unlink(missing_ok=True)
        raise CheckpointError(f"download of {entry.name} from {source} failed: {error}") from None
    except (OSError, http.client.HTTPException) as error:  # network: keep `.part` to resume
        kept = _file_size(part) or 0
        resume = f"{kept} bytes kept in {part}, run again to resume; " if kept else ""
        raise CheckpointError(
            f"could not download {entry.name} ({_reason(error)}); {resume}{_by_hand(source, path)}"
        ) from None
    return path


def _reason(error: BaseException) -> str:
    """A short, single-line reason for a network error."""
    if isinstance(error, urllib.error.HTTPError):
        text = f"HTTP {error.code} {error.reason}"
    elif isinstance(error, urllib.error.URLError):
        text = str(error.reason)
    else:
        text = str(error)
    return " ".join(text.split()) or type(error).__name__


# ---------------------------------------------------------------- resolution for commands


def resolve_checkpoint(
    model: str | WeightsEntry | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    download_missing: bool = True,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> Path:
    """The checkpoint file a command should load: `--checkpoint PATH`, else `--model NAME`.

    An explicit path must exist. A model name resolves to its cached official file, downloaded
    on first use when `download_missing`; a cached file is checked for size and digest.
    """
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise CheckpointError(f"checkpoint file not found: {path}")
        return path
    if model is None:
        raise CheckpointError("no checkpoint given: pass a model name or a checkpoint path")
    entry = get_weights(model)
    if cached_path(entry, cache_dir) is None:
        if not download_missing:
            target = resolve_cache_dir(cache_dir) / entry.file_name
            raise CheckpointError(
                f"{entry.name} is not downloaded; run `masklet weights download {entry.name}` "
                f"or {_by_hand(entry.download_url(), target)}"
            )
        return download(entry, cache_dir, progress=progress)
    result = verify(entry, cache_dir, full=False)
    if result.problem is not None:
        raise CheckpointError(
            f"cached {entry.name} is bad: {result.problem}; "
            f"run `masklet weights download --force {entry.name}`"
        )
    return result.path
