"""Training checkpoints: save, find, load and restore a run; export an official model file.

A run's folder holds `checkpoint-<step:08d>.pt`, the last `keep` of them, and `last.pt`, a
hard link to the newest (a copy where hard links are missing): no extra space, and it survives
the pruning. Every file is written under a hidden temporary name in the same folder, fsynced and
renamed over its final name: a crash or full disk never leaves a partial file under a final
name, and a failed save leaves the previous checkpoints as they were.

A training checkpoint is a dict of tensors and plain containers only (the RNG states are stored
as tensors, ints and lists), so it loads with `torch.load(weights_only=True)`: loading one never
runs code. `save_official` writes `{"model": state_dict}`, the format of the released SAM 2
files, which `masklet.build_sam2(preset, checkpoint=...)` and the reference load strictly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import re
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from masklet.errors import CheckpointError, ConfigError
from masklet.io.files import AtomicFile, write_failure

FORMAT = "masklet-training-checkpoint"
FORMAT_VERSION = 1
LAST_NAME = "last.pt"
_NUMBERED = re.compile(r"checkpoint-(\d+)\.pt")
_LIST_LIMIT = 8
_FORBIDDEN_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")  # what weights_only refused to import
#: Config fields (dotted paths into the run's config dict) that a resumed run must share with
#: its checkpoint: another preset or other frozen parameters make the states incompatible.
RESUME_MUST_MATCH = ("model.preset", "model.freeze")
_ABSENT = object()


def masklet_version() -> str:
    """The installed masklet version ("unknown" when not installed as a package)."""
    try:
        return metadata.version("masklet")
    except metadata.PackageNotFoundError:
        return "unknown"


def _plain_value(value: Any) -> Any:
    """A JSON-able stand-in for a value `json` cannot write (a NumPy number, a path, ...)."""
    return value.item() if isinstance(value, np.generic) else str(value)


def capture_rng_states() -> dict[str, Any]:
    """The states of Python's `random`, NumPy's global generator, torch CPU and CUDA."""
    version, internal, gauss_next = random.getstate()
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    keys_tensor = torch.from_numpy(np.asarray(keys, dtype=np.int64))  # uint32 values
    return {
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
        "numpy": [str(kind), keys_tensor, int(position), int(has_gauss), float(cached_gaussian)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_states(states: Mapping[str, Any]) -> None:
    """Set the generators to `capture_rng_states()`'s result (CUDA: the devices present)."""
    python = states["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss_next"]))
    kind, keys, *rest = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(states["torch"])
    if torch.cuda.is_available():
        for index, state in enumerate(states["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, index)


@dataclass
class TrainingState:
    """Everything needed to continue a run exactly.

    The state dicts hold references to the live tensors (no copies): save the state before the
    next optimizer step.

    Attributes:
        step: optimizer steps taken so far.
        model: the model's `state_dict()`.
        optimizer: the optimizer's `state_dict()` (its groups name their parameters).
        rng: `capture_rng_states()`.
        config: what the run was started with (JSON-able).
        metrics: a summary such as the last loss (JSON-able).
        schedule: the lr schedule's `describe()`, if any.
        masklet_version: the version that wrote the checkpoint.
    """

    step: int
    model: dict[str, Tensor]
    optimizer: dict[str, Any]
    rng: dict[str, Any] = field(default_factory=capture_rng_states)
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)
    masklet_version: str = field(default_factory=masklet_version)

    @classmethod
    def capture(
        cls,
        step: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        config: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        schedule: Mapping[str, Any] | None = None,
    ) -> TrainingState:
        """The state of a run now. `config`, `metrics` and `schedule` pass through JSON (tuples
        become lists, NumPy numbers floats), so the file stays loadable weights-only."""
        parts = (config, metrics, schedule)
        plain = [json.loads(json.dumps(dict(part or {}), default=_plain_value)) for part in parts]
        state = cls(step, model.state_dict(), optimizer.state_dict())
        state.config, state.metrics, state.schedule = plain
        return state

    def to_payload(self) -> dict[str, Any]:
        """The dict written to disk: the fields (not copied) and the format's name and version."""
        fields = {item.name: getattr(self, item.name) for item in dataclasses.fields(self)}
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **fields}


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (the rename) to disk, where the platform allows it."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _save_atomically(path: Path, payload: Any) -> None:
    """`torch.save` to a temporary file next to `path`, fsync, rename over `path`."""
    with AtomicFile(path) as temporary, temporary.open("wb") as stream:
        torch.save(payload, stream)
        stream.flush()
        os.fsync(stream.fileno())
    _fsync_folder(path.parent)


