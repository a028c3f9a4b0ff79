"""Video object segmentation evaluation: J (region), F (boundary), J&F, DAVIS / SA-V layouts."""

from masklet.eval.aggregate import (
    EvaluationResult,
    MetricStatistics,
    ObjectScores,
    VideoScores,
    frame_statistics,
)
from masklet.eval.evaluator import evaluate, evaluate_davis, evaluate_sav, read_label_png
from masklet.eval.metrics import (
    boundary_f_measure,
    boundary_map,
    boundary_precision_recall,
    boundary_tolerance,
    dilate_disk,
    region_similarity,
)
from masklet.eval.report import format_table, result_to_dict, write_json, write_reports

__all__ = [
    "EvaluationResult",
    "MetricStatistics",
    "ObjectScores",
    "VideoScores",
    "boundary_f_measure",
    "boundary_map",
    "boundary_precision_recall",
    "boundary_tolerance",
    "dilate_disk",
    "evaluate",
    "evaluate_davis",
    "evaluate_sav",
    "format_table",
    "frame_statistics",
    "read_label_png",
    "region_similarity",
    "result_to_dict",
    "write_json",
    "write_reports",
]
