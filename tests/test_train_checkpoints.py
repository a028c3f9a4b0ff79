"""Training checkpoints (masklet.train.checkpoints): round trip, atomic writes, retention,
damaged files, mismatches and the official-format export."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import masklet
from masklet.errors import CheckpointError, ConfigError
from masklet.train.checkpoints import (
    LAST_NAME,
    TrainingState,
    latest_checkpoint,
    load_training_checkpoint,
    restore,
    save_official,
    save_training_checkpoint,
)
from masklet.train.optim import OptimizerOptions, build_optimizer, freeze

pytestmark = pytest.mark.usefixtures("one_thread")
CONFIG = {"model": {"preset": "toy", "freeze": ["encoder.0"]}, "optimizer": {"lr": 0.01}}


class Toy(nn.Module):
    """A small model with an encoder and a head (its own names, norms and biases)."""

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, hidden), nn.LayerNorm(hidden))
        self.head = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def make_run(seed: int = 0, frozen: tuple[str, ...] = ()) -> tuple[Toy, torch.optim.AdamW]:
    torch.manual_seed(seed)
    model = Toy()
    if frozen:
        freeze(model, frozen)
    return model, build_optimizer(model, OptimizerOptions(lr=1e-2, vision_lr=1e-2))


def train(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> list[float]:
    """Steps on random data drawn from torch, NumPy and Python's RNGs; returns the losses."""
    losses = []
    for _ in range(steps):
        noise = np.random.rand() + random.random()
        x = torch.randn(16, 4) + noise
        loss = model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_round_trip_restores_model_optimizer_and_rng_exactly(tmp_path: Path) -> None:
    model, optimizer = make_run()
    train(model, optimizer, 3)
    state = TrainingState.capture(3, model, optimizer, CONFIG, {"loss": 0.5}, {"kind": "x"})
    path = save_training_checkpoint(tmp_path, state)
    expected_losses = train(model, optimizer, 3)
    expected_weights = {k: v.clone() for k, v in model.state_dict().items()}
    expected_draws = draws()

    loaded = load_training_checkpoint(path)
    assert (loaded.step, loaded.config, loaded.metrics) == (3, CONFIG, {"loss": 0.5})
    assert loaded.schedule == {"kind": "x"} and loaded.masklet_version
    fresh_model, fresh_optimizer = make_run(seed=1)
    torch.manual_seed(123)
    restore(loaded, fresh_model, fresh_optimizer, CONFIG)
    assert train(fresh_model, fresh_optimizer, 3) == expected_losses
    for key, value in fresh_model.state_dict().items():
        assert torch.equal(value, expected_weights[key]), key
    assert draws() == expected_draws


def test_rng_states_after_restore_equal_those_at_save(tmp_path: Path) -> None:
    model, optimizer = make_run()
    random.gauss(0, 1)  # leaves a cached Gaussian in Python's generator
    np.random.standard_normal()
    save_training_checkpoint(tmp_path, TrainingState.capture(0, model, optimizer))
    after_save = (*draws(), random.gauss(0, 1), float(np.random.standard_normal()))
    draws()
    restore(load_training_checkpoint(tmp_path / LAST_NAME), model, optimizer)
    assert (*draws(), random.gauss(0, 1), float(np.random.standard_normal())) == after_save


def test_checkpoint_loads_with_weights_only(tmp_path: Path) -> None:
    model, optimizer = make_run()
    train(model, optimizer, 1)
    config = {"model": {"freeze": ("a",)}, "out_dir": Path("runs")}
    metrics = {"loss": np.float64(0.5), "count": np.int64(3)}
    state = TrainingState.capture(1, model, optimizer, config, metrics)
    path = save_training_checkpoint(tmp_path, state)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "masklet-training-checkpoint" and payload["step"] == 1
    assert payload["config"] == {"model": {"freeze": ["a"]}, "out_dir": "runs"}
    assert payload["metrics"] == {"loss": 0.5, "count": 3}
    assert type(payload["metrics"]["loss"]) is float


def test_restore_keeps_the_current_hyperparameters(tmp_path: Path) -> None:
    model, optimizer = make_run()
    train(model, optimizer, 1)
    save_training_checkpoint(tmp_path, TrainingState.capture(1, model, optimizer))
    torch.manual_seed(0)
    resumed = Toy()
    resumed_optimizer = build_optimizer(resumed, OptimizerOptions(lr=3e-3, vision_lr=3e-3))
    restore(load_training_checkpoint(tmp_path / LAST_NAME), resumed, resumed_optimizer)
    assert {g["initial_lr"] for g in resumed_optimizer.param_groups} == {3e-3}
    assert all(state["step"] == 1 for state in resumed_optimizer.state.values())


