"""Resumable, verified downloads of official checkpoints, and checkpoint resolution for
commands."""

from __future__ import annotations

import http.client
import os
import sys
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import IO

from tqdm import tqdm

from masklet.errors import CheckpointError
from masklet.weights.cache import (
    PART_SUFFIX,
    _file_size,
    _known_sha256,
    _sha256_of,
    _write_record,
    cached_path,
    resolve_cache_dir,
    verify,
)
from masklet.weights.registry import WeightsEntry, get_weights
from masklet.weights.shipped import has_shipped_weights, shipped_checkpoint

_CHUNK_BYTES = 1 << 20


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
    on first use when `download_missing`; a cached file is checked for size and digest. The
    name of a shipped model (`masklet_nano`) resolves to the file in the package, checked
    against its manifest.
    """
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise CheckpointError(f"checkpoint file not found: {path}")
        return path
    if model is None:
        raise CheckpointError("no checkpoint given: pass a model name or a checkpoint path")
    if isinstance(model, str) and has_shipped_weights(model):
        return shipped_checkpoint(model)
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
