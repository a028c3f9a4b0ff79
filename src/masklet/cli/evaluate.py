"""`masklet eval`: score predicted masks against ground truth (J, F, J&F).

    masklet eval --pred DIR --gt DIR [--format davis|sav] [--out DIR] [--all-frames]

Prints a per-video table; with ``--out`` also writes ``global_results.csv``,
``per_object_results.csv`` and ``results.json`` there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from masklet.eval.evaluator import DATASET_FORMATS, evaluate
from masklet.eval.report import format_table, write_reports


def run_eval(args: argparse.Namespace) -> int:
    """Handler of `masklet eval`; returns the exit code (0)."""
    result = evaluate(
        pred_root=Path(args.pred),
        gt_root=Path(args.gt),
        dataset_format=args.format,
        skip_first_last=not args.all_frames,
    )
    print(format_table(result))
    if args.out is not None:
        for path in write_reports(result, Path(args.out)):
            print(f"wrote {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `eval` command to the CLI's subparsers."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate predicted masks against ground truth (J, F, J&F)",
        description="Score a prediction folder against ground truth in DAVIS or SA-V layout.",
    )
    parser.add_argument("--pred", required=True, help="folder of predicted masks")
    parser.add_argument(
        "--gt", required=True, help="ground-truth folder (DAVIS: Annotations/480p or its root)"
    )
    parser.add_argument(
        "--format",
        choices=DATASET_FORMATS,
        default="davis",
        help="davis: <seq>/%%05d.png indexed PNGs; sav: <vid>/<obj>/%%05d.png binary PNGs",
    )
    parser.add_argument("--out", default=None, help="folder for CSV and JSON reports")
    parser.add_argument(
        "--all-frames",
        action="store_true",
        help="also score the first and last annotated frame (not the standard protocol)",
    )
    parser.set_defaults(handler=run_eval)
