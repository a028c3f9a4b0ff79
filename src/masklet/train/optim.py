"""The optimizer of a training run: AdamW parameter groups, freezing, schedule, clipping.

The recipe is the reference's (facebookresearch/sam2 `training/`, the B+ MOSE fine-tune config):

- AdamW; weight decay `weight_decay` (0.1) except 0 for every parameter whose name contains
  `"bias"` and for the weights of norm modules (`torch.nn.LayerNorm`, and masklet's
  `LayerNorm2d` unless `exempt_layer_norm_2d` is False: the reference matches only the
  `torch.nn.LayerNorm` class, so it decays `LayerNorm2d` weights).
- Two base learning rates: `vision_lr` for `image_encoder.*`, `lr` for everything else.
- Layer-wise lr decay on `image_encoder.trunk` with `L` trunk blocks: a parameter of
  `image_encoder.trunk.blocks.<i>` gets scale `layer_decay ** (L - i)`; `patch_embed` and
  `pos_embed*` parameters get `layer_decay ** (L + 1)`; any other trunk parameter gets 1. The
  released B+ config overrides `*pos_embed*` to 1.0 (`pos_embed_layer_scale_one`, default on).
  Parameters outside the trunk (the neck included) get scale 1.
- A linear warmup of `warmup_steps` from `warmup_start_factor * lr`, then a cosine from `lr` to
  `lr * min_lr_ratio` (the reference's end value is base / 10) at `total_steps`.
- Gradient clipping to total norm `grad_clip` (0.1, norm 2); None or 0 turns it off.

Parameter groups are built from the sorted parameter names, so the same model and options give
the same groups in the same order and an optimizer state saved by one run loads into the next.
Each group records `param_names`, `lr_scale`, `initial_lr` (its base lr) and a readable `name`.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from masklet.errors import ConfigError
from masklet.model.common import LayerNorm2d

TRUNK_PREFIX = "image_encoder.trunk"
VISION_PREFIX = "image_encoder"


@dataclass(frozen=True)
class OptimizerOptions:
    """Optimizer, schedule and clipping settings (defaults: the B+ MOSE fine-tune recipe).

    Attributes:
        lr: base learning rate of everything outside the image encoder.
        vision_lr: base learning rate of `image_encoder.*` (trunk parameters get it times
            their layer scale).
        weight_decay: AdamW weight decay of parameters that are neither biases nor norms.
        layer_decay: layer-wise lr decay of the trunk; 0.9 for B+ (the reference uses 0.8 for
            the T and S presets, DESIGN §10).
        pos_embed_layer_scale_one: give `*pos_embed*` trunk parameters scale 1.0, as the
            released B+ config does; False gives them `layer_decay ** (L + 1)`.
        exempt_layer_norm_2d: no weight decay on `LayerNorm2d` weights either (the reference
            exempts only `torch.nn.LayerNorm`).
        betas, eps: AdamW's.
        warmup_steps: optimizer steps of linear warmup before the cosine (0: none).
        warmup_start_factor: the lr factor at step 0 of the warmup.
        min_lr_ratio: the lr factor at the end of the cosine.
        grad_clip: maximum total gradient norm; None or 0 turns clipping off.
        grad_clip_norm_type: the norm of the clipping (2: Euclidean).
    """

    lr: float = 5e-6
    vision_lr: float = 3e-6
    weight_decay: float = 0.1
    layer_decay: float = 0.9
    pos_embed_layer_scale_one: bool = True
    exempt_layer_norm_2d: bool = True
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 0
    warmup_start_factor: float = 0.0
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 0.1
    grad_clip_norm_type: float = 2.0

    def __post_init__(self) -> None:
        _require(self.lr > 0, "lr", "a positive number", self.lr)
        _require(self.vision_lr > 0, "vision_lr", "a positive number", self.vision_lr)
        _require(self.weight_decay >= 0, "weight_decay", "at least 0", self.weight_decay)
        _require(0 < self.layer_decay <= 1, "layer_decay", "in (0, 1]", self.layer_decay)
        betas_ok = len(self.betas) == 2 and all(0 <= beta < 1 for beta in self.betas)
        _require(betas_ok, "betas", "two numbers in [0, 1)", self.betas)
        _require(self.eps > 0, "eps", "a positive number", self.eps)
        warmup_ok = isinstance(self.warmup_steps, int) and self.warmup_steps >= 0
        _require(warmup_ok, "warmup_steps", "an integer of at least 0", self.warmup_steps)
        start = self.warmup_start_factor
        _require(0 <= start <= 1, "warmup_start_factor", "in [0, 1]", start)
        _require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "in [0, 1]", self.min_lr_ratio)
        clip_ok = self.grad_clip is None or self.grad_clip >= 0
        _require(clip_ok, "grad_clip", "None or at least 0", self.grad_clip)
        norm = self.grad_clip_norm_type
        _require(norm > 0, "grad_clip_norm_type", "a positive number", norm)

    @property
    def clips_gradients(self) -> bool:
        """Whether gradient clipping is on."""
        return bool(self.grad_clip)


def _require(condition: bool, field: str, expected: str, value: object) -> None:
    if not condition:
        raise ConfigError(f"optimizer option {field} must be {expected}, got {value!r}")


def _matches(name: str, pattern: str) -> bool:
    """Whether parameter `name` matches an fnmatch `pattern` or lies under module `pattern`."""
    return name == pattern or name.startswith(pattern + ".") or fnmatch.fnmatchcase(name, pattern)


def freeze(model: nn.Module, patterns: Sequence[str]) -> list[str]:
    """Stop training the parameters that match any of `patterns`; returns their sorted names.

    A pattern is a module prefix (`"image_encoder"`, `"sam_prompt_encoder"`) or an fnmatch
    pattern over parameter names (`"image_encoder.trunk.blocks.0*"`). A pattern that matches
    no parameter is a `ConfigError` naming it (a typo would otherwise train everything).
    """
    named = dict(model.named_parameters())
    frozen: set[str] = set()
    for pattern in patterns:
        if not pattern:
            raise ConfigError("freeze pattern must not be empty")
        matched = [name for name in named if _matches(name, pattern)]
        if not matched:
            raise ConfigError(
                f"freeze pattern {pattern!r} matches no parameter of the model "
                "(use a module prefix such as 'image_encoder' or a pattern such as "
                "'image_encoder.trunk.blocks.0*')"
            )
        frozen.update(matched)
    for name in frozen:
        named[name].requires_grad_(False)
    return sorted(frozen)


def _norm_parameter_names(model: nn.Module, include_layer_norm_2d: bool) -> set[str]:
    """Names of the parameters owned directly by norm modules."""
    norm_types: tuple[type[nn.Module], ...] = (nn.LayerNorm,)
    if include_layer_norm_2d:
        norm_types = (nn.LayerNorm, LayerNorm2d)
    names = set()
    for module_name, module in model.named_modules():
        if isinstance(module, norm_types):
            for parameter_name, _ in module.named_parameters(recurse=False):
                names.add(f"{module_name}.{parameter_name}" if module_name else parameter_name)
    return names


def _trunk_block_count(model: nn.Module) -> int | None:
    """The number of trunk blocks `L`, or None for a model without `image_encoder.trunk`."""
    try:
        trunk = model.get_submodule(TRUNK_PREFIX)
    except AttributeError:
        return None
    blocks = getattr(trunk, "blocks", None)
    return len(blocks) if isinstance(blocks, nn.ModuleList) else None


def layer_scale(name: str, num_blocks: int | None, options: OptimizerOptions) -> float:
    """The lr scale of parameter `name` (1 outside the trunk; see the module docstring)."""
    if num_blocks is None or not name.startswith(TRUNK_PREFIX + "."):
        return 1.0
    local = name[len(TRUNK_PREFIX) + 1 :]
    decay = options.layer_decay
    if "pos_embed" in local:
        return 1.0 if options.pos_embed_layer_scale_one else decay ** (num_blocks + 1)
    if "patch_embed" in local:
        return decay ** (num_blocks + 1)
    parts = local.split(".")
    if parts[0] == "blocks" and len(parts) > 1 and parts[1].isdigit():
        return decay ** (num_blocks - int(parts[1]))
    return 1.0


def parameter_groups(model: nn.Module, options: OptimizerOptions) -> list[dict[str, Any]]:
    """AdamW parameter groups of the trainable parameters, keyed by (scale, decay, vision).

    Each group holds `params`, `param_names`, `lr` (= `initial_lr`, base lr times scale),
    `weight_decay`, `lr_scale` and a readable `name`. Raises `ConfigError` when every
    parameter is frozen.
    """
    num_blocks = _trunk_block_count(model)
    norms = _norm_parameter_names(model, options.exempt_layer_norm_2d)
    groups: dict[tuple[float, float, bool], dict[str, Any]] = {}
    for name, parameter in sorted(model.named_parameters()):
        if not parameter.requires_grad:
            continue
        scale = layer_scale(name, num_blocks, options)
        decay = 0.0 if ("bias" in name or name in norms) else options.weight_decay
        is_vision = name.startswith(VISION_PREFIX + ".")
        key = (scale, decay, is_vision)
        if key not in groups:
            groups[key] = _new_group(scale, decay, is_vision, options)
        groups[key]["params"].append(parameter)
        groups[key]["param_names"].append(name)
    if not groups:
        raise ConfigError("nothing to train: every parameter of the model is frozen")
    return list(groups.values())


def _new_group(
    scale: float, decay: float, is_vision: bool, options: OptimizerOptions
) -> dict[str, Any]:
    base = options.vision_lr if is_vision else options.lr
    part = VISION_PREFIX if is_vision else "rest"
    return {
        "params": [],
        "param_names": [],
        "lr": base * scale,
        "initial_lr": base * scale,
        "weight_decay": decay,
        "lr_scale": scale,
        "name": f"{part} lr_scale={scale:.6g} weight_decay={decay:g}",
    }


def build_optimizer(model: nn.Module, options: OptimizerOptions) -> torch.optim.AdamW:
    """AdamW over `parameter_groups(model, options)` (torch's default foreach/fused choice)."""
    return torch.optim.AdamW(
        parameter_groups(model, options),
        lr=options.lr,
        betas=options.betas,
        eps=options.eps,
        weight_decay=options.weight_decay,
    )


@dataclass(frozen=True)
class LrSchedule:
    """Linear warmup, then cosine decay, as a factor of each group's `initial_lr`; built from
    `OptimizerOptions` (`warmup_steps`, `warmup_start_factor`, `min_lr_ratio`).

    Stateless: the factor depends only on the step (optimizer steps already taken, 0 for the
    first update) and the total, so a resumed run recomputes exactly the same learning rates.
    """

    options: OptimizerOptions = OptimizerOptions()

    def lr_at(self, step: int, total_steps: int) -> float:
        """The lr factor at `step` of `total_steps`: `warmup_start_factor` at step 0 of a
        warmup, 1 at its end, `min_lr_ratio` from `total_steps` on."""
        if total_steps <= 0:
            raise ConfigError(f"total_steps must be positive, got {total_steps}")
        if step < 0:
            raise ConfigError(f"step must be at least 0, got {step}")
        warmup = self.options.warmup_steps
        if step < warmup:
            start = self.options.warmup_start_factor
            return start + (1.0 - start) * step / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        end = self.options.min_lr_ratio
        return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def apply(self, optimizer: torch.optim.Optimizer, step: int, total_steps: int) -> float:
        """Set each group's lr to its `initial_lr` times `lr_at(step, total_steps)`; returns
        the factor. A group without `initial_lr` takes its current lr as the base."""
        factor = self.lr_at(step, total_steps)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor
        return factor

    def describe(self) -> dict[str, Any]:
        """The schedule as a JSON-able dict (stored in training checkpoints)."""
        return {
            "kind": "warmup_cosine",
            "warmup_steps": self.options.warmup_steps,
            "warmup_start_factor": self.options.warmup_start_factor,
            "min_lr_ratio": self.options.min_lr_ratio,
        }


def clip_gradients(
    parameters: Iterable[Tensor] | nn.Module, max_norm: float | None, norm_type: float = 2.0
) -> float:
    """Clip the gradients to total norm `max_norm` (None or 0: measure only); returns the
    total norm before clipping (`inf`/`nan` when a gradient is not finite)."""
    if isinstance(parameters, nn.Module):
        parameters = parameters.parameters()
    with_grad = [parameter for parameter in parameters if parameter.grad is not None]
    if not with_grad:
        return 0.0
    if not max_norm:
        gradients = [parameter.grad for parameter in with_grad if parameter.grad is not None]
        return float(torch.nn.utils.get_total_norm(gradients, norm_type=norm_type))
    total = torch.nn.utils.clip_grad_norm_(with_grad, max_norm=max_norm, norm_type=norm_type)
    return float(total)
