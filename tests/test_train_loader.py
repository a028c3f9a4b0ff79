"""ClipLoader: workers read exactly the clips the training process would read itself."""

from __future__ import annotations

from pathlib import Path

import torch

from masklet.train.data import AugmentOptions, DavisSource, TrainingData
from masklet.train.distributed import ProcessGroup
from masklet.train.loader import ClipLoader
from masklet.train.types import TrainClip

DAVIS = Path(__file__).parent / "data" / "synthetic_davis"


def make_data() -> TrainingData:
    return TrainingData([(DavisSource(DAVIS), 1.0)], 32, 4, 2, 0.5, AugmentOptions(), seed=3)


def same(a: list[TrainClip], b: list[TrainClip]) -> bool:
    return len(a) == len(b) and all(
        x.name == y.name and torch.equal(x.images, y.images) and torch.equal(x.masks, y.masks)
        for x, y in zip(a, b)
    )


def test_workers_read_the_clips_of_each_micro_batch_in_order_and_after_a_jump() -> None:
    group = ProcessGroup(1, 2, torch.device("cpu"))  # rank 1 of 2: its slice of each batch
    direct = ClipLoader(make_data(), group, batch_size=2, accumulate=2)
    workers = ClipLoader(make_data(), group, batch_size=2, accumulate=2, num_workers=1)
    # In order, then a jump back (a resumed run), then on from there.
    wanted = [(0, 0), (0, 1), (1, 0), (1, 1), (0, 1), (1, 0)]
    try:
        for step, micro in wanted:
            expected, expected_indices = direct.clips(step, micro)
            clips, indices = workers.clips(step, micro)
            assert indices == expected_indices
            assert same(clips, expected), (step, micro)
    finally:
        workers.close()
    # A step is 8 clips (2 processes x 2 clips x 2 micro-batches): step 1 is clips 8..15,
    # its micro-batch 1 clips 12..15, and process 1 reads the second half.
    assert direct.clips(1, 1)[1] == [14, 15]
