"""The `zfish` command: one subcommand per task around the platform (`generate`, `demo`).

Each subcommand has an `_add_<name>` that declares its flags and sets `run` (the function that runs
it, taking the parsed args) and `error` (its parser's usage error), so a new one is two functions and
one line in `_parser`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import date
from pathlib import Path

from zfish_assets.settings import parse_day
from zfish_assets.synthetic import SimSettings, generate


def _day(value: str) -> date:
    """argparse type for `YYYY-MM-DD`: a bad day becomes a usage error (exit status 2)."""
    try:
        return parse_day(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_generate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write simulated raw observations and outcomes for a range of days",
        description="Flags left out take their ZFISH_* environment value, else the simulator default.",
    )
    day, count = "YYYY-MM-DD", "N"
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="gets observations/ and outcomes/")
    parser.add_argument("--start", type=_day, required=True, metavar=day, help="first day")
    parser.add_argument("--end", type=_day, required=True, metavar=day, help="last day (included)")
    parser.add_argument("--fish-per-day", type=int, metavar=count, help="new fish imaged each day")
    parser.add_argument("--images-per-fish", type=int, metavar=count, help="photos of each fish")
    parser.add_argument("--label-delay-days", type=int, metavar=count, help="days until a fish's label arrives")
    parser.add_argument("--seed", type=int, metavar=count, help="random seed")
    parser.add_argument("--workers", type=int, metavar=count, help="writer processes (default: one per core)")
    parser.set_defaults(run=_generate, error=parser.error)


def _generate(args: argparse.Namespace) -> int:
    """Generate the days and print what was written and how fast (file creation is the bound)."""
    flags = ("fish_per_day", "images_per_fish", "label_delay_days", "seed")
    overrides = {name: getattr(args, name) for name in flags if getattr(args, name) is not None}
    try:
        sim = dataclasses.replace(SimSettings.from_env(), **overrides)
        began = time.perf_counter()
        summary = generate(sim, args.out, args.start, args.end, workers=args.workers)
    except ValueError as exc:  # bad settings, flags or range: a usage error, exit status 2
        args.error(str(exc))
    seconds = time.perf_counter() - began
    print(f"generated {args.start}..{args.end} into {args.out}")
    for label, value in (
        ("days", summary["days"]),
        ("observations", summary["observations"]),
        ("outcomes", summary["outcomes"]),
        ("files", summary["files"]),
    ):
        print(f"  {label:<13}{value:>12,}")
    print(f"  {'seconds':<13}{seconds:>12.2f}")
    print(f"  {'files/s':<13}{summary['files'] / seconds:>12,.0f}")
    return 0


def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the walkthrough's two evenings on the local deployment (60, then 75 joined rows)",
        description="Writes into ZFISH_DATA_DIR (default ./.zfish); runs show in `dagster dev` afterwards.",
    )
    parser.set_defaults(run=_demo, error=parser.error)


def _demo(args: argparse.Namespace) -> int:
    from zfish_assets.demo import run_demo

    return run_demo()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zfish", description="Tools around the zfish data platform.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_generate(subparsers)
    _add_demo(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `zfish` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