def test_save_is_atomic_and_a_failed_write_keeps_the_previous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, optimizer = make_run()
    save_training_checkpoint(tmp_path, TrainingState.capture(1, model, optimizer))
    assert files(tmp_path) == ["checkpoint-00000001.pt", LAST_NAME]
    train(model, optimizer, 1)

    def broken_save(payload: Any, stream: Any) -> None:
        stream.write(b"PK\x03\x04 half a checkpoint")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_training_checkpoint(tmp_path, TrainingState.capture(2, model, optimizer))
    monkeypatch.undo()
    assert files(tmp_path) == ["checkpoint-00000001.pt", LAST_NAME]
    assert load_training_checkpoint(tmp_path / LAST_NAME).step == 1
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-00000001.pt"


def test_retention_keeps_the_last_n(tmp_path: Path) -> None:
    model, optimizer = make_run()
    for step in range(1, 6):
        save_training_checkpoint(tmp_path, TrainingState.capture(step, model, optimizer), keep=2)
    assert files(tmp_path) == ["checkpoint-00000004.pt", "checkpoint-00000005.pt", LAST_NAME]
    assert load_training_checkpoint(tmp_path / LAST_NAME).step == 5
    with pytest.raises(ConfigError, match="keep"):
        save_training_checkpoint(tmp_path, TrainingState.capture(6, model, optimizer), keep=0)


def test_latest_checkpoint_picks_the_highest_step(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path / "missing") is None
    assert latest_checkpoint(tmp_path) is None
    model, optimizer = make_run()
    for step in (10, 2, 7):
        save_training_checkpoint(tmp_path, TrainingState.capture(step, model, optimizer), keep=5)
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-00000010.pt"
    (tmp_path / "checkpoint-00000010.pt").unlink()
    (tmp_path / "checkpoint-00000007.pt").unlink()
    (tmp_path / "checkpoint-00000002.pt").unlink()
    assert latest_checkpoint(tmp_path) == tmp_path / LAST_NAME


def test_damaged_or_foreign_files_raise_checkpoint_error(tmp_path: Path) -> None:
    model, optimizer = make_run()
    good = save_training_checkpoint(tmp_path, TrainingState.capture(1, model, optimizer))
    data = good.read_bytes()
    cases = {
        "truncated.pt": data[: len(data) // 2],
        "empty.pt": b"",
        "garbage.pt": b"not a checkpoint at all" * 10,
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=rf"{name} is (truncated|not a readable)"):
            load_training_checkpoint(tmp_path / name)
    with pytest.raises(CheckpointError, match="not found"):
        load_training_checkpoint(tmp_path / "absent.pt")
    official = save_official(tmp_path / "model.pt", model)
    with pytest.raises(CheckpointError, match="model file"):
        load_training_checkpoint(official)
    torch.save({"format": "masklet-training-checkpoint", "hook": Toy}, tmp_path / "code.pt")
    with pytest.raises(CheckpointError, match=r"refusing .*Python object .*Toy"):
        load_training_checkpoint(tmp_path / "code.pt")


def test_restore_names_what_differs_and_changes_nothing(tmp_path: Path) -> None:
    model, optimizer = make_run(frozen=("encoder.0",))
    train(model, optimizer, 1)
    path = save_training_checkpoint(tmp_path, TrainingState.capture(1, model, optimizer, CONFIG))
    state = load_training_checkpoint(path)

    other_model = Toy(hidden=6)
    before = {k: v.clone() for k, v in other_model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"encoder\.0\.weight \(8, 4\) vs \(6, 4\)"):
        restore(state, other_model, build_optimizer(other_model, OptimizerOptions()))
    assert all(torch.equal(v, before[k]) for k, v in other_model.state_dict().items())

    unfrozen_model, unfrozen_optimizer = make_run()
    with pytest.raises(CheckpointError, match=r"freeze options.*this run only: encoder\.0\.bias"):
        restore(state, unfrozen_model, unfrozen_optimizer)

    same_model, same_optimizer = make_run(frozen=("encoder.0",))
    other_config = {"model": {"preset": "other", "freeze": ["encoder.0"]}}
    with pytest.raises(CheckpointError, match=r"model\.preset"):
        restore(state, same_model, same_optimizer, other_config)
    restore(state, same_model, same_optimizer, {**CONFIG, "optimizer": {"lr": 1.0}})


def test_save_official_loads_strictly_with_build_sam2(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = masklet.build_sam2("sam2.1_hiera_t", image_size=64)
    path = save_official(tmp_path / "official.pt", model)
    assert files(tmp_path) == ["official.pt"]
    payload = torch.load(path, weights_only=True)
    assert list(payload) == ["model"]
    assert list(payload["model"]) == list(model.state_dict())
    assert all(t.is_contiguous() and t.device.type == "cpu" for t in payload["model"].values())
    assert all(t.dtype == torch.float32 for t in payload["model"].values())
    loaded = masklet.build_sam2("sam2.1_hiera_t", checkpoint=path, image_size=64)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key


def test_save_official_writes_fp32_from_a_bf16_model(tmp_path: Path) -> None:
    model = Toy().to(torch.bfloat16)
    payload = torch.load(save_official(tmp_path / "m.pt", model), weights_only=True)
    assert {t.dtype for t in payload["model"].values()} == {torch.float32}
