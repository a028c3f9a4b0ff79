"""`masklet weights list | download NAME... | verify [NAME...] | ship MODEL_PT ...`: manage
official checkpoints and the weights shipped in the package.

Names are preset names (`sam2.1_hiera_t`), file stems (`sam2.1_hiera_tiny`), file names or
Hugging Face ids (`facebook/sam2.1-hiera-tiny`); `all` means every registry entry.

`ship` turns a training run's `model.pt` into the package's `masklet_nano.pt` (float16) and
its manifest `masklet_nano.json` (SHA-256, size, provenance); docs/weights.md.
"""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from masklet import weights


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add `weights` with its `list`, `download` and `verify` subcommands."""
    parser = subparsers.add_parser(
        "weights", help="list, download and verify the official checkpoints", description=__doc__
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="cache directory (default: $MASKLET_HOME or the platform cache dir)",
    )
    actions = parser.add_subparsers(dest="weights_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="show every checkpoint and whether it is cached")
    listing.set_defaults(handler=run_list)

    download = actions.add_parser("download", help="download checkpoints into the cache")
    download.add_argument("names", nargs="+", metavar="NAME", help="checkpoint name or `all`")
    download.add_argument("--force", action="store_true", help="download even if cached")
    download.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    download.set_defaults(handler=run_download)

    check = actions.add_parser("verify", help="check cached files' sizes and SHA-256 digests")
    check.add_argument("names", nargs="*", metavar="NAME", help="default: every cached file")
    check.set_defaults(handler=run_verify)
    _register_ship(actions)


def _register_ship(actions: argparse._SubParsersAction[Any]) -> None:
    ship = actions.add_parser(
        "ship",
        help="make the package's shipped weights (float16 + manifest) from a model.pt",
        description="Write the package's assets/<name>.pt (float16) and <name>.json "
        "(SHA-256, size, provenance) from a float32 official-format file, e.g. a training "
        "run's model.pt. Run it in the source checkout (editable install), then commit both.",
    )
    ship.add_argument("source", type=Path, help="official-format .pt file (float32)")
    ship.add_argument(
        "--name", default=weights.DEFAULT_SHIPPED_MODEL, help="shipped preset (default %(default)s)"
    )
    ship.add_argument("--steps", type=int, required=True, help="training steps (0: untrained)")
    ship.add_argument("--train-hours", type=float, required=True, help="hours of training")
    ship.add_argument("--config", required=True, help="the training config used")
    ship.add_argument("--note", required=True, help="data, hardware, caveats (free text)")
    ship.add_argument("--date", default=None, help="ISO date (default: today, UTC)")
    ship.add_argument(
        "--out-dir", type=Path, default=None, help="folder (default: the package's assets)"
    )
    ship.set_defaults(handler=run_ship)


def _entries(names: Sequence[str]) -> list[weights.WeightsEntry]:
    """Registry entries for the given names (`all` expands to every entry), without repeats."""
    if any(name.lower() == "all" for name in names):
        return list(weights.WEIGHTS.values())
    entries = [weights.get_weights(name) for name in names]
    return list(dict.fromkeys(entries))


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def run_list(args: argparse.Namespace) -> int:
    """Print one row per checkpoint: name, size, cached flag, path."""
    statuses = weights.list_weights(args.cache_dir)
    print(f"{'NAME':<16} {'SIZE':>9}  {'CACHED':<12} PATH")
    for status in statuses:
        if status.cached:
            cached = "yes"
        elif status.cached_size is not None:
            cached = "wrong size"
        elif status.partial_bytes:
            cached = f"partial {100 * status.partial_bytes // status.size}%"
        else:
            cached = "no"
        print(f"{status.name:<16} {_megabytes(status.size):>9}  {cached:<12} {status.path}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Download each named checkpoint (skipping cached ones unless --force); print its path."""
    for entry in _entries(args.names):
        cached = weights.cached_path(entry, args.cache_dir)
        if cached is not None and not args.force and cached.stat().st_size == entry.size:
            print(f"{entry.name}: already cached at {cached}")
            continue
        path = weights.download(
            entry, args.cache_dir, progress=not args.no_progress, force=args.force
        )
        print(f"{entry.name}: downloaded to {path}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Check size and digest of the named (default: all cached) files; exit 1 if any fails."""
    if args.names:
        entries = _entries(args.names)
    else:
        entries = [
            entry
            for entry in weights.WEIGHTS.values()
            if weights.cached_path(entry, args.cache_dir) is not None
        ]
        if not entries:
            print(f"no checkpoints cached in {weights.resolve_cache_dir(args.cache_dir)}")
            return 0
    failures = 0
    for entry in entries:
        result = weights.verify(entry, args.cache_dir)
        if result.problem is not None:
            failures += 1
            print(f"FAILED {entry.name}: {result.problem}")
        elif result.newly_recorded:
            print(f"ok     {entry.name}: size matches; SHA-256 {result.actual_sha256} recorded")
        else:
            print(f"ok     {entry.name}: size and SHA-256 match ({result.path})")
    return 1 if failures else 0


def run_ship(args: argparse.Namespace) -> int:
    """Write the shipped weights and their manifest; print what was written."""
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    provenance = weights.Provenance(
        steps=args.steps,
        train_hours=args.train_hours,
        config=args.config,
        date=args.date or today,
        note=args.note,
    )
    manifest = weights.write_shipped_weights(
        args.source, provenance, name=args.name, folder=args.out_dir
    )
    folder = args.out_dir or weights.shipped.assets_dir()
    print(
        f"{manifest.name}: wrote {folder / manifest.file_name} ({manifest.bytes} bytes, "
        f"{manifest.dtype}, SHA-256 {manifest.sha256}) and {manifest.name}.json"
    )
    return 0
