"""`ClipLoader`: the clips of each micro-batch of this process, optionally read ahead.

With `num_workers = 0` a micro-batch's clips are read when the step asks for them. With
workers, a `torch.utils.data.DataLoader` reads the next micro-batches in `num_workers`
processes while the model trains on the current one. The clips are the same either way
(`TrainingData.sample` depends on the index only), so workers change the speed of a run,
never its result.

Workers are started with "spawn", not "fork": a process forked after torch has started its
thread pools can deadlock in the child (seen with the default context on Linux).
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import DataLoader, Dataset, Sampler

from masklet.train.data import TrainingData
from masklet.train.distributed import ProcessGroup, sample_indices
from masklet.train.types import TrainClip

#: Micro-batches each worker keeps read ahead.
PREFETCH_PER_WORKER = 2
#: Upper end of the position sampler (a run never gets near it).
MAX_POSITIONS = 2**62


class _MicroBatches(Dataset[list[TrainClip]]):
    """Item `position` = the clips of micro-batch `position % accumulate` of step
    `position // accumulate` on this process."""

    def __init__(
        self, data: TrainingData, group: ProcessGroup, batch_size: int, accumulate: int
    ) -> None:
        self.data = data
        self.group = group
        self.batch_size = batch_size
        self.accumulate = accumulate

    def indices(self, position: int) -> list[int]:
        step, micro = divmod(position, self.accumulate)
        return sample_indices(step, micro, self.group, self.batch_size, self.accumulate)

    def __getitem__(self, position: int) -> list[TrainClip]:
        return [self.data.sample(index) for index in self.indices(position)]


class _From(Sampler[int]):
    """Positions `first, first + 1, ...`."""

    def __init__(self, first: int) -> None:
        self.first = first

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, MAX_POSITIONS))


def _keep_list(batch: list[TrainClip]) -> list[TrainClip]:
    # Items are already lists of clips (their T and K differ): nothing to collate.
    return batch


class ClipLoader:
    """The clips of (step, micro-batch) for this process.

    Args:
        data: the training data.
        group: this process's place in the run (its slice of every global batch).
        batch_size: clips per micro-batch per process.
        accumulate: micro-batches per step.
        num_workers: reader processes (0 = read in this process, when asked).
    """

    def __init__(
        self,
        data: TrainingData,
        group: ProcessGroup,
        batch_size: int,
        accumulate: int,
        num_workers: int = 0,
    ) -> None:
        self.batches = _MicroBatches(data, group, batch_size, accumulate)
        self.num_workers = num_workers
        self._iterator: Iterator[list[TrainClip]] | None = None
        self._next_position = -1

    def clips(self, step: int, micro: int) -> tuple[list[TrainClip], list[int]]:
        """The clips of micro-batch `micro` of `step` and their sample indices."""
        position = step * self.batches.accumulate + micro
        indices = self.batches.indices(position)
        if self.num_workers == 0:
            return self.batches[position], indices
        if self._iterator is None or position != self._next_position:
            self._iterator = self._start(position)  # first call, resume, or a jump
        self._next_position = position + 1
        return next(self._iterator), indices

    def _start(self, position: int) -> Iterator[list[TrainClip]]:
        self.close()
        loader = DataLoader(
            self.batches,
            batch_size=None,
            sampler=_From(position),
            num_workers=self.num_workers,
            collate_fn=_keep_list,
            prefetch_factor=PREFETCH_PER_WORKER,
            multiprocessing_context="spawn",
        )
        return iter(loader)

    def close(self) -> None:
        """Stop the workers (if any); a later `clips` starts new ones."""
        self._iterator = None  # a DataLoader iterator stops its workers when dropped
