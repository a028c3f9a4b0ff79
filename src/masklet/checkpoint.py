"""Strict loading of official SAM 2 / 2.1 checkpoints (`{"model": state_dict}` `.pt` files).

Every key of the model must be present and every key of the file used, with matching shapes;
otherwise a `CheckpointError` names the keys and, where the shapes reveal it, the preset the
file belongs to.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from masklet.config import PRESETS, HieraConfig, get_config
from masklet.errors import CheckpointError
from masklet.model.sam2 import SAM2Model

_LIST_LIMIT = 8
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format is a zip archive
_PICKLE_PROTOCOL_OPCODE = 0x80  # the first byte of a legacy (pickle) torch.save file
_FORBIDDEN_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")  # what weights_only refused to import


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read the state dict from an official checkpoint file (or a bare state dict).

    Only tensors and plain containers are unpickled (`torch.load(weights_only=True)`): a file
    whose pickle names any other Python object, such as a function that would run a command,
    is refused before anything in it runs.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # e.g. a note on the pickle protocol: not for users
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(_unpickling_problem(path, error)) from None
    except Exception as error:  # torch.load raises many types on damaged files
        raise CheckpointError(_damage_problem(path, error)) from None
    state = payload.get("model", payload) if isinstance(payload, Mapping) else None
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a SAM 2 state dict under the key 'model'")
    return dict(state)


def _unpickling_problem(path: Path, error: pickle.UnpicklingError) -> str:
    """The message for a pickle that `weights_only` refused, or a damaged one."""
    text = str(error)
    if "Weights only load failed" not in text:
        return _damage_problem(path, error)
    found = _FORBIDDEN_GLOBAL.search(text)
    if found:
        what = f"names the Python object {found.group(1)}, not a tensor"
    else:
        unsupported = [line for line in text.splitlines() if "nsupported" in line]
        detail = f" ({unsupported[0].strip().rstrip('.')})" if unsupported else ""
        what = f"holds more than tensors and plain containers{detail}"
    return (
        f"refusing to load {path}: its pickle {what}; loading it could run code, so masklet "
        "loads only plain tensor checkpoints"
    )


def _damage_problem(path: Path, error: Exception) -> str:
    """The message for a file `torch.load` could not read: empty, not a checkpoint, damaged."""
    with path.open("rb") as stream:
        head = stream.read(16)
    if not head:
        return f"{path} is not a readable PyTorch checkpoint: the file is empty"
    is_zip = head.startswith(_ZIP_MAGIC)
    if is_zip and not zipfile.is_zipfile(path):
        return (
            f"{path} is not a readable PyTorch checkpoint: it is truncated or damaged "
            f"({path.stat().st_size} bytes, the end of its zip archive is missing); "
            "download or copy it again"
        )
    if not is_zip and head[0] != _PICKLE_PROTOCOL_OPCODE:
        return (
            f"{path} is not a readable PyTorch checkpoint: it is not a zip or pickle file "
            f"(it starts with {head!r})"
        )
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"{path} is not a readable PyTorch checkpoint (truncated or damaged): {reason}"


def identify_preset(state: Mapping[str, Tensor]) -> str | None:
    """Guess which official preset a state dict belongs to from its shapes, or None."""
    embed = state.get("image_encoder.trunk.pos_embed")
    if embed is None:
        return None
    num_blocks = 1 + max(
        (int(k.split(".")[3]) for k in state if k.startswith("image_encoder.trunk.blocks.")),
        default=-1,
    )
    is_v21 = "obj_ptr_tpos_proj.weight" in state
    for name, config in PRESETS.items():
        hiera: HieraConfig = config.hiera
        if (
            hiera.embed_dim == embed.shape[1]
            and tuple(embed.shape[2:]) == hiera.window_pos_embed_background_size
            and sum(hiera.stages) == num_blocks
            and config.object_pointer_temporal_encoding == is_v21
        ):
            return name
    return None


def _describe(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LIST_LIMIT])
    return shown + (f" (and {len(keys) - _LIST_LIMIT} more)" if len(keys) > _LIST_LIMIT else "")


def check_state_dict(model: nn.Module, state: Mapping[str, Tensor], preset: str) -> None:
    """Raise `CheckpointError` unless `state` matches `model`'s keys and shapes exactly."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{key} {tuple(state[key].shape)} vs {tuple(expected[key].shape)}"
        for key in expected
        if key in state and state[key].shape != expected[key].shape
    ]
    if not (missing or unexpected or mismatched):
        return
    problems = []
    if missing:
        problems.append(f"missing keys: {_describe(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_describe(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches (file vs model): {_describe(mismatched)}")
    guess = identify_preset(state)
    hint = f"; the file looks like preset {guess!r}" if guess and guess != preset else ""
    raise CheckpointError(
        f"checkpoint does not match preset {preset!r}{hint}: " + "; ".join(problems)
    )


def check_preset_state_dict(state: Mapping[str, Tensor], preset: str) -> None:
    """`check_state_dict` against a new model of `preset` (only its keys and shapes count)."""
    with torch.device("meta"):  # shapes without memory or initialisation
        model = SAM2Model(get_config(preset))
    check_state_dict(model, state, preset)


def load_checkpoint(model: nn.Module, path: str | Path, preset: str) -> None:
    """Load an official checkpoint into `model` strictly (see `check_state_dict`)."""
    state = read_state_dict(path)
    check_state_dict(model, state, preset)
    model.load_state_dict(state, strict=True)
