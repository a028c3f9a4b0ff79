"""Strict loading of official SAM 2 / 2.1 checkpoints (`{"model": state_dict}` `.pt` files).

Every key of the model must be present and every key of the file used, with matching shapes;
otherwise a `CheckpointError` names the keys and, where the shapes reveal it, the preset the
file belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from masklet.config import PRESETS, HieraConfig
from masklet.errors import CheckpointError

_LIST_LIMIT = 8


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read the state dict from an official checkpoint file (or a bare state dict)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types on damaged files
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (truncated or another format): "
            f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
        ) from None
    state = payload.get("model", payload) if isinstance(payload, Mapping) else None
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a SAM 2 state dict under the key 'model'")
    return dict(state)


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


def load_checkpoint(model: nn.Module, path: str | Path, preset: str) -> None:
    """Load an official checkpoint into `model` strictly (see `check_state_dict`)."""
    state = read_state_dict(path)
    check_state_dict(model, state, preset)
    model.load_state_dict(state, strict=True)