def _point_last(folder: Path, newest: Path) -> None:
    """Make `last.pt` the newest checkpoint: a hard link, else a copy; atomically."""
    atomic = AtomicFile(folder / LAST_NAME)
    try:
        atomic.discard()
        try:
            os.link(newest, atomic.temporary)
        except OSError:
            shutil.copyfile(newest, atomic.temporary)
        atomic.commit()
    except OSError as error:
        atomic.discard()
        raise write_failure(folder / LAST_NAME, error) from error
    _fsync_folder(folder)


def numbered_checkpoints(out_dir: str | Path) -> list[tuple[int, Path]]:
    """The `(step, path)` of each `checkpoint-<step>.pt` in `out_dir`, by increasing step."""
    folder = Path(out_dir)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        matched = _NUMBERED.fullmatch(path.name)
        if matched and path.is_file():
            found.append((int(matched.group(1)), path))
    return sorted(found)


def _remove_stale_partials(folder: Path) -> None:
    """Remove temporary files that an interrupted earlier save left behind."""
    for pattern in (".checkpoint-*.partial-*.pt", ".last.partial-*.pt"):
        for path in folder.glob(pattern):
            with contextlib.suppress(OSError):
                path.unlink()


def save_training_checkpoint(out_dir: str | Path, state: TrainingState, keep: int = 3) -> Path:
    """Write `out_dir/checkpoint-<step:08d>.pt` atomically, point `last.pt` at it and delete
    the older numbered checkpoints but the newest (by step) `keep - 1`; the file written now
    always stays. Returns the written path.

    Raises `ConfigError` when `keep < 1` and `MaskletError` naming the file on a write error
    (the previous checkpoints are then untouched).
    """
    if keep < 1:
        raise ConfigError(f"keep must be at least 1, got {keep}")
    folder = Path(out_dir)
    path = folder / f"checkpoint-{state.step:08d}.pt"
    _save_atomically(path, state.to_payload())
    _point_last(folder, path)
    others = [other for _, other in numbered_checkpoints(folder) if other != path]
    for old in others[: max(0, len(others) - (keep - 1))]:  # the newest written stays
        with contextlib.suppress(OSError):
            old.unlink()
    _remove_stale_partials(folder)
    return path


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The numbered checkpoint with the highest step in `out_dir`, else `last.pt` if present,
    else None (also when the folder does not exist)."""
    numbered = numbered_checkpoints(out_dir)
    if numbered:
        return numbered[-1][1]
    last = Path(out_dir) / LAST_NAME
    return last if last.is_file() else None


def _read_payload(path: Path) -> Any:
    """`torch.load(weights_only=True)` with one-line `CheckpointError`s."""
    if not path.is_file():
        raise CheckpointError(f"training checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is not a readable training checkpoint: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types on damaged files
        found = _FORBIDDEN_GLOBAL.search(str(error))
        if found:
            raise CheckpointError(
                f"refusing to load {path}: its pickle names the Python object {found.group(1)}, "
                "so it is not a masklet training checkpoint and loading it could run code"
            ) from None
        raise CheckpointError(f"{path} is truncated, damaged or not a PyTorch file") from None


def load_training_checkpoint(path: str | Path) -> TrainingState:
    """Read a file written by `save_training_checkpoint`.

    Raises `CheckpointError` for a missing, empty, truncated or damaged file and for a file
    that is not a masklet training checkpoint (such as an official model file).
    """
    path = Path(path)
    payload = _read_payload(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        hint = ""
        if isinstance(payload, dict) and "model" in payload and "optimizer" not in payload:
            hint = " (it looks like a model file: load it with masklet.build_sam2)"
        raise CheckpointError(f"{path} is not a masklet training checkpoint{hint}")
    version = payload.get("format_version")
    missing = [key for key in ("step", "model", "optimizer", "rng") if key not in payload]
    if version != FORMAT_VERSION or missing:
        problem = f"lacks {', '.join(missing)}" if missing else f"is format version {version!r}"
        raise CheckpointError(f"{path} cannot be resumed (version {FORMAT_VERSION}): it {problem}")
    names = [item.name for item in dataclasses.fields(TrainingState)]
    return TrainingState(**{name: payload[name] for name in names if name in payload})


def _describe(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    extra = len(items) - _LIST_LIMIT
    return shown + (f" (and {extra} more)" if extra > 0 else "")


def _model_problems(saved: Mapping[str, Tensor], model: nn.Module) -> list[str]:
    """How the saved model state differs from `model`'s (keys and shapes)."""
    expected = model.state_dict()
    mismatched = [
        f"{key} {tuple(saved[key].shape)} vs {tuple(value.shape)}"
        for key, value in expected.items()
        if key in saved and tuple(saved[key].shape) != tuple(value.shape)
    ]
    found = {
        "keys missing from the checkpoint": sorted(set(expected) - set(saved)),
        "keys the model does not have": sorted(set(saved) - set(expected)),
        "shapes differ (checkpoint vs model)": mismatched,
    }
    return [f"{label}: {_describe(items)}" for label, items in found.items() if items]


