"""What a run writes besides checkpoints: `metrics.jsonl` (one JSON object per logged step or
validation) and `loss.png` (the loss curve and validation J&F)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from masklet.io.files import AtomicFile

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss.png"


class MetricsLog:
    """Appends records to `<out_dir>/metrics.jsonl`.

    On resume from step `s`, records of later steps (written after the checkpoint the run
    resumes from) are dropped first, so the file reads as one uninterrupted run.
    """

    def __init__(self, out_dir: Path, resume_step: int = 0) -> None:
        self.path = out_dir / METRICS_FILE
        self.records = [r for r in read_metrics(self.path) if int(r.get("step", 0)) <= resume_step]
        self._rewrite()

    def _rewrite(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with AtomicFile(self.path) as temporary:
            temporary.write_text("".join(json.dumps(r) + "\n" for r in self.records))

    def append(self, record: Mapping[str, Any]) -> None:
        self.records.append(dict(record))
        with self.path.open("a") as file:
            file.write(json.dumps(dict(record)) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics file (none when it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_metrics(records: list[dict[str, Any]], path: Path) -> Path | None:
    """Loss (and its terms) per step, and validation J&F, as a PNG; None without records."""
    losses = [r for r in records if "loss" in r]
    if not losses:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    validation = [r for r in records if "val_j_and_f" in r]
    figure, axes = plt.subplots(1, 2 if validation else 1, figsize=(11 if validation else 6, 4))
    loss_axis = axes[0] if validation else axes
    steps = [r["step"] for r in losses]
    loss_axis.plot(steps, [r["loss"] for r in losses], label="total", linewidth=1.5)
    for key in ("mask", "dice", "iou", "object_score"):
        if key in losses[0]:
            loss_axis.plot(steps, [r[key] for r in losses], label=key, linewidth=0.8)
    loss_axis.set_yscale("log")
    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel("loss per object")
    loss_axis.legend()
    loss_axis.grid(alpha=0.3)
    if validation:
        val_axis = axes[1]
        val_axis.plot(
            [r["step"] for r in validation], [r["val_j_and_f"] for r in validation], marker="o"
        )
        val_axis.set_xlabel("step")
        val_axis.set_ylabel("validation J&F")
        val_axis.set_ylim(0, 1)
        val_axis.grid(alpha=0.3)
    figure.tight_layout()
    with AtomicFile(path) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    plt.close(figure)
    return path
