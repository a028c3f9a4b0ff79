"""Options and helpers shared by the model-running commands (`segment`, `track`, `bench vos`).

--model NAME | --checkpoint PATH   which weights (a name is downloaded on first use)
--image-size N --dtype auto|float32|bfloat16 --device auto|cpu|cuda
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from masklet.build import build_sam2
from masklet.errors import CheckpointError, ConfigError, InputError
from masklet.model.sam2 import SAM2Model
from masklet.runtime import resolve_device, resolve_dtype
from masklet.weights import get_weights, resolve_checkpoint

DEFAULT_MODEL = "sam2.1_hiera_t"


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run, with where it came from and how it computes."""

    model: SAM2Model
    preset: str
    checkpoint: Path
    device: torch.device
    dtype: torch.dtype


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--model`, `--checkpoint`, `--image-size`, `--dtype` and `--device`."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        default=None,
        help=f"preset or official checkpoint name (default {DEFAULT_MODEL}, or the one the "
        "--checkpoint file is named after); downloaded into the cache on first use",
    )
    group.add_argument("--checkpoint", type=Path, default=None, help="official .pt file")
    group.add_argument(
        "--image-size", type=int, default=1024, help="model input side (default 1024)"
    )
    group.add_argument("--dtype", default="auto", help="auto, float32 or bfloat16")
    group.add_argument("--device", default="auto", help="auto, cpu or cuda")


def model_preset(model: str | None, checkpoint: Path | None) -> str:
    """The preset to build: `--model`, else the official name of the checkpoint file
    (`sam2.1_hiera_small.pt` -> `sam2.1_hiera_s`), else the default."""
    if model is not None:
        return get_weights(model).name
    if checkpoint is not None:
        try:
            return get_weights(checkpoint.name).name
        except ConfigError:
            pass
    return DEFAULT_MODEL


def check_runtime_arguments(args: argparse.Namespace) -> None:
    """Fail early (before loading anything) on a bad image size, dtype, device or a missing
    checkpoint file."""
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise CheckpointError(f"checkpoint file not found: {args.checkpoint}")
    if args.image_size <= 0 or args.image_size % 32:
        raise InputError(f"--image-size must be a positive multiple of 32, got {args.image_size}")
    resolve_dtype(args.dtype, resolve_device(args.device))
    model_preset(args.model, args.checkpoint)


def load_model(args: argparse.Namespace) -> LoadedModel:
    """Resolve the checkpoint and build the model the command-line options ask for."""
    check_runtime_arguments(args)
    preset = model_preset(args.model, args.checkpoint)
    checkpoint = resolve_checkpoint(
        model=None if args.checkpoint else preset, checkpoint=args.checkpoint
    )
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    model = build_sam2(preset, checkpoint=checkpoint, image_size=args.image_size, device=device)
    return LoadedModel(model, preset, checkpoint, device, dtype)
