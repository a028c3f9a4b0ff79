"""Golden tests on real official checkpoints (tier 3). They run only when the checkpoints are
present: set MASKLET_CHECKPOINT_DIR to a folder holding e.g. `sam2.1_hiera_tiny.pt` and run
`pytest -m golden`. Nothing here can run offline without the files, so they are skipped then.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import masklet

pytestmark = pytest.mark.golden
FILES = {
    "sam2.1_hiera_t": "sam2.1_hiera_tiny.pt",
    "sam2_hiera_t": "sam2_hiera_tiny.pt",
    "sam2.1_hiera_b+": "sam2.1_hiera_base_plus.pt",
}


def checkpoint(preset: str) -> Path:
    folder = os.environ.get("MASKLET_CHECKPOINT_DIR")
    path = Path(folder) / FILES[preset] if folder else None
    if path is None or not path.is_file():
        pytest.skip(f"{FILES[preset]} not in MASKLET_CHECKPOINT_DIR")
    return path


def cat_photo() -> np.ndarray:
    with resources.as_file(resources.files("masklet") / "assets" / "chelsea.jpg") as path:
        return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("preset", list(FILES))
def test_click_on_the_cat_gives_a_confident_compact_mask(preset: str) -> None:
    model = masklet.build_sam2(preset, checkpoint=checkpoint(preset))
    predictor = masklet.SAM2ImagePredictor(model)
    image = cat_photo()
    predictor.set_image(image)
    masks, scores, _ = predictor.predict(
        point_coords=np.array([[180, 150]]), point_labels=np.array([1])
    )
    best = masks[np.argmax(scores)]
    assert scores.max() > 0.7
    assert best[150, 180], "the clicked pixel belongs to the mask"
    assert 0.05 < best.mean() < 0.8, "the cat, not a speck or the whole photo"


def test_tracking_keeps_the_cat_on_a_panned_sequence() -> None:
    predictor = masklet.build_sam2_video_predictor(
        "sam2.1_hiera_t", checkpoint=checkpoint("sam2.1_hiera_t")
    )
    image = cat_photo()
    frames = [np.ascontiguousarray(np.roll(image, 4 * i, axis=1)) for i in range(8)]
    state = predictor.init_state(frames)
    predictor.add_new_points_or_box(state, 0, 1, points=[[180, 150]], labels=[1])
    areas = [
        float((logits > 0).float().mean()) for _, _, logits in predictor.propagate_in_video(state)
    ]
    assert min(areas) > 0.5 * areas[0] and max(areas) < 1.5 * areas[0]
