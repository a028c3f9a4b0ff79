"""The training loop: gradients, overfitting one clip, exact resume, DDP = one process, the
saved model in masklet and in the reference, and clear errors from `masklet train`.

Tiny models (the unit-test configuration of test_model_units, or sam2.1_hiera_t at 64 px)
on the committed synthetic DAVIS folder keep every test to seconds.
"""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

import masklet
from masklet.cli import main
from masklet.config import HieraConfig, SAM2Config
from masklet.model.sam2 import SAM2Model
from masklet.train.config import TrainConfig, config_from_dict
from masklet.train.distributed import ProcessGroup, start_processes, stop_processes
from masklet.train.loop import OFFICIAL_MODEL_FILE, Trainer
from masklet.train.metrics import read_metrics
from masklet.train.validation import make_validation_videos, validate

DAVIS = Path(__file__).parent / "data" / "synthetic_davis"
PHOTOS = Path(__file__).parent / "data" / "photos"
CPU = ProcessGroup(0, 1, torch.device("cpu"))
#: Checkpoint keys the released configurations never read (the no-memory embedding is added
#: directly, so its position encoding is unused, in the reference too).
NEVER_READ = {"no_mem_pos_enc"}
#: After 30 steps on one clip the loss is below this fraction of its start.
OVERFIT_FRACTION = 0.5

TINY = SAM2Config(
    "tiny-train-test",
    HieraConfig(
        8, 1, (1, 1, 2, 1), (3,), window_spec=(4, 2, 2, 2), window_pos_embed_background_size=(3, 3)
    ),
    image_size=64,
    hidden_dim=32,
    memory_dim=16,
    memory_attention_layers=1,
)


def tiny_model(seed: int = 0) -> SAM2Model:
    torch.manual_seed(seed)
    return SAM2Model(TINY)


def make_config(out_dir: Path, **train: Any) -> TrainConfig:
    """A tiny run on the committed DAVIS folder: 4-frame clips, 2 objects, no augmentation."""
    run = {
        "steps": 2,
        "out_dir": str(out_dir),
        "progress": False,
        "log_every": 1,
        "checkpoint_every": 1,
        "validation_videos": 0,
        **train,
    }
    return config_from_dict(
        {
            "model": {"preset": "sam2.1_hiera_t", "image_size": 64},
            "data": {
                "num_frames": 4,
                "max_objects": 2,
                "reverse_time_prob": 0.5,
                "sources": [{"kind": "davis", "path": str(DAVIS)}],
            },
            "augment": {"enabled": False},
            "prompts": {"correction_clicks": 2},
            "optimizer": {"lr": 1e-3, "vision_lr": 1e-3, "warmup_steps": 0, "grad_clip": 1.0},
            "train": run,
        }
    )


def gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- gradients
def test_gradients_reach_every_trainable_parameter_and_no_frozen_one(tmp_path: Path) -> None:
    config = make_config(tmp_path, batch_size=2)
    trainer = Trainer(config, CPU, model=tiny_model())
    missing: set[str] = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    for step in range(2):  # clips with mask prompts and with clicks
        trainer.optimizer.zero_grad(set_to_none=True)
        clips, indices = trainer._clips(step, 0)
        trainer._backward(clips, indices, num_objects=4.0, last=True)
        missing -= {n for n, p in trainer.model.named_parameters() if p.grad is not None}
    assert missing == NEVER_READ, f"no gradient reached {sorted(missing - NEVER_READ)}"

    frozen = make_config(tmp_path / "frozen", batch_size=2)
    frozen = dataclasses.replace(
        frozen,
        model=dataclasses.replace(frozen.model, freeze=("image_encoder", "sam_prompt_encoder")),
    )
    trainer = Trainer(frozen, CPU, model=tiny_model())
    clips, indices = trainer._clips(0, 0)
    trainer._backward(clips, indices, num_objects=2.0, last=True)
    for name, parameter in trainer.model.named_parameters():
        is_frozen = name.startswith(("image_encoder.", "sam_prompt_encoder."))
        assert parameter.requires_grad is not is_frozen, name
        if is_frozen:
            assert parameter.grad is None, name
    grouped = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert all(id(p) not in grouped for p in trainer.model.image_encoder.parameters())


# ---------------------------------------------------------------- learning
def test_thirty_steps_overfit_one_clip(tmp_path: Path) -> None:
    config = make_config(tmp_path, steps=30, checkpoint_every=1000)
    trainer = Trainer(config, CPU, model=tiny_model())
    clip = trainer.data.sample(1)
    # The same clip with the same prompts every step (prompts are drawn from its index).
    trainer._clips = lambda step, micro: ([clip], [1])  # type: ignore[method-assign]
    losses = [trainer.train_step(step)["total"] for step in range(30)]
    assert np.mean(losses[-3:]) < OVERFIT_FRACTION * np.mean(losses[:3]), losses


