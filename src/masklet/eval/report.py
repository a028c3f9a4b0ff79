"""Reports of an ``EvaluationResult``: a text table, CSV files and a JSON file (written
atomically through ``masklet.io``).

All scores are fractions in [0, 1] (not percentages). NaN (no evaluated frame) is written
as an empty CSV cell, ``null`` in JSON and ``-`` in the table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from masklet.eval.aggregate import EvaluationResult, MetricStatistics, ObjectScores, VideoScores
from masklet.io.files import write_json as write_json_file
from masklet.io.tables import write_csv

GLOBAL_CSV = "global_results.csv"
PER_OBJECT_CSV = "per_object_results.csv"
JSON_FILE = "results.json"
_MAX_MISSING_LISTED = 5


def _number(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def _cell(value: float, width: int = 7) -> str:
    return f"{'-':>{width}}" if math.isnan(value) else f"{value:>{width}.3f}"


def format_table(result: EvaluationResult) -> str:
    """Format per-video and overall J, F and J&F (means over objects) as a text table."""
    name_width = max([len("Overall"), *(len(video.name) for video in result.videos)])
    header = f"{'Video':<{name_width}}  {'Objects':>7}{'J':>7}{'F':>7}{'J&F':>7}"
    lines = [header, "-" * len(header)]
    for video in result.videos:
        lines.append(
            f"{video.name:<{name_width}}  {len(video.objects):>7}"
            f"{_cell(video.j.mean)}{_cell(video.f.mean)}{_cell(video.j_and_f)}"
        )
    lines.append("-" * len(header))
    lines.append(
        f"{'Overall':<{name_width}}  {len(result.objects):>7}"
        f"{_cell(result.j.mean)}{_cell(result.f.mean)}{_cell(result.j_and_f)}"
    )
    j, f = result.j, result.f
    lines.append(
        f"J recall {_cell(j.recall, 0)}  J decay {_cell(j.decay, 0)}  "
        f"F recall {_cell(f.recall, 0)}  F decay {_cell(f.decay, 0)}"
    )
    missing = result.missing_files
    if missing:
        listed = ", ".join(missing[:_MAX_MISSING_LISTED])
        more = "" if len(missing) <= _MAX_MISSING_LISTED else ", ..."
        lines.append(f"Missing prediction files (scored as empty): {len(missing)}: {listed}{more}")
    return "\n".join(lines)


def _csv_number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6f}"


def _statistics_cells(j: MetricStatistics, f: MetricStatistics, j_and_f: float) -> list[str]:
    values = [j_and_f, j.mean, j.recall, j.decay, f.mean, f.recall, f.decay]
    return [_csv_number(value) for value in values]


_STAT_COLUMNS = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]


def write_global_csv(result: EvaluationResult, path: str | Path) -> Path:
    """Write one row of overall statistics (DAVIS ``global_results`` columns)."""
    cells = _statistics_cells(result.j, result.f, result.j_and_f)
    header = ["Objects", *_STAT_COLUMNS, "Missing-Files"]
    return write_csv(path, [header, [len(result.objects), *cells, len(result.missing_files)]])


def write_per_object_csv(result: EvaluationResult, path: str | Path) -> Path:
    """Write one row per (video, object) with J and F mean, recall and decay."""
    rows: list[list[object]] = [["Video", "Object", "Frames", *_STAT_COLUMNS]]
    for video in result.videos:
        for obj in video.objects:
            cells = _statistics_cells(obj.j, obj.f, obj.j_and_f)
            rows.append([video.name, obj.object_id, len(obj.frames), *cells])
    return write_csv(path, rows)


def _statistics_json(stats: MetricStatistics) -> dict[str, float | None]:
    return {
        "mean": _number(stats.mean),
        "recall": _number(stats.recall),
        "decay": _number(stats.decay),
    }


def _object_json(obj: ObjectScores) -> dict[str, Any]:
    return {
        "object_id": obj.object_id,
        "J": _statistics_json(obj.j),
        "F": _statistics_json(obj.f),
        "J&F": _number(obj.j_and_f),
        "frames": list(obj.frames),
        "J_per_frame": [_number(value) for value in obj.j_per_frame],
        "F_per_frame": [_number(value) for value in obj.f_per_frame],
    }


def _video_json(video: VideoScores) -> dict[str, Any]:
    return {
        "name": video.name,
        "J": _statistics_json(video.j),
        "F": _statistics_json(video.f),
        "J&F": _number(video.j_and_f),
        "missing_files": list(video.missing_files),
        "objects": [_object_json(obj) for obj in video.objects],
    }


def result_to_dict(result: EvaluationResult) -> dict[str, Any]:
    """JSON-ready dictionary with overall, per-video, per-object and per-frame scores."""
    return {
        "format": result.dataset_format,
        "skip_first_last": result.skip_first_last,
        "num_objects": len(result.objects),
        "J": _statistics_json(result.j),
        "F": _statistics_json(result.f),
        "J&F": _number(result.j_and_f),
        "missing_files": list(result.missing_files),
        "videos": [_video_json(video) for video in result.videos],
    }


def write_json(result: EvaluationResult, path: str | Path) -> Path:
    """Write ``result_to_dict(result)`` as indented JSON."""
    return write_json_file(path, result_to_dict(result), indent=2)


def write_reports(result: EvaluationResult, out_dir: str | Path) -> list[Path]:
    """Write ``global_results.csv``, ``per_object_results.csv`` and ``results.json``.

    Creates ``out_dir`` when needed and returns the written paths.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_global_csv(result, folder / GLOBAL_CSV),
        write_per_object_csv(result, folder / PER_OBJECT_CSV),
        write_json(result, folder / JSON_FILE),
    ]
