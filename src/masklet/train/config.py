"""Training configuration: frozen dataclasses read from a TOML file.

    [model]      ModelSection       what to train and from which weights
    [data]       DataSection        clip shape and the weighted sources ([[data.sources]])
    [augment]    AugmentOptions     masklet.train.data
    [prompts]    PromptOptions      masklet.train.prompts
    [optimizer]  OptimizerOptions   masklet.train.optim
    [loss]       LossWeights        masklet.train.losses
    [train]      RunSection         steps, batch, precision, checkpoints, logging, validation

Every key of every table is a field below with its meaning (docs/training.md lists them all).
A key that is not one is a `ConfigError` naming it and the table; so is a value of the wrong
type. Missing keys take their defaults.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from masklet.config import canonical_preset_name
from masklet.errors import ConfigError
from masklet.train.data import AugmentOptions
from masklet.train.losses import LossWeights
from masklet.train.optim import OptimizerOptions
from masklet.train.prompts import PromptOptions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class ModelSection:
    """What is trained."""

    preset: str = "sam2.1_hiera_t"
    """Model preset (any name `masklet.build_sam2` accepts, e.g. "sam2.1_hiera_t")."""
    image_size: int = 512
    """Square input side in pixels (multiple of 32); clips are resized to it."""
    init: str = ""
    """Checkpoint to start from: an official `{"model": state_dict}` file, loaded strictly
    ("" = random initialisation). `--init` on the command line overrides it."""
    freeze: tuple[str, ...] = ()
    """Modules or parameters not trained: "image_encoder", "sam_prompt_encoder",
    "sam_mask_decoder", "memory_attention", "memory_encoder", or any parameter-name pattern
    (fnmatch, e.g. "image_encoder.trunk.blocks.0*")."""

    def __post_init__(self) -> None:
        canonical_preset_name(self.preset)  # raises ConfigError naming the known presets


@dataclass(frozen=True)
class SourceSection:
    """One dataset of the mixture (`[[data.sources]]`)."""

    kind: str
    """"davis", "mose", "sav", "sa1b", "coco" or "synthetic"."""
    path: str = ""
    """Dataset folder (or COCO annotation file); "" for synthetic (photos from `photos`, else
    $MASKLET_SAMPLES, else ~/.cache/masklet-samples). `--data` overrides the first source's."""
    weight: float = 1.0
    """Share of clips drawn from this source, relative to the others (> 0)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Reader options of the kind (see `masklet.train.data.open_source`), e.g.
    `options = { file_list = "train.txt" }`."""

    def __post_init__(self) -> None:
        if self.weight <= 0:
            raise ConfigError(f"[[data.sources]] weight must be > 0, got {self.weight}")


@dataclass(frozen=True)
class DataSection:
    """How clips are drawn."""

    num_frames: int = 8
    """Frames per clip (consecutive annotated frames); images give 1-frame clips."""
    max_objects: int = 3
    """Objects per clip at most (chosen among those visible on its first frame)."""
    reverse_time_prob: float = 0.5
    """Probability that a clip is played backwards."""
    num_workers: int = 0
    """Reader processes preparing the next clips (0 = read in the training process)."""
    sources: tuple[SourceSection, ...] = ()
    """The datasets (`[[data.sources]]` tables); at least one."""

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ConfigError(f"[data] num_frames must be >= 1, got {self.num_frames}")
        if self.max_objects < 1:
            raise ConfigError(f"[data] max_objects must be >= 1, got {self.max_objects}")
        if not 0 <= self.reverse_time_prob <= 1:
            raise ConfigError("[data] reverse_time_prob must be in [0, 1]")
        if self.num_workers < 0:
            raise ConfigError("[data] num_workers must be >= 0")


