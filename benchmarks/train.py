"""Training benchmark: clips/s of full training steps and their share of the matmul peak.

For each configuration (preset x image size x precision) it builds a `Trainer` on the
committed DAVIS-layout folder tests/data/synthetic_davis (8-frame clips, up to 3 objects,
augmentation on, simulated prompts and correction clicks as in training) and measures one
optimizer step, `Trainer.train_step`: data + rollout + loss + backward + AdamW.

- GFLOP/step: `torch.utils.flop_counter.FlopCounterMode` over one step (forward + backward:
  matmul, convolution, attention); that step is also the warm-up.
- s/step: median of `--steps` steps, all on the same step index (the same clip, prompts and
  clicks, so every timed step does the same work: the first index whose clip has
  `max_objects` objects).
- matmul peak: best of `--peak-repeats` square `torch.mm` of `--matrix-size` (fp32, or bf16
  for bf16 rows) on all threads, measured right before every timed step and once after the
  last; the row's peak is the median of these samples and share of peak = achieved GFLOP/s /
  peak, so that load from other processes hits both alike.
- Where time goes: `encode_image` forward + backward alone on the step's frames (timed
  interleaved with the steps; its own FLOP count), the data pipeline alone (`data.sample`),
  and the rest of the step (decoder, memory, losses, optimizer) by difference. `--profile`
  adds the torch.profiler top ops of one step of the first configuration.

Rows: fp32 on the CPU at every `--sizes`, plus bf16 autocast when the CPU has native bf16
(AVX512-BF16 / AMX); on a CUDA machine bf16 autocast on the GPU. Run: `make bench-train`, or
`python benchmarks/train.py --help` (e.g. `--sizes 256 --steps 1` for a quick look,
`--preset masklet_nano` for another preset, `--json rows.json` to keep the rows).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from masklet.runtime import autocast_for, cpu_has_native_bf16
from masklet.session.preprocess import normalize_pixels
from masklet.train.config import TrainConfig, config_from_dict
from masklet.train.distributed import ProcessGroup, sample_indices
from masklet.train.loop import Trainer

DAVIS = Path(__file__).resolve().parents[1] / "tests" / "data" / "synthetic_davis"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
#: Steps timed per configuration when `--steps` is not given: fewer at large sizes.
DEFAULT_STEPS = {512: 3, 256: 5}
#: Step indices searched for a clip with `max_objects` objects.
MAX_STEP_SEARCH = 50


@dataclasses.dataclass(frozen=True)
class Setup:
    """One configuration (one row)."""

    preset: str
    image_size: int
    precision: str  # "fp32" or "bf16"
    device: str  # "cpu" or "cuda"

    @property
    def label(self) -> str:
        return f"{self.preset} {self.image_size}px {self.precision} {self.device}"


@dataclasses.dataclass
class Row:
    """The measurements of one configuration (seconds, GFLOP, GFLOP/s)."""

    config: str
    objects: int
    clips_per_s: float
    s_per_step: float
    gflop_per_step: float
    achieved_gflops: float
    peak_gflops: float
    share_of_peak: float
    encoder_s: float
    encoder_gflop: float
    data_s: float
    top_ops: dict[str, float]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(action: Callable[[], object], device: torch.device) -> float:
    """Seconds of one call of `action` (device work included)."""
    sync(device)
    start = time.perf_counter()
    action()
    sync(device)
    return time.perf_counter() - start


def matmul_peak(dtype: torch.dtype, device: torch.device, size: int, repeats: int) -> float:
    """GFLOP/s of the best of `repeats` square `torch.mm` of `size` (after one warm-up)."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device, dtype)
    b = torch.randn(size, size, generator=generator).to(device, dtype)
    torch.mm(a, b)
    best = min(timed(lambda: torch.mm(a, b), device) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def train_config(setup: Setup, out_dir: str, args: argparse.Namespace) -> TrainConfig:
    """The run of `setup`: the recipe's clips on the committed DAVIS folder."""
    return config_from_dict(
        {
            "model": {"preset": setup.preset, "image_size": setup.image_size},
            "data": {
                "num_frames": args.frames,
                "max_objects": args.objects,
                "sources": [{"kind": "davis", "path": str(DAVIS)}],
            },
            "augment": {"enabled": True},
            "optimizer": {"warmup_steps": 0},
            "train": {
                "steps": 10**6,
                "batch_size": args.batch_size,
                "precision": setup.precision,
                "device": setup.device,
                "out_dir": out_dir,
                "progress": False,
                "validation_videos": 0,
            },
        }
    )


def step_with_most_objects(trainer: Trainer) -> int:
    """The first step index whose (first) clip has `max_objects` objects, else the one with
    the most objects among those searched."""
    run, group = trainer.config.train, trainer.group
    best, best_objects = 0, 0
    for step in range(MAX_STEP_SEARCH):
        index = sample_indices(step, 0, group, run.batch_size, run.accumulate)[0]
        objects = trainer.data.sample(index).num_objects
        if objects > best_objects:
            best, best_objects = step, objects
        if objects >= trainer.config.data.max_objects:
            break
    return best


def counted_flops(action: Callable[[], object]) -> tuple[int, dict[str, int]]:
    """FLOPs of one call of `action` (forward + backward) and their split by aten op."""
    with FlopCounterMode(display=False) as counter:
        action()
    by_op = counter.get_flop_counts().get("Global", {})
    return counter.get_total_flops(), {str(op): int(n) for op, n in by_op.items()}


def encoder_pass(trainer: Trainer, images: torch.Tensor) -> Callable[[], None]:
    """`encode_image` forward + backward on `images (T, 3, S, S)` uint8 (as in the step)."""
    model, device, dtype = trainer.model, trainer.group.device, trainer.dtype

    def run() -> None:
        pixels = normalize_pixels(images.to(device))
        with autocast_for(device, dtype):
            features = model.encode_image(pixels)
        outputs = (features.image_embedding, *features.high_res_features)
        sum(output.float().mean() for output in outputs).backward()  # type: ignore[union-attr]
        model.zero_grad(set_to_none=True)

    return run


def measure(setup: Setup, args: argparse.Namespace) -> Row:
    """Build the trainer of `setup`, count one step's FLOPs (the warm-up), then time steps,
    encoder passes, data and matmul peaks interleaved."""
    device = torch.device(setup.device)
    with tempfile.TemporaryDirectory() as out_dir:
        trainer = Trainer(train_config(setup, out_dir, args), ProcessGroup(0, 1, device))
        step = step_with_most_objects(trainer)
        index = sample_indices(step, 0, trainer.group, args.batch_size, 1)[0]
        clip = trainer.data.sample(index)
        step_flops, by_op = counted_flops(lambda: trainer.train_step(step))
        encoder = encoder_pass(trainer, clip.images)
        encoder_flops, _ = counted_flops(encoder)
        size = args.matrix_size or (8192 if device.type == "cuda" else 2048)

        def peak() -> float:
            return matmul_peak(DTYPES[setup.precision], device, size, args.peak_repeats)

        times: dict[str, list[float]] = {"step": [], "encoder": [], "data": [], "peak": []}
        for _ in range(args.steps or DEFAULT_STEPS.get(setup.image_size, 3)):
            times["peak"].append(peak())
            times["step"].append(timed(lambda: trainer.train_step(step), device))
            times["encoder"].append(timed(encoder, device))
            times["data"].append(timed(lambda: trainer.data.sample(index), device))
        times["peak"].append(peak())
    median = {name: statistics.median(values) for name, values in times.items()}
    achieved = step_flops / median["step"] / 1e9
    total = max(step_flops, 1)
    top = sorted(by_op.items(), key=lambda item: -item[1])[: args.top_ops]
    return Row(
        config=setup.label,
        objects=clip.num_objects,
        clips_per_s=args.batch_size / median["step"],
        s_per_step=median["step"],
        gflop_per_step=step_flops / 1e9,
        achieved_gflops=achieved,
        peak_gflops=median["peak"],
        share_of_peak=achieved / median["peak"],
        encoder_s=median["encoder"],
        encoder_gflop=encoder_flops / 1e9,
        data_s=median["data"],
        top_ops={op: flops / total for op, flops in top},
    )


def print_tables(rows: list[Row]) -> None:
    """The main table, then where the time of a step goes."""
    print(
        "\n| config | clips/s | s/step | GFLOP/step | achieved GFLOP/s | matmul peak GFLOP/s "
        "| share of peak | encoder share of step time |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.config} | {r.clips_per_s:.3f} | {r.s_per_step:.2f} | "
            f"{r.gflop_per_step:.0f} | {r.achieved_gflops:.1f} | {r.peak_gflops:.1f} | "
            f"{r.share_of_peak:.1%} | {r.encoder_s / r.s_per_step:.1%} |"
        )
    print(
        "\nWhere a step goes (encoder = encode_image fwd+bwd alone; rest = step - encoder, "
        "data included; share = of the row's matmul peak)"
    )
    print(
        "| config | objects | encoder s | encoder GFLOP | encoder share | data s | rest s "
        "| rest GFLOP | rest share | top ops by FLOPs |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rest_s = max(r.s_per_step - r.encoder_s, 1e-9)
        rest_gflop = r.gflop_per_step - r.encoder_gflop
        encoder_share = r.encoder_gflop / r.encoder_s / r.peak_gflops
        ops = ", ".join(
            f"{op.removeprefix('aten.')} {share:.0%}" for op, share in r.top_ops.items()
        )
        print(
            f"| {r.config} | {r.objects} | {r.encoder_s:.2f} | {r.encoder_gflop:.0f} | "
            f"{encoder_share:.1%} | {r.data_s:.2f} | {rest_s:.2f} | {rest_gflop:.0f} | "
            f"{rest_gflop / rest_s / r.peak_gflops:.1%} | {ops} |"
        )


def profile_step(setup: Setup, args: argparse.Namespace, top: int) -> None:
    """torch.profiler's `top` ops by self time over one step of `setup` (after a warm-up)."""
    from torch.profiler import ProfilerActivity, profile

    device = torch.device(setup.device)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with tempfile.TemporaryDirectory() as out_dir:
        trainer = Trainer(train_config(setup, out_dir, args), ProcessGroup(0, 1, device))
        step = step_with_most_objects(trainer)
        trainer.train_step(step)
        with profile(activities=activities) as profiler:
            trainer.train_step(step)
            sync(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"\ntorch.profiler, one step of {setup.label}, top {top} by self time")
    print(profiler.key_averages().table(sort_by=sort, row_limit=top))


def setups(args: argparse.Namespace) -> list[Setup]:
    """The rows to run: `--precisions auto` = bf16 on a GPU; on the CPU fp32, plus bf16 when
    the CPU has native bf16."""
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    precisions = args.precisions
    if precisions == ["auto"]:
        if device == "cuda":
            precisions = ["bf16"]
        else:
            precisions = ["fp32", "bf16"] if cpu_has_native_bf16() else ["fp32"]
    return [
        Setup(args.preset, size, precision, device)
        for size in args.sizes
        for precision in precisions
    ]


def machine_line(device: str) -> str:
    """The CPU model and torch's thread count (and the GPU when one is used)."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    line = (
        f"CPU: {cpu}, {torch.get_num_threads()} torch threads, native bf16: "
        f"{cpu_has_native_bf16()}, torch {torch.__version__}"
    )
    if device == "cuda":
        line += f", GPU: {torch.cuda.get_device_name()}"
    return line


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="sam2.1_hiera_t")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[512, 256],
        help="image sizes in pixels, one row (per precision) each",
    )
    parser.add_argument(
        "--precisions", nargs="+", default=["auto"], choices=["auto", "fp32", "bf16"]
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--objects", type=int, default=3, help="max objects per clip")
    parser.add_argument("--batch-size", type=int, default=1, help="clips per step")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed steps per row (default: 3 at 512 px, 5 at 256 px)",
    )
    parser.add_argument(
        "--matrix-size",
        type=int,
        default=None,
        help="side of the peak matmul (default: 2048 on CPU, 8192 on GPU)",
    )
    parser.add_argument(
        "--peak-repeats", type=int, default=3, help="matmuls per peak sample (the best counts)"
    )
    parser.add_argument("--top-ops", type=int, default=3, help="ops listed by FLOP share")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also print the profiler's top N ops of one step of the last row",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    chosen = setups(args)
    print(machine_line(chosen[0].device))
    rows = []
    for setup in chosen:
        print(f"measuring {setup.label} ...", flush=True)
        rows.append(measure(setup, args))
    print_tables(rows)
    if args.profile:
        profile_step(chosen[-1], args, args.profile)
    if args.json is not None:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=1))


if __name__ == "__main__":
    main()
