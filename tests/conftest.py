"""Shared fixtures: checkpoints (random weights in the official format) and images."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from masklet.config import PRESETS
from masklet.model.sam2 import SAM2Model
from oracle import oracle_available

# Helper modules whose asserts should report like the tests' own (imported later, by tests).
pytest.register_assert_rewrite("dropin_helpers", "dropin_notebooks")

PARITY_IMAGE_SIZE = 256


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if oracle_available():
        return
    skip = pytest.mark.skip(reason="oracle sam2==1.1.0 not installed (make setup installs it)")
    for item in items:
        if "parity" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread for a module (`pytest.mark.usefixtures("one_thread")`): on a busy
    2-core machine OpenMP barriers make tiny models many times slower with two. Restored
    afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("checkpoints")


@pytest.fixture(scope="session")
def random_checkpoint(checkpoint_dir: Path) -> Path:
    """A random-weights sam2.1_hiera_t checkpoint in the official format (seed 0, made once)."""
    path = checkpoint_dir / "masklet_random_sam2.1_hiera_t.pt"
    torch.manual_seed(0)
    torch.save({"model": SAM2Model(PRESETS["sam2.1_hiera_t"]).state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A deterministic 180x240 RGB uint8 image with smooth structure and texture."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:180, 0:240]
    base = np.stack(
        [128 + 100 * np.sin(xs / 17.0), 128 + 100 * np.cos(ys / 11.0), (xs + ys) % 256], axis=-1
    )
    base[60:120, 80:160] = (220, 40, 40)
    noisy = base + rng.normal(0, 8, base.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)
