"""`from_pretrained` support: predictors ask for an official checkpoint by name, and the layer
that resolves, downloads and builds (`masklet.build`, above the predictors in DESIGN §13)
answers. `masklet.build` registers its loader here when it is imported (importing `masklet`
does), so this module never imports it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from masklet.errors import MaskletError

Predictor = TypeVar("Predictor")

#: `(predictor_class, model_id, keywords) -> predictor instance`.
PretrainedLoader = Callable[[type, str, dict[str, Any]], Any]

_loaders: list[PretrainedLoader] = []


def register_pretrained_loader(loader: PretrainedLoader) -> None:
    """Install the function that builds predictors on official checkpoints (one at a time)."""
    _loaders[:] = [loader]


def load_pretrained(
    predictor_class: type[Predictor], model_id: str, kwargs: dict[str, Any]
) -> Predictor:
    """An instance of `predictor_class` on the official checkpoint `model_id` names, with
    `kwargs` split between the model builder and the predictor by the registered loader."""
    if not _loaders:
        raise MaskletError(
            "from_pretrained needs masklet's builders: `import masklet` (or masklet.build) first"
        )
    predictor = _loaders[0](predictor_class, model_id, kwargs)
    if not isinstance(predictor, predictor_class):
        raise TypeError(f"the pretrained loader returned a {type(predictor).__name__}")
    return predictor