def test_training_goes_on_after_validation(tmp_path: Path) -> None:
    """Validation runs under inference mode; nothing it caches in the model (rotary factors,
    position grids) may break a later backward, also when inference came first."""
    model = tiny_model()
    validate(model, make_validation_videos(str(PHOTOS), 1, 8))
    config = make_config(
        tmp_path,
        steps=3,
        validate_every=1,
        validation_videos=1,
        validation_photos=str(PHOTOS),
        validation_frames=8,
    )
    Trainer(config, CPU, model=model).run()
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
    scores = [r["val_j_and_f"] for r in records if "val_j_and_f" in r]
    assert len(scores) == 3 and all(0.0 <= score <= 1.0 for score in scores), records


def test_reader_processes_change_nothing(tmp_path: Path) -> None:
    runs = {}
    for workers in (0, 1):
        config = make_config(tmp_path / str(workers), steps=2)
        config = dataclasses.replace(
            config, data=dataclasses.replace(config.data, num_workers=workers)
        )
        Trainer(config, CPU, model=tiny_model()).run()
        runs[workers] = [r["loss"] for r in read_metrics(tmp_path / str(workers) / "metrics.jsonl")]
    assert runs[0] == runs[1] and len(runs[0]) == 2


def test_a_metrics_line_is_the_mean_of_its_steps(tmp_path: Path) -> None:
    every = {}
    for log_every in (1, 2):
        out = tmp_path / str(log_every)
        Trainer(make_config(out, steps=4, log_every=log_every), CPU, model=tiny_model()).run()
        every[log_every] = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in every[2]] == [2, 4]
    for line, pair in zip(every[2], (every[1][0:2], every[1][2:4])):
        assert line["loss"] == pytest.approx((pair[0]["loss"] + pair[1]["loss"]) / 2)
        assert line["dice"] == pytest.approx((pair[0]["dice"] + pair[1]["dice"]) / 2)
        assert line["lr"] == pair[1]["lr"]


# ---------------------------------------------------------------- resume
def test_resume_continues_exactly(tmp_path: Path) -> None:
    straight = Trainer(make_config(tmp_path / "a", steps=4), CPU, model=tiny_model())
    straight.run()

    # The same run, killed during its third step (after the checkpoint of step 2).
    first = Trainer(make_config(tmp_path / "b", steps=4), CPU, model=tiny_model())
    original = first.train_step

    def dies_at_third_step(step: int) -> dict[str, float]:
        if step == 2:
            raise KeyboardInterrupt
        return original(step)

    first.train_step = dies_at_third_step  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        first.run()
    resumed = Trainer(make_config(tmp_path / "b", steps=4), CPU, model=tiny_model(seed=5))
    assert resumed.step == 2
    resumed.run()

    a = [r["loss"] for r in read_metrics(tmp_path / "a" / "metrics.jsonl") if "loss" in r]
    b = [r["loss"] for r in read_metrics(tmp_path / "b" / "metrics.jsonl") if "loss" in r]
    assert a == b and len(a) == 4
    for name, value in parameters(straight.model).items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


# ---------------------------------------------------------------- distributed
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ddp_worker(rank: int, port: int, out_dir: str) -> None:
    import os

    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    group = start_processes("cpu")
    try:
        trainer = Trainer(
            make_config(Path(out_dir), steps=1, batch_size=1), group, model=tiny_model()
        )
        trainer.run()
        if rank == 0:
            torch.save(gradients(trainer.model), Path(out_dir) / "gradients.pt")
    finally:
        stop_processes(group)