def _group_problems(saved: list[dict[str, Any]], current: list[dict[str, Any]]) -> list[str]:
    """How the saved optimizer groups differ from the current ones (trainable parameters)."""

    def names(groups: list[dict[str, Any]]) -> set[str]:
        return {name for group in groups for name in group.get("param_names", [])}

    found = {
        "trained in the checkpoint only": sorted(names(saved) - names(current)),
        "trained in this run only": sorted(names(current) - names(saved)),
    }
    problems = [f"{label}: {_describe(items)}" for label, items in found.items() if items]
    saved_sizes = [len(group["params"]) for group in saved]
    current_sizes = [len(group["params"]) for group in current]
    saved_order = [group.get("param_names") for group in saved]
    current_order = [group.get("param_names") for group in current]
    if not problems and (saved_sizes != current_sizes or saved_order != current_order):
        problems.append(
            f"the parameters are grouped differently (group sizes {saved_sizes} in the "
            f"checkpoint, {current_sizes} in this run)"
        )
    return problems


def restore(
    state: TrainingState,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Load the model, optimizer and RNG states of `state`, all checked first: a
    `CheckpointError` naming the differences (and no change) when the `RESUME_MUST_MATCH`
    fields of `config` (the current run's config dict) differ from the checkpoint's, the
    model's keys or shapes differ (another preset), or the trainable parameters differ
    (changed freeze options). The optimizer keeps its current hyperparameters (lr,
    `initial_lr`, weight decay, ...), so changed options take effect on resume as in the
    reference; moments and step counts come from the checkpoint.
    """
    differing = _config_differences(state.config, config or {})
    if differing:
        raise CheckpointError(
            f"the checkpoint of step {state.step} was written by a run with another "
            + "; ".join(differing)
        )
    problems = _model_problems(state.model, model)
    if problems:
        raise CheckpointError(
            f"the checkpoint of step {state.step} does not fit this model"
            f"{_started_with(state)}: " + "; ".join(problems)
        )
    if optimizer is not None:
        saved_groups = state.optimizer.get("param_groups", [])
        group_problems = _group_problems(saved_groups, optimizer.state_dict()["param_groups"])
        if group_problems:
            raise CheckpointError(
                "the optimizer of the checkpoint trains other parameters than this run "
                "(did the freeze options change?): " + "; ".join(group_problems)
            )
    model.load_state_dict(state.model, strict=True)
    if optimizer is not None:
        hyperparameters = [
            {key: value for key, value in group.items() if key != "params"}
            for group in optimizer.param_groups
        ]
        optimizer.load_state_dict(state.optimizer)
        for group, kept in zip(optimizer.param_groups, hyperparameters, strict=True):
            group.update(kept)
    restore_rng_states(state.rng)


def _config_value(config: Mapping[str, Any], dotted: str) -> Any:
    """The value at `dotted` ("model.preset") in a nested config dict, or `_ABSENT`."""
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _ABSENT
        value = value[part]
    return list(value) if isinstance(value, tuple) else value


def _config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """`"<field> (checkpoint <a>, this run <b>)"` for each differing `RESUME_MUST_MATCH`."""
    differences = []
    for dotted in RESUME_MUST_MATCH:
        before, now = _config_value(saved, dotted), _config_value(current, dotted)
        if before is not _ABSENT and now is not _ABSENT and before != now:
            differences.append(f"{dotted} (checkpoint {before!r}, this run {now!r})")
    return differences


def _started_with(state: TrainingState) -> str:
    """A note on the checkpoint's model, from its config, for error messages."""
    preset = _config_value(state.config, "model.preset")
    return f" (the checkpoint's run used {preset!r})" if isinstance(preset, str) else ""


def save_official(path: str | Path, model: nn.Module) -> Path:
    """Write `{"model": state_dict}` like the released SAM 2 files (CPU, contiguous, float
    tensors in fp32), atomically. Returns the path."""
    state = {}
    for key, value in model.state_dict().items():
        tensor = value.detach().to("cpu")
        if tensor.is_floating_point():
            tensor = tensor.to(torch.float32)
        state[key] = tensor.contiguous().clone()
    path = Path(path)
    _save_atomically(path, {"model": state})
    return path
