"""`Trainer`: the training loop of one process.

Each optimizer step: read this process's clips of the step (`sample_indices`), count the
objects of the whole global batch, then for each micro-batch roll the clips out with
simulated prompts and back-propagate their loss (gradients synchronised by DDP on the last
micro-batch only); then clip the gradients, set the learning rates of the step and step AdamW.
Everything random is drawn from generators seeded by (seed, clip index), never from global
state, so a run resumed from a checkpoint continues exactly as it would have, and a run on N
processes takes the same steps as one process with the same global batch.

Rank 0 writes into `out_dir`: `checkpoint-<step>.pt` (training state, atomic), `model.pt`
(the official `{"model": state_dict}` format), `metrics.jsonl`, `loss.png`, `config.json`.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from masklet.checkpoint import load_checkpoint
from masklet.config import canonical_preset_name, get_config
from masklet.errors import InputError, MaskletError
from masklet.io.files import make_output_folder, write_json
from masklet.model.sam2 import SAM2Model
from masklet.runtime import autocast_for, compute_options
from masklet.train.checkpoints import (
    TrainingState,
    latest_checkpoint,
    load_training_checkpoint,
    restore,
    save_official,
    save_training_checkpoint,
)
from masklet.train.config import TrainConfig
from masklet.train.data import TrainingData, open_source
from masklet.train.distributed import ProcessGroup, sum_over_processes
from masklet.train.loader import ClipLoader
from masklet.train.metrics import PLOT_FILE, MetricsLog, plot_metrics
from masklet.train.optim import LrSchedule, build_optimizer, clip_gradients, freeze
from masklet.train.progress import Progress
from masklet.train.step import LOSS_KEYS, TrainingStep
from masklet.train.types import TrainClip
from masklet.train.validation import make_validation_videos, validate

#: Third seed component of the prompt generators (the data uses (seed, index)).
PROMPT_STREAM = 1
OFFICIAL_MODEL_FILE = "model.pt"


def build_model(config: TrainConfig, device: torch.device) -> SAM2Model:
    """The model to train: the preset at the configured size, seeded, optionally initialised
    from an official checkpoint (strictly)."""
    torch.manual_seed(config.train.seed)
    preset = canonical_preset_name(config.model.preset)
    model = SAM2Model(get_config(preset, config.model.image_size), compute_options(device))
    if config.model.init:
        load_checkpoint(model, config.model.init, preset)
    return model.to(device)


def training_data(config: TrainConfig, image_size: int) -> TrainingData:
    """The configured mixture of sources, giving clips of `image_size` pixels."""
    if not config.data.sources:
        raise InputError("the config has no [[data.sources]]: nothing to train on")
    sources = [
        (open_source(s.kind, s.path or None, **s.options), s.weight) for s in config.data.sources
    ]
    return TrainingData(
        sources,
        image_size=image_size,
        num_frames=config.data.num_frames,
        max_objects=config.data.max_objects,
        reverse_time_prob=config.data.reverse_time_prob,
        augment=config.augment,
        seed=config.train.seed,
    )


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype:
    """bf16 when asked, or for "auto" on a GPU that has it; else float32."""
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


class Trainer:
    """Trains `config` in this process (see the module docstring).

    Args:
        config: the run.
        group: this process's place in the run (`start_processes`).
        resume: a training checkpoint to resume from; None = the latest in `out_dir`, if any.
        model: a model to train instead of `build_model(config)` (any `SAM2Model`, e.g. a
            custom configuration); `[model] preset` and `init` are then not used.
    """

    def __init__(
        self,
        config: TrainConfig,
        group: ProcessGroup,
        resume: Path | None = None,
        model: SAM2Model | None = None,
    ) -> None:
        self.config = config
        self.group = group
        self.out_dir = Path(config.train.out_dir)
        self.model = build_model(config, group.device) if model is None else model.to(group.device)
        self.frozen = freeze(self.model, config.model.freeze)
        self.model.train()
        self.step_module: nn.Module = TrainingStep(self.model, config.prompts, config.loss)
        if group.distributed:
            self.step_module = nn.parallel.DistributedDataParallel(
                self.step_module, find_unused_parameters=True
            )
        self.optimizer = build_optimizer(self.model, config.optimizer)
        self.schedule = LrSchedule(config.optimizer)
        self.data = training_data(config, self.model.image_size)
        self.loader = ClipLoader(
            self.data,
            group,
            config.train.batch_size,
            config.train.accumulate,
            config.data.num_workers,
        )
        self.dtype = autocast_dtype(config.train.precision, group.device)
        self.step = 0
        self._resume(resume)
        self.metrics = MetricsLog(self.out_dir, self.step) if group.is_main else None
        self._validation_videos: list[Any] | None = None
        self._since_logged: list[dict[str, float]] = []

    def _resume(self, resume: Path | None) -> None:
        path = resume or latest_checkpoint(self.out_dir)
        if path is None:
            return
        state = load_training_checkpoint(path)
        restore(state, self.model, self.optimizer, self.config.to_dict())
        self.step = state.step

    # ------------------------------------------------------------------ one step
    def _clips(self, step: int, micro: int) -> tuple[list[TrainClip], list[int]]:
        return self.loader.clips(step, micro)

    def train_step(self, step: int) -> dict[str, float]:
        """One optimizer step; returns the step's losses (averaged per object over the global
        batch), the gradient norm and the learning rate."""
        run = self.config.train
        batches = [self._clips(step, micro) for micro in range(run.accumulate)]
        local_objects = sum(clip.num_objects for clips, _ in batches for clip in clips)
        total_objects = sum_over_processes([float(local_objects)], self.group)[0]
        # Per-process normaliser: DDP averages gradients over processes (the reference's rule).
        num_objects = max(total_objects / self.group.world_size, 1.0)
        self.schedule.apply(self.optimizer, step, run.steps)
        self.optimizer.zero_grad(set_to_none=True)
        sums = dict.fromkeys(LOSS_KEYS, 0.0)
        for micro, (clips, indices) in enumerate(batches):
            losses = self._backward(clips, indices, num_objects, last=micro == run.accumulate - 1)
            for key in LOSS_KEYS:
                sums[key] += losses[key]
        norm = clip_gradients(self._trainable(), self.config.optimizer.grad_clip)
        self.optimizer.step()
        reduced = sum_over_processes([sums[k] for k in LOSS_KEYS], self.group)
        # The losses were divided by objects per process; per object of the global batch:
        record = {k: v / self.group.world_size for k, v in zip(LOSS_KEYS, reduced)}
        record["grad_norm"] = float(norm)
        record["lr"] = float(self.optimizer.param_groups[0]["lr"])
        return record

    def _backward(
        self, clips: list[TrainClip], indices: list[int], num_objects: float, last: bool
    ) -> dict[str, float]:
        seed = self.config.train.seed
        rngs = [np.random.default_rng([seed, index, PROMPT_STREAM]) for index in indices]
        sync = last or not isinstance(self.step_module, nn.parallel.DistributedDataParallel)
        context = nullcontext() if sync else self.step_module.no_sync()  # type: ignore[operator]
        with context:
            with autocast_for(self.group.device, self.dtype):
                losses = self.step_module(clips, rngs, num_objects)
            losses["total"].backward()
        return {key: float(value.detach()) for key, value in losses.items()}

    def _trainable(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    # ------------------------------------------------------------------ the run
    def run(self) -> dict[str, float]:
        """Train from the current step to `steps`; returns the last logged record."""
        run = self.config.train
        if self.group.is_main:
            make_output_folder(self.out_dir)
            write_json(self.out_dir / "config.json", self.config.to_dict(), indent=1)
        progress = Progress(self.step, run.steps, enabled=run.progress and self.group.is_main)
        record: dict[str, float] = {}
        clips_per_step = self.group.world_size * run.batch_size * run.accumulate
        try:
            while self.step < run.steps:
                started = time.perf_counter()
                record = self.train_step(self.step)
                if not is_finite(record):
                    raise MaskletError(
                        f"the loss is not finite at step {self.step + 1} ({record}); the last "
                        "checkpoint is kept: lower [optimizer] lr or check the data"
                    )
                self.step += 1
                elapsed = time.perf_counter() - started
                record["clips_per_s"] = clips_per_step / max(elapsed, 1e-9)
                progress.update(record["total"], record["clips_per_s"])
                self._after_step(record)
        finally:
            progress.close()
            self.loader.close()
        self._finish()
        return record

    def _after_step(self, record: dict[str, float]) -> None:
        run = self.config.train
        last = self.step == run.steps
        self._since_logged.append(record)
        if self.metrics is not None and (self.step % run.log_every == 0 or last):
            self.metrics.append({"step": self.step, **window_mean(self._since_logged)})
            self._since_logged = []
        if run.validate_every and self.step % run.validate_every == 0 and not last:
            self._validate()
        if self.step % run.checkpoint_every == 0 or last:
            self.save()

    def _validate(self) -> None:
        if not self.group.is_main or self.config.train.validation_videos == 0:
            return
        videos = self._videos()
        if not videos:
            return
        result = validate(self.model, videos)
        assert self.metrics is not None
        self.metrics.append(
            {"step": self.step, "val_j": result.j, "val_f": result.f, "val_j_and_f": result.j_and_f}
        )

    def _videos(self) -> list[Any]:
        if self._validation_videos is None:
            run = self.config.train
            try:
                self._validation_videos = make_validation_videos(
                    run.validation_photos, run.validation_videos, run.validation_frames
                )
            except InputError as error:  # no photos on this machine: train without it
                print(f"masklet train: validation skipped: {error}")
                self._validation_videos = []
        return self._validation_videos

    def save(self) -> None:
        """Write the training checkpoint and the official-format model (rank 0)."""
        if not self.group.is_main:
            return
        state = TrainingState.capture(
            self.step,
            self.model,
            self.optimizer,
            self.config.to_dict(),
        )
        save_training_checkpoint(self.out_dir, state, keep=self.config.train.keep_checkpoints)
        save_official(self.out_dir / OFFICIAL_MODEL_FILE, self.model)
        # The curve is redrawn with each checkpoint: a stopped or long run has one too.
        self._plot()

    def _plot(self) -> None:
        if self.metrics is not None:
            plot_metrics(self.metrics.records, self.out_dir / PLOT_FILE)

    def _finish(self) -> None:
        self._validate()
        self._plot()


def window_mean(records: list[dict[str, float]]) -> dict[str, float]:
    """One metrics line for the steps since the last: the mean of each loss term, gradient
    norm and speed (a single step's loss is too noisy to plot), the last learning rate."""
    line = {"loss": float(np.mean([r["total"] for r in records]))}
    for key in records[-1]:
        if key != "total":
            line[key] = float(np.mean([r[key] for r in records]))
    line["lr"] = records[-1]["lr"]
    return line


def is_finite(record: dict[str, float]) -> bool:
    """Whether every logged value is a finite number."""
    return all(math.isfinite(v) for v in record.values())
