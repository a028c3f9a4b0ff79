"""Optimizer of training (masklet.train.optim): groups, layer decay, freezing, schedule, clip."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import masklet
from masklet.errors import ConfigError
from masklet.model.common import LayerNorm2d
from masklet.train.optim import (
    LrSchedule,
    OptimizerOptions,
    build_optimizer,
    clip_gradients,
    freeze,
    parameter_groups,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return masklet.build_sam2("sam2.1_hiera_t", image_size=64)


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return tiny_model()


def group_of(groups: list[dict], name: str) -> dict:
    """The group that holds parameter `name`."""
    (group,) = [group for group in groups if name in group["param_names"]]
    return group


def test_no_decay_groups_hold_exactly_biases_and_norm_weights(model: nn.Module) -> None:
    norms = {
        f"{module_name}.{parameter_name}"
        for module_name, module in model.named_modules()
        if isinstance(module, (nn.LayerNorm, LayerNorm2d))
        for parameter_name, _ in module.named_parameters(recurse=False)
    }
    expected = {name for name, _ in model.named_parameters() if "bias" in name} | norms
    groups = parameter_groups(model, OptimizerOptions())
    undecayed = {n for g in groups if g["weight_decay"] == 0 for n in g["param_names"]}
    decayed = {n for g in groups if g["weight_decay"] == 0.1 for n in g["param_names"]}
    assert undecayed == expected
    assert decayed == {name for name, _ in model.named_parameters()} - expected
    assert "memory_encoder.fuser.layers.0.norm.weight" in undecayed  # a LayerNorm2d
    reference_like = parameter_groups(model, OptimizerOptions(exempt_layer_norm_2d=False))
    assert group_of(reference_like, "memory_encoder.fuser.layers.0.norm.weight")[
        "weight_decay"
    ] == pytest.approx(0.1)


def test_layer_scales_and_learning_rates_follow_the_formula(model: nn.Module) -> None:
    options = OptimizerOptions(lr=1e-4, vision_lr=5e-5, layer_decay=0.8)
    prefix = "image_encoder.trunk.blocks."
    depth = len({n.split(".")[3] for n, _ in model.named_parameters() if n.startswith(prefix)})
    groups = parameter_groups(model, options)
    trunk = "image_encoder.trunk"
    expected_vision = {
        f"{trunk}.blocks.0.attn.qkv.weight": 0.8**depth,
        f"{trunk}.blocks.{depth - 1}.mlp.layers.0.weight": 0.8,
        f"{trunk}.patch_embed.proj.weight": 0.8 ** (depth + 1),
        f"{trunk}.pos_embed": 1.0,
        f"{trunk}.pos_embed_window": 1.0,
        "image_encoder.neck.convs.0.conv.weight": 1.0,
    }
    for name, scale in expected_vision.items():
        group = group_of(groups, name)
        assert group["lr_scale"] == pytest.approx(scale), name
        assert group["lr"] == pytest.approx(5e-5 * scale), name
        assert group["initial_lr"] == pytest.approx(group["lr"]), name
    for name in ("sam_mask_decoder.iou_token.weight", "memory_attention.norm.weight"):
        group = group_of(groups, name)
        assert (group["lr_scale"], group["lr"]) == (1.0, pytest.approx(1e-4)), name
    no_override = parameter_groups(model, OptimizerOptions(pos_embed_layer_scale_one=False))
    pos_embed = group_of(no_override, f"{trunk}.pos_embed")
    assert pos_embed["lr_scale"] == pytest.approx(0.9 ** (depth + 1))


def test_vision_lr_applies_to_the_image_encoder_only(model: nn.Module) -> None:
    groups = parameter_groups(model, OptimizerOptions(lr=1e-3, vision_lr=1e-5))
    for group in groups:
        vision = [name.startswith("image_encoder.") for name in group["param_names"]]
        assert len(set(vision)) == 1, group["name"]
        base = 1e-5 if vision[0] else 1e-3
        assert group["lr"] == pytest.approx(base * group["lr_scale"]), group["name"]
    names = [name for group in groups for name in group["param_names"]]
    assert sorted(names) == sorted(name for name, _ in model.named_parameters())


def test_groups_are_deterministic(model: nn.Module) -> None:
    first = parameter_groups(model, OptimizerOptions())
    second = parameter_groups(tiny_model(), OptimizerOptions())
    assert [g["param_names"] for g in first] == [g["param_names"] for g in second]
    assert [g["name"] for g in first] == [g["name"] for g in second]
    for group in first:
        assert group["param_names"] == sorted(group["param_names"])


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        ("image_encoder", "image_encoder."),
        ("sam_prompt_encoder", "sam_prompt_encoder."),
        ("image_encoder.trunk.blocks.0*", "image_encoder.trunk.blocks.0."),
    ],
)
def test_freeze_removes_parameters_from_the_optimizer(pattern: str, prefix: str) -> None:
    model = tiny_model()
    frozen = freeze(model, [pattern])
    expected = sorted(name for name, _ in model.named_parameters() if name.startswith(prefix))
    assert frozen == expected and frozen
    optimizer = build_optimizer(model, OptimizerOptions())
    trained = {name for group in optimizer.param_groups for name in group["param_names"]}
    assert trained.isdisjoint(frozen)
    assert trained | set(frozen) == {name for name, _ in model.named_parameters()}
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    named = dict(model.named_parameters())
    assert all(id(named[name]) not in optimized for name in frozen)
    assert all(not named[name].requires_grad for name in frozen)


def test_freeze_names_an_unknown_pattern() -> None:
    model = tiny_model()
    with pytest.raises(ConfigError, match="image_encodr"):
        freeze(model, ["image_encoder.neck", "image_encodr"])
    assert all(parameter.requires_grad for parameter in model.parameters())


def test_freezing_everything_is_an_error() -> None:
    model = nn.Linear(2, 2)
    freeze(model, ["*"])
    with pytest.raises(ConfigError, match="frozen"):
        build_optimizer(model, OptimizerOptions())


@pytest.mark.parametrize(
    ("field", "value"),
    [("lr", 0.0), ("layer_decay", 1.5), ("betas", (0.9, 1.0)), ("warmup_steps", -1),
     ("min_lr_ratio", 2.0), ("grad_clip", -1.0), ("weight_decay", -0.1)],
)  # fmt: skip
def test_options_name_the_bad_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        OptimizerOptions(**{field: value})  # type: ignore[arg-type]


def test_schedule_warmup_then_cosine() -> None:
    options = OptimizerOptions(warmup_steps=10, warmup_start_factor=0.1, min_lr_ratio=0.1)
    schedule = LrSchedule(options)
    assert schedule.lr_at(0, 110) == pytest.approx(0.1)
    assert schedule.lr_at(5, 110) == pytest.approx(0.55)
    assert schedule.lr_at(10, 110) == pytest.approx(1.0)
    assert schedule.lr_at(60, 110) == pytest.approx(0.1 + 0.9 * 0.5)
    assert schedule.lr_at(35, 110) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert schedule.lr_at(110, 110) == pytest.approx(0.1)
    assert schedule.lr_at(500, 110) == pytest.approx(0.1)
    assert LrSchedule(OptimizerOptions()).lr_at(0, 100) == 1.0  # no warmup: the cosine start
    assert LrSchedule(OptimizerOptions(warmup_steps=4)).lr_at(0, 100) == 0.0
    with pytest.raises(ConfigError, match="total_steps"):
        schedule.lr_at(0, 0)


def test_schedule_apply_scales_each_group_base_lr() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))
    optimizer = build_optimizer(model, OptimizerOptions(lr=1e-3))
    bases = [group["initial_lr"] for group in optimizer.param_groups]
    schedule = LrSchedule(OptimizerOptions(lr=1e-3, min_lr_ratio=0.1))
    assert schedule.apply(optimizer, 100, 100) == pytest.approx(0.1)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([b * 0.1 for b in bases])
    schedule.apply(optimizer, 0, 100)  # stateless: back to the start
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(bases)
    assert schedule.describe()["min_lr_ratio"] == 0.1


def test_clip_gradients_returns_the_norm_and_clips() -> None:
    model = nn.Linear(4, 3)
    gradients = [torch.full_like(p, 2.0) for p in model.parameters()]
    total = math.sqrt(sum(4.0 * g.numel() for g in gradients))
    for parameter, gradient in zip(model.parameters(), gradients, strict=True):
        parameter.grad = gradient.clone()
    assert clip_gradients(model.parameters(), None) == pytest.approx(total)
    assert all(
        torch.equal(g, p.grad)
        for p, g in zip(model.parameters(), gradients, strict=True)
        if p.grad is not None
    )
    assert clip_gradients(model, 0.1) == pytest.approx(total)
    clipped_gradients = [p.grad.flatten() for p in model.parameters() if p.grad is not None]
    clipped = torch.linalg.vector_norm(torch.cat(clipped_gradients))
    assert float(clipped) == pytest.approx(0.1, rel=1e-4)
    assert clip_gradients(nn.Linear(2, 2).parameters(), 0.1) == 0.0  # no gradients yet


def test_adamw_step_leaves_frozen_parameters_alone() -> None:
    model = tiny_model()
    freeze(model, ["image_encoder"])
    optimizer = build_optimizer(model, OptimizerOptions(lr=1e-2))
    assert isinstance(optimizer, torch.optim.AdamW)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for parameter in model.parameters():
        parameter.grad = torch.ones_like(parameter) if parameter.requires_grad else None
    optimizer.step()
    for name, parameter in model.named_parameters():
        changed = not torch.equal(parameter, before[name])
        assert changed == (not name.startswith("image_encoder.")), name
