"""Weights shipped inside the package (DESIGN §11): `masklet/assets/<name>.pt` and its manifest
`masklet/assets/<name>.json`.

The `.pt` file has the official format (`{"model": state_dict}`) with its floating-point
tensors stored as float16, half the bytes of float32; loading copies them into the model's
float32 parameters. The manifest records the file's SHA-256 and size, the dtype, and where the
weights come from (`Provenance`). `shipped_checkpoint` checks the file against it before
anything loads it: a truncated copy or a Git LFS pointer in place of the file is a
`CheckpointError` naming the file.

`write_shipped_weights` is the one way these files are made, from a training run's float32
`model.pt` (`masklet weights ship RUN/model.pt ...`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from masklet.checkpoint import check_preset_state_dict, read_state_dict
from masklet.errors import CheckpointError
from masklet.io.files import AtomicFile, write_json
from masklet.weights.cache import _sha256_of

DEFAULT_SHIPPED_MODEL = "masklet_nano"
#: masklet's own presets whose weights ship in the package.
SHIPPED_MODELS = (DEFAULT_SHIPPED_MODEL,)
SHIPPED_DTYPE = torch.float16
#: Size limit of a shipped weights file (it travels in the wheel and the git repository).
MAX_SHIPPED_BYTES = 25_000_000
#: How a Git LFS pointer file starts (a clone without `git lfs pull`).
_LFS_POINTER_START = b"version https://git-lfs"


@dataclass(frozen=True)
class Provenance:
    """Where shipped weights come from (free text where no number fits)."""

    steps: int  # optimiser steps of the training run (0: not trained)
    train_hours: float  # wall-clock hours of training
    config: str  # the training config (e.g. `configs/train/masklet-nano.toml`)
    date: str  # when the weights were made, ISO 8601 (`2025-01-31`)
    note: str  # anything else a reader should know (data, hardware, caveats)


@dataclass(frozen=True)
class ShippedManifest:
    """The manifest `<name>.json`: the weights file it describes, and their provenance."""

    name: str  # preset name, e.g. `masklet_nano`
    file_name: str  # e.g. `masklet_nano.pt`, next to the manifest
    sha256: str
    bytes: int
    dtype: str  # storage dtype of the floating-point tensors (`float16`)
    provenance: Provenance

    @property
    def short_sha256(self) -> str:
        """The first 8 hex digits, for messages."""
        return self.sha256[:8]

    def to_json(self) -> dict[str, Any]:
        """The manifest as JSON: the provenance fields at the top level."""
        fields = dataclasses.asdict(self)
        provenance = fields.pop("provenance")
        return {**fields, **provenance}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShippedManifest:
        """Inverse of `to_json` (raises `KeyError`/`TypeError`/`ValueError` when malformed)."""
        provenance = Provenance(**{f.name: data[f.name] for f in dataclasses.fields(Provenance)})
        own = [f.name for f in dataclasses.fields(cls) if f.name != "provenance"]
        return cls(**{name: data[name] for name in own}, provenance=provenance)


def has_shipped_weights(name: str) -> bool:
    """True for a preset whose weights ship in the package (`masklet_nano`)."""
    return name in SHIPPED_MODELS


def assets_dir() -> Path:
    """The package's `assets` folder (a real folder: masklet is installed as files)."""
    folder = resources.files("masklet") / "assets"
    if not isinstance(folder, Path):
        raise CheckpointError(f"masklet's assets are not files on disk ({folder}): reinstall it")
    return folder


def manifest_path(name: str, folder: Path | None = None) -> Path:
    """`<folder>/<name>.json`; the folder defaults to the package's assets."""
    return (folder or assets_dir()) / f"{name}.json"


def read_manifest(name: str, folder: Path | None = None) -> ShippedManifest:
    """The manifest of shipped weights `name` (a `CheckpointError` naming it when unusable)."""
    if not has_shipped_weights(name):
        raise CheckpointError(f"no shipped weights for {name!r}; masklet ships {SHIPPED_MODELS}")
    path = manifest_path(name, folder)
    try:
        return ShippedManifest.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise CheckpointError(f"the manifest of the shipped weights is missing: {path}") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        problem = f"{type(error).__name__}: {error}"
        raise CheckpointError(f"{path} is not a readable weights manifest ({problem})") from None


