"""`masklet train`: train or fine-tune a SAM 2 model with simulated interactive prompting.

    masklet train CONFIG.toml [--init CKPT] [--data DIR] [--steps N] [--out DIR] [--resume CKPT]
    torchrun --nproc-per-node N -m masklet train CONFIG.toml ...     (several processes, DDP)

A run resumes by itself from the latest checkpoint in its output folder. See docs/training.md
for every key of the config file.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def run_train(args: argparse.Namespace) -> int:
    """Handler of `masklet train`; returns the exit code (0)."""
    # Imported here: the training stack is heavy and other commands do not need it.
    from masklet.train.config import read_config, with_overrides
    from masklet.train.distributed import start_processes, stop_processes
    from masklet.train.loop import OFFICIAL_MODEL_FILE, Trainer

    config = with_overrides(
        read_config(args.config),
        init=args.init,
        data=args.data,
        steps=args.steps,
        out_dir=args.out,
    )
    group = start_processes(config.train.device)
    try:
        trainer = Trainer(config, group, resume=Path(args.resume) if args.resume else None)
        if group.is_main:
            start = f"resuming at step {trainer.step}" if trainer.step else "starting"
            print(
                f"masklet train: {config.model.preset} at {config.model.image_size} px on "
                f"{group.device} x{group.world_size}, {start}, {config.train.steps} steps, "
                f"writing to {config.train.out_dir}"
            )
        record = trainer.run()
    finally:
        stop_processes(group)
    if group.is_main:
        model_path = Path(config.train.out_dir) / OFFICIAL_MODEL_FILE
        loss = f"{record['total']:.4f}" if "total" in record else "n/a (nothing left to train)"
        print(f"masklet train: done at step {trainer.step}, last loss per object {loss}")
        print(
            f"model: {model_path} (official format: masklet.build_sam2("
            f"{config.model.preset!r}, checkpoint={str(model_path)!r}, "
            f"image_size={config.model.image_size}))"
        )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` command to the CLI's subparsers."""
    parser = subparsers.add_parser(
        "train",
        help="train or fine-tune a model with simulated interactive prompting",
        description="Train or fine-tune a SAM 2 model from a TOML config (docs/training.md).",
    )
    parser.add_argument("config", help="training config (TOML), e.g. configs/train/*.toml")
    parser.add_argument("--init", default=None, help="official checkpoint to start from")
    parser.add_argument("--data", default=None, help="folder of the first data source")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps in the run")
    parser.add_argument("--out", default=None, help="output folder (checkpoints, metrics)")
    parser.add_argument(
        "--resume",
        default=None,
        metavar="CKPT",
        help="resume from this training checkpoint (default: the latest in the output folder)",
    )
    parser.set_defaults(handler=run_train)
