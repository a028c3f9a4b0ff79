"""video_predictor_example.ipynb (plus `add_new_mask`) on masklet with only the imports changed,
and (`parity`) the same calls on the reference with the same weights; and the notebooks under
bfloat16 autocast, on CPU and (where there is one) on CUDA. See dropin_helpers for the set-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import dropin_helpers as dropin
from dropin_helpers import (
    IMAGE_SIZE,
    NUM_FRAMES,
    PROPAGATED_TOLERANCE,
    SCORE_TOLERANCE,
    assert_arrays_close,
    masklet_api,
    oracle_api,
    oracle_extension,
)
from dropin_notebooks import automatic_notebook, image_notebook, video_notebook

pytestmark = pytest.mark.usefixtures("one_thread")

# The shared module fixtures (dropin_helpers).
checkpoint, images, video_dir = dropin.checkpoint, dropin.images, dropin.video_dir


@pytest.fixture(scope="module")
def video_ours(checkpoint: Path, video_dir: Path) -> list[tuple[str, Any]]:
    return video_notebook(masklet_api(), checkpoint, video_dir)


def test_video_notebook_runs(video_ours: list[tuple[str, Any]]) -> None:
    names = [name for name, _ in video_ours]
    assert names.count("propagate three objects") == NUM_FRAMES
    last_ids = video_ours[-1][1][1]
    assert last_ids == [2, 3, 5]
    logits = video_ours[-1][1][2]
    assert logits.shape == (3, 1, IMAGE_SIZE, IMAGE_SIZE) and logits.dtype == np.float32


def _check_autocast_results(image: dict[str, Any], video: list[tuple[str, Any]]) -> None:
    masks, scores, logits = image["one click"]
    assert masks.dtype == np.bool_ and np.isfinite(scores).all() and np.isfinite(logits).all()
    assert [name for name, _ in video].count("propagate three objects") == NUM_FRAMES
    assert all(np.isfinite(step[2]).all() for _, step in video)


def test_notebooks_under_cpu_bfloat16_autocast(
    checkpoint: Path, images: list[np.ndarray], video_dir: Path
) -> None:
    """The notebooks run everything inside `torch.autocast(device_type, dtype=torch.bfloat16)`
    (on CUDA); on CPU the same context must work too."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        image = image_notebook(masklet_api(), checkpoint, images)
        video = video_notebook(masklet_api(), checkpoint, video_dir)
    _check_autocast_results(image, video)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_notebooks_on_cuda_as_the_notebooks_run_them(
    checkpoint: Path, images: list[np.ndarray], video_dir: Path
) -> None:
    """`device = torch.device("cuda")` and bfloat16 autocast, the notebooks' GPU set-up."""
    cuda = torch.device("cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        image = image_notebook(masklet_api(), checkpoint, images, cuda)
        video = video_notebook(masklet_api(), checkpoint, video_dir, cuda)
        masks, _, _ = automatic_notebook(masklet_api(), checkpoint, images[0], cuda)[:3]
    _check_autocast_results(image, video)
    assert isinstance(masks, list)


# ---------------------------------------------------------------- parity with the oracle


@pytest.mark.parity
def test_video_notebook_matches_the_reference(
    video_ours: list[tuple[str, Any]], checkpoint: Path, video_dir: Path
) -> None:
    with oracle_extension():
        theirs = video_notebook(oracle_api(), checkpoint, video_dir)
    assert [name for name, _ in video_ours] == [name for name, _ in theirs]
    for (name, (frame, ids, ours)), (_, (their_frame, their_ids, reference)) in zip(
        video_ours, theirs
    ):
        assert (frame, ids) == (their_frame, their_ids), name
        tolerance = PROPAGATED_TOLERANCE if name.startswith("propagate") else SCORE_TOLERANCE
        assert_arrays_close(ours, reference, name, tolerance)
        assert_arrays_close(ours > 0, reference > 0, name, tolerance)
