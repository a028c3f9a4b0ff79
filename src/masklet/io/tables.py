"""CSV tables, written atomically (`masklet.io.files`): complete or absent, one-line errors."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from masklet.io.files import AtomicFile


def write_csv(path: str | Path, rows: Iterable[Sequence[object]]) -> Path:
    """Write `rows` (the header first, then one sequence of cells per row; cells are written
    with `str`) as a CSV file (`csv` module defaults: commas, `\\r\\n` line ends). Parent
    folders are created. Returns the path."""
    with AtomicFile(path) as temporary, temporary.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return Path(path)
