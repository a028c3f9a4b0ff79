"""Command-line interface: `masklet <command> ...` (also `python -m masklet`).

Each command lives in its own module exposing `register(subparsers)`, which adds a
subparser whose `handler` default is a function `(argparse.Namespace) -> int`.
User errors print one line `masklet: error: ...` and exit with code 2; `--debug` shows
tracebacks. User errors are `MaskletError`, plus the file-system and decoder errors that only a
user's file or disk can cause (`OSError`, FFmpeg's `av.error.FFmpegError`, Pillow's
`DecompressionBombError`), which get the file name when they carry one. Other exceptions are
bugs and keep their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import av
from PIL import Image

from masklet import __version__
from masklet.errors import MaskletError
from masklet.io.files import describe_os_error

COMMAND_MODULES: tuple[str, ...] = (
    "masklet.cli.demo",
    "masklet.cli.weights",
    "masklet.cli.evaluate",
    "masklet.cli.bench",
    "masklet.cli.segment",
    "masklet.cli.track",
    "masklet.cli.info",
    "masklet.cli.auto",
    "masklet.cli.train",
)


#: Exceptions that a user's file or disk causes (not bugs): one line, exit code 2.
FILE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    av.error.FFmpegError,
    Image.DecompressionBombError,
)


def describe_file_error(error: BaseException) -> str:
    """One line for a `FILE_ERRORS` exception: the file(s) it names, then the problem."""
    names = [getattr(error, "filename", None), getattr(error, "filename2", None)]
    files = " -> ".join(str(name) for name in names if name)
    problem = describe_os_error(error)
    return f"{files}: {problem}" if files else problem


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
        print(f"masklet: error: {_one_line(str(error))}", file=sys.stderr)
        return 2
    except FILE_ERRORS as error:
        if args.debug:
            raise
        print(f"masklet: error: {describe_file_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("masklet: interrupted", file=sys.stderr)
        return 130


def _one_line(message: str) -> str:
    """The message on one line (a multi-line message is joined with "; ")."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())
