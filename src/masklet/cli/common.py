"""Options and helpers shared by the model-running commands (`demo`, `segment`, `track`,
`auto`, `bench vos`).

--model NAME | --checkpoint PATH   which weights (an official name is downloaded on first use)
--image-size N --dtype auto|float32|bfloat16 --device auto|cpu|cuda

Without `--model` and `--checkpoint`, a command runs an official checkpoint that is already in
the weights cache, else `masklet_nano` with the weights shipped in the package (nothing is
downloaded), and says which on one line on stderr once the model is loaded.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from masklet.build import build_sam2
from masklet.checkpoint import identify_preset, read_state_dict
from masklet.config import get_config
from masklet.errors import CheckpointError, ConfigError, InputError
from masklet.model.sam2 import SAM2Model
from masklet.runtime import resolve_device, resolve_dtype
from masklet.weights import (
    default_model,
    has_shipped_weights,
    model_name,
    read_manifest,
    resolve_checkpoint,
)

#: The preset of a `--checkpoint` file given without `--model` whose name is no known one.
UNNAMED_CHECKPOINT_PRESET = "sam2.1_hiera_t"


@dataclass(frozen=True)
class ModelChoice:
    """Which model a command runs, decided from the options before anything is loaded."""

    preset: str
    checkpoint: Path | None  # the --checkpoint file; None: the preset's own weights
    image_size: int  # --image-size, else the preset's (1024 official, 256 masklet_nano)
    by_default: bool  # neither --model nor --checkpoint was given


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run, with where it came from and how it computes."""

    model: SAM2Model
    preset: str
    checkpoint: Path
    image_size: int
    device: torch.device
    dtype: torch.dtype


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--model`, `--checkpoint`, `--image-size`, `--dtype` and `--device`."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        default=None,
        help="masklet_nano (shipped) or an official checkpoint name, downloaded into the "
        "cache on first use (default: an official checkpoint already in the cache, else "
        "masklet_nano; with --checkpoint, the preset its file is named after)",
    )
    group.add_argument("--checkpoint", type=Path, default=None, help="official-format .pt file")
    group.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="model input side (default: the model's, 1024 official, 256 masklet_nano)",
    )
    group.add_argument("--dtype", default="auto", help="auto, float32 or bfloat16")
    group.add_argument("--device", default="auto", help="auto, cpu or cuda")


def model_preset(model: str | None, checkpoint: Path | None) -> str:
    """The preset to build: `--model`, else the preset the checkpoint file is named after
    (`sam2.1_hiera_small.pt` -> `sam2.1_hiera_s`), else the one its weights' shapes identify
    (a training run's `model.pt`; `masklet.checkpoint.identify_preset`; unidentified:
    `sam2.1_hiera_t`), else the default (`masklet.weights.default_model`)."""
    if model is not None:
        return model_name(model)
    if checkpoint is not None:
        try:
            return model_name(checkpoint.name)
        except ConfigError:
            modified = checkpoint.stat().st_mtime_ns
            return _preset_of_weights(checkpoint.resolve(), modified) or UNNAMED_CHECKPOINT_PRESET
    return default_model()


@lru_cache(maxsize=4)
def _preset_of_weights(path: Path, modified_ns: int) -> str | None:
    # Cached: commands check their options before loading and again while loading; a
    # checkpoint is read for its shapes once (keyed on its modification time). An unreadable
    # file identifies nothing here: loading it reports why, after the other inputs' checks.
    try:
        return identify_preset(read_state_dict(path))
    except CheckpointError:
        return None


def check_runtime_arguments(args: argparse.Namespace) -> ModelChoice:
    """Fail early (before loading anything) on a bad image size, dtype, device, model name or
    a missing checkpoint file; return the model the options choose."""
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise CheckpointError(f"checkpoint file not found: {args.checkpoint}")
    if args.image_size is not None and (args.image_size <= 0 or args.image_size % 32):
        raise InputError(f"--image-size must be a positive multiple of 32, got {args.image_size}")
    resolve_dtype(args.dtype, resolve_device(args.device))
    preset = model_preset(args.model, args.checkpoint)
    image_size = args.image_size or get_config(preset).image_size
    by_default = args.model is None and args.checkpoint is None
    return ModelChoice(preset, args.checkpoint, image_size, by_default)


def describe_default_model(preset: str, path: Path) -> str:
    """The line naming a model chosen by default and its weights `path`, e.g.
    `model: masklet_nano (shipped weights, sha256 1a2b3c4d…)`."""
    if has_shipped_weights(preset):
        manifest = read_manifest(preset)
        line = f"model: {preset} (shipped weights, sha256 {manifest.short_sha256}…)"
        if manifest.provenance.steps == 0:
            # Say so plainly: a newcomer must not take random masks for the model's quality.
            line += "\nwarning: these shipped weights are an untrained placeholder; masks are noise"
        return line
    return f"model: {preset} (official checkpoint in the cache: {path})"


def load_model(args: argparse.Namespace) -> LoadedModel:
    """Resolve the weights and build the model the command-line options ask for; a model
    chosen by default is named on stderr."""
    choice = check_runtime_arguments(args)
    checkpoint = resolve_checkpoint(
        model=None if choice.checkpoint else choice.preset, checkpoint=choice.checkpoint
    )
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    model = build_sam2(
        choice.preset, checkpoint=checkpoint, image_size=choice.image_size, device=device
    )
    if choice.by_default:
        print(describe_default_model(choice.preset, checkpoint), file=sys.stderr)
    return LoadedModel(model, choice.preset, checkpoint, choice.image_size, device, dtype)