@dataclass(frozen=True)
class RunSection:
    """How long and how the loop runs, and what it writes."""

    steps: int = 1000
    """Optimizer steps in the whole run (`--steps` overrides)."""
    batch_size: int = 1
    """Clips per micro-batch per process."""
    accumulate: int = 1
    """Micro-batches per optimizer step (global batch = processes x batch_size x accumulate)."""
    precision: str = "auto"
    """"fp32", "bf16" (autocast) or "auto" (bf16 on a GPU that supports it, fp32 on CPU)."""
    device: str = "auto"
    """"cpu", "cuda" or "auto" (the process's GPU when there is one)."""
    seed: int = 0
    """Seeds the data, the prompts and the initialisation: a run is reproducible."""
    out_dir: str = "runs/train"
    """Where checkpoints, metrics.jsonl, loss.png and the final model go (`--out`)."""
    log_every: int = 10
    """Steps between metrics lines."""
    checkpoint_every: int = 100
    """Steps between training checkpoints (and the last step always)."""
    keep_checkpoints: int = 2
    """Training checkpoints kept (older ones deleted)."""
    validate_every: int = 0
    """Steps between validations on held-out synthetic videos (0 = only at the end)."""
    validation_videos: int = 4
    """Held-out synthetic videos (evaluation photo split) scored by J&F."""
    validation_frames: int = 16
    """Frames per validation video (at least 8)."""
    validation_photos: str = ""
    """Photo folder of the validation videos ("" = $MASKLET_SAMPLES, else
    ~/.cache/masklet-samples); only its evaluation split is used. Without photos, validation
    is skipped with a note."""
    progress: bool = True
    """Show a progress bar with the loss, clips/s and the ETA (rank 0)."""

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "accumulate", "log_every", "checkpoint_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"[train] {name} must be >= 1, got {getattr(self, name)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"[train] precision must be one of {', '.join(PRECISIONS)}")
        if self.device not in DEVICES:
            raise ConfigError(f"[train] device must be one of {', '.join(DEVICES)}")
        if self.keep_checkpoints < 1 or self.validate_every < 0 or self.validation_videos < 0:
            raise ConfigError(
                "[train] keep_checkpoints >= 1, validate_every >= 0, validation_videos >= 0"
            )
        if self.validation_frames < 8:
            raise ConfigError("[train] validation_frames must be >= 8")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run (one TOML file)."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    augment: AugmentOptions = field(default_factory=AugmentOptions)
    prompts: PromptOptions = field(default_factory=PromptOptions)
    optimizer: OptimizerOptions = field(default_factory=OptimizerOptions)
    loss: LossWeights = field(default_factory=LossWeights)
    train: RunSection = field(default_factory=RunSection)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in checkpoints and metrics)."""
        return dataclasses.asdict(self)


T = TypeVar("T")


def section_from_table(cls: type[T], table: Any, where: str) -> T:
    """Build dataclass `cls` from a TOML table, naming unknown keys and bad types."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {type(table).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = [key for key in table if key not in names]
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in {where}; known keys: {', '.join(names)}")
    values = {key: _converted(value, hints[key], f"{where} {key}") for key, value in table.items()}
    try:
        return cls(**values)
    except TypeError as error:  # a required key is missing
        raise ConfigError(f"{where}: {error}") from None


def _converted(value: Any, hint: Any, where: str) -> Any:
    """Check a TOML value against a field's type; lists become tuples where tuples are typed."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _converted(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: unexpected value {value!r}")
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        if item is None:
            return tuple(_converted(v, a, where) for v, a in zip(value, args, strict=True))
        return tuple(_converted(v, item, where) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {value!r}")
        return dict(value)
    return _scalar(value, hint, where)


def _scalar(value: Any, hint: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return section_from_table(hint, value, where)  # type: ignore[arg-type]
    if hint is Any:
        return value
    if hint is float and type(value) is int:
        return float(value)
    if hint in (int, float, str, bool) and type(value) is hint:
        return value
    if hint in (int, float, str, bool):
        raise ConfigError(f"{where} must be {hint.__name__}, got {value!r}")
    return value


_SECTIONS: dict[str, type[Any]] = typing.get_type_hints(TrainConfig)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """A `TrainConfig` from parsed TOML (tables by section name)."""
    unknown = [key for key in data if key not in _SECTIONS]
    if unknown:
        raise ConfigError(f"unknown table [{unknown[0]}]; known tables: {', '.join(_SECTIONS)}")
    sections = {
        name: section_from_table(cls, data.get(name, {}), f"[{name}]")
        for name, cls in _SECTIONS.items()
    }
    return TrainConfig(**sections)


def read_config(path: str | Path) -> TrainConfig:
    """Read a training config file (TOML)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"training config not found: {path}") from None
    except OSError as error:
        raise ConfigError(f"cannot read training config {path}: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    return config_from_dict(data)


def with_overrides(config: TrainConfig, **changes: Any) -> TrainConfig:
    """Apply command-line overrides: init, data (first source's path), steps, out_dir."""
    model, data, run = config.model, config.data, config.train
    if changes.get("init") is not None:
        model = dataclasses.replace(model, init=str(changes["init"]))
    if changes.get("data") is not None:
        if not data.sources:
            raise ConfigError("--data given but the config has no [[data.sources]]")
        first = dataclasses.replace(data.sources[0], path=str(changes["data"]))
        data = dataclasses.replace(data, sources=(first, *data.sources[1:]))
    if changes.get("steps") is not None:
        run = dataclasses.replace(run, steps=int(changes["steps"]))
    if changes.get("out_dir") is not None:
        run = dataclasses.replace(run, out_dir=str(changes["out_dir"]))
    return dataclasses.replace(config, model=model, data=data, train=run)
