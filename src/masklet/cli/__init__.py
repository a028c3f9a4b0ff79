"""Command-line interface: `masklet <command> ...` (also `python -m masklet`).

Each command lives in its own module exposing `register(subparsers)`, which adds a
subparser whose `handler` default is a function `(argparse.Namespace) -> int`.
User errors (`MaskletError`) print one line and exit with code 2; `--debug` shows tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from masklet import __version__
from masklet.errors import MaskletError

COMMAND_MODULES: tuple[str, ...] = (
    "masklet.cli.demo",
    "masklet.cli.weights",
    "masklet.cli.evaluate",
    "masklet.cli.bench",
    "masklet.cli.segment",
    "masklet.cli.track",
    "masklet.cli.info",
    "masklet.cli.auto",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="masklet", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"masklet {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except MaskletError as error:
        if args.debug:
            raise
        print(f"masklet: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("masklet: interrupted", file=sys.stderr)
        return 130