def test_two_gloo_processes_equal_one_process(tmp_path: Path) -> None:
    mp.spawn(_ddp_worker, args=(_free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    single = Trainer(make_config(tmp_path / "one", steps=1, batch_size=2), CPU, model=tiny_model())
    single.run()
    # The averaged gradient equals the one-process gradient of the same global batch ...
    distributed_gradients = torch.load(tmp_path / "ddp" / "gradients.pt", weights_only=True)
    single_gradients = gradients(single.model)
    assert distributed_gradients.keys() == single_gradients.keys()
    # (Gradients that are zero in exact arithmetic, e.g. of attention key biases, are rounding
    # noise: the floor is relative to the largest gradient of the model.)
    floor = 1e-6 * max(float(g.abs().max()) for g in single_gradients.values())
    for name, value in single_gradients.items():
        error = float((distributed_gradients[name] - value).abs().max())
        assert error <= 1e-4 * float(value.abs().max()) + floor, (name, error)
    # ... and so does the update, wherever the gradient is more than rounding noise: AdamW's
    # first step is lr * g / (|g| + eps), about lr * sign(g), whatever the size of g.
    distributed = torch.load(tmp_path / "ddp" / OFFICIAL_MODEL_FILE, weights_only=True)["model"]
    start = tiny_model().state_dict()
    compared = 0
    for name, gradient in single_gradients.items():
        significant = gradient.abs() > 100 * floor
        ours, theirs = single.model.state_dict()[name], distributed[name]
        torch.testing.assert_close(theirs[significant], ours[significant], rtol=0, atol=1e-6)
        if significant.any():  # it was updated
            assert not torch.equal(ours[significant], start[name][significant]), name
        compared += int(significant.sum())
    assert compared > 0.5 * sum(g.numel() for g in single_gradients.values())
    ddp_loss = read_metrics(tmp_path / "ddp" / "metrics.jsonl")[0]["loss"]
    one_loss = read_metrics(tmp_path / "one" / "metrics.jsonl")[0]["loss"]
    assert ddp_loss == pytest.approx(one_loss, rel=1e-5)


# ---------------------------------------------------------------- the saved model
@pytest.mark.parity
def test_saved_model_loads_in_masklet_and_the_reference(tmp_path: Path) -> None:
    from oracle import install_torchvision_stand_in, oracle_image_predictor

    Trainer(make_config(tmp_path, steps=1), CPU).run()
    path = tmp_path / OFFICIAL_MODEL_FILE
    ours = masklet.build_sam2("sam2.1_hiera_t", checkpoint=str(path), image_size=64)
    install_torchvision_stand_in()
    from sam2.build_sam import build_sam2

    theirs = build_sam2(
        "configs/sam2.1/sam2.1_hiera_t.yaml",
        str(path),
        device="cpu",
        hydra_overrides_extra=["++model.image_size=64"],
    ).eval()
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    our_predictor = masklet.SAM2ImagePredictor(ours)
    their_predictor = oracle_image_predictor(theirs)
    our_predictor.set_image(image)
    their_predictor.set_image(image)  # type: ignore[attr-defined]
    prompt = {
        "point_coords": np.array([[30.0, 20.0]]),
        "point_labels": np.array([1]),
        "return_logits": True,
    }
    our_masks, our_scores, _ = our_predictor.predict(**prompt)  # type: ignore[arg-type]
    their_masks, their_scores, _ = their_predictor.predict(**prompt)  # type: ignore[attr-defined]
    np.testing.assert_allclose(our_masks, their_masks, atol=1e-4)
    np.testing.assert_allclose(our_scores, their_scores, atol=1e-4)


# ---------------------------------------------------------------- errors
def write_toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_cli_names_an_unknown_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_toml(tmp_path / "c.toml", "[train]\nsteps = 1\nlearning_rate = 1\n")
    assert main(["train", str(config)]) == 2
    assert "unknown key 'learning_rate' in [train]" in capsys.readouterr().err


def test_cli_names_an_unknown_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_toml(tmp_path / "c.toml", "[optimiser]\nlr = 1\n")
    assert main(["train", str(config)]) == 2
    assert "unknown table [optimiser]" in capsys.readouterr().err


def test_cli_names_a_bad_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_toml(tmp_path / "c.toml", '[train]\nsteps = "ten"\n')
    assert main(["train", str(config)]) == 2
    assert "[train] steps must be int" in capsys.readouterr().err


def _davis_toml(tmp_path: Path, data: Path, num_frames: int = 4) -> Path:
    return write_toml(
        tmp_path / "c.toml",
        f"[model]\nimage_size = 64\n[data]\nnum_frames = {num_frames}\n"
        f'[[data.sources]]\nkind = "davis"\npath = "{data}"\n'
        f"[train]\nsteps = 1\nprogress = false\nvalidation_videos = 0\nlog_every = 1\n"
        f'out_dir = "{tmp_path / "out"}"\n',
    )


def test_cli_missing_and_empty_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _davis_toml(tmp_path, tmp_path / "nowhere")
    assert main(["train", str(config)]) == 2
    assert "nowhere" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["train", str(config), "--data", str(tmp_path / "empty")]) == 2
    assert "empty" in capsys.readouterr().err


def test_cli_video_shorter_than_a_clip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _davis_toml(tmp_path, DAVIS, num_frames=12)
    assert main(["train", str(config)]) == 2
    error = capsys.readouterr().err
    assert "synth_" in error and "12" in error


def test_cli_trains_and_writes_everything(tmp_path: Path) -> None:
    config = _davis_toml(tmp_path, DAVIS)
    assert main(["train", str(config), "--steps", "2"]) == 0
    out = tmp_path / "out"
    assert (out / OFFICIAL_MODEL_FILE).is_file() and (out / "loss.png").is_file()
    assert len(read_metrics(out / "metrics.jsonl")) == 2
    masklet.build_sam2("sam2.1_hiera_t", checkpoint=str(out / OFFICIAL_MODEL_FILE), image_size=64)
    assert main(["train", str(config), "--steps", "3"]) == 0  # resumes at step 2
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [1, 2, 3]


def test_init_loads_an_official_file_strictly(tmp_path: Path) -> None:
    from masklet.train.checkpoints import save_official

    torch.manual_seed(3)
    source = masklet.build_sam2("sam2.1_hiera_t", image_size=64)
    path = save_official(tmp_path / "start.pt", source)
    config = make_config(tmp_path / "run")
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, init=str(path)))
    trainer = Trainer(config, CPU)
    for name, value in source.state_dict().items():
        assert torch.equal(trainer.model.state_dict()[name], value), name
    wrong = dataclasses.replace(config.model, preset="sam2.1_hiera_s", init=str(path))
    with pytest.raises(masklet.errors.CheckpointError):
        Trainer(dataclasses.replace(config, model=wrong), CPU)