def shipped_checkpoint(name: str, folder: Path | None = None) -> Path:
    """The weights file of shipped model `name`, checked against its manifest (size and
    SHA-256); load it with `masklet.checkpoint.load_checkpoint` or `build_sam2`."""
    manifest = read_manifest(name, folder)
    path = manifest_path(name, folder).with_name(manifest.file_name)
    if not path.is_file():
        raise CheckpointError(f"the shipped weights file is missing: {path}; reinstall masklet")
    actual_bytes = path.stat().st_size
    actual_sha256 = _sha256_of(path)
    if actual_bytes != manifest.bytes or actual_sha256 != manifest.sha256:
        raise CheckpointError(
            f"{path} does not match {manifest_path(name, folder).name}: "
            f"{actual_bytes} bytes with SHA-256 {actual_sha256}, expected {manifest.bytes} "
            f"bytes with {manifest.sha256}; {_damage_hint(path)}"
        )
    return path


def _damage_hint(path: Path) -> str:
    with path.open("rb") as stream:
        if stream.read(len(_LFS_POINTER_START)) == _LFS_POINTER_START:
            return "it is a Git LFS pointer, not the weights: run `git lfs pull`"
    return "the file is truncated or damaged: reinstall masklet (or check out the file again)"


def _stored_tensors(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """`state` on the CPU, contiguous, floating-point tensors in `SHIPPED_DTYPE`; each must
    be finite and within float16's range (beyond it a value would become infinite)."""
    largest = torch.finfo(SHIPPED_DTYPE).max
    stored = {}
    for key, value in state.items():
        tensor = value.detach().to("cpu")
        if not tensor.is_floating_point():
            stored[key] = tensor.contiguous().clone()
            continue
        # max() propagates NaN, and NaN <= largest is false: one check for NaN, inf, overflow.
        if tensor.numel() and not tensor.abs().max() <= largest:
            raise CheckpointError(f"{key} is not finite or beyond the range of {SHIPPED_DTYPE}")
        stored[key] = tensor.to(SHIPPED_DTYPE, memory_format=torch.contiguous_format)
    return stored


def _manifest_of(path: Path, name: str, provenance: Provenance) -> ShippedManifest:
    """The manifest of the weights file `path`, checked for size."""
    size = path.stat().st_size
    if size > MAX_SHIPPED_BYTES:
        raise CheckpointError(f"{name}: {size} bytes of weights, over {MAX_SHIPPED_BYTES}")
    return ShippedManifest(
        name=name,
        file_name=f"{name}.pt",
        sha256=_sha256_of(path),
        bytes=size,
        dtype=str(SHIPPED_DTYPE).removeprefix("torch."),
        provenance=provenance,
    )


def write_shipped_weights(
    source: str | Path,
    provenance: Provenance,
    *,
    name: str = DEFAULT_SHIPPED_MODEL,
    folder: Path | None = None,
) -> ShippedManifest:
    """Make `<folder>/<name>.pt` (float16) and its manifest `<name>.json` from the float32
    official-format file `source` (a training run's `model.pt`), each written atomically.

    `source` must load strictly into preset `name` (keys and shapes); `folder` defaults to the
    package's assets. Returns the manifest written.
    """
    if not has_shipped_weights(name):
        raise CheckpointError(f"{name!r} is not a shipped model; masklet ships {SHIPPED_MODELS}")
    state = read_state_dict(source)
    check_preset_state_dict(state, name)
    stored = _stored_tensors(state)
    with AtomicFile(manifest_path(name, folder).with_suffix(".pt")) as temporary:
        # Through a stream, the zip's folder is `archive/`, not the temporary file's name:
        # the same weights give the same bytes.
        with temporary.open("wb") as stream:
            torch.save({"model": stored}, stream)
        manifest = _manifest_of(temporary, name, provenance)
    write_json(manifest_path(name, folder), manifest.to_json(), indent=2)
    return manifest
