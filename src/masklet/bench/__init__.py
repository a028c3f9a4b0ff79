"""Benchmarks: a deterministic synthetic VOS dataset built from real photos."""

from masklet.bench.config import SyntheticVideoConfig
from masklet.bench.photos import PhotoLibrary
from masklet.bench.synthetic import (
    SyntheticVideo,
    make_synthetic_dataset,
    make_synthetic_video,
    write_davis_video,
)

__all__ = [
    "PhotoLibrary",
    "SyntheticVideo",
    "SyntheticVideoConfig",
    "make_synthetic_dataset",
    "make_synthetic_video",
    "write_davis_video",
]
