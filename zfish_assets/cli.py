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


def _add_deploy(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "deploy",
        help="create or update the AWS resources (Glue database, crawlers, Glue 5.0 job, code in S3)",
        description="Converges: each resource is updated where it differs from the settings; a second run "
        "changes nothing. Settings: ZFISH_S3_BUCKET, ZFISH_GLUE_ROLE_ARN, ZFISH_AWS_REGION, ZFISH_GLUE_JOB_NAME, "
        "ZFISH_DATABASE, ZFISH_LAKE_PREFIX, ZFISH_AWS_ENDPOINT_URL; the policies also follow ZFISH_ENGINE, "
        "ZFISH_CRAWL_MODE, ZFISH_QUERY, ZFISH_ATHENA_WORKGROUP, ZFISH_ATHENA_OUTPUT.",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan and each field it changes, change nothing")
    parser.add_argument("--policy-out", type=Path, metavar="DIR",
                        help="also write the IAM policies here: deployer.json, runner.json, job-role.json "
                        "(and job-role-trust.json)")
    parser.set_defaults(run=_deploy, error=parser.error)


def _deploy(args: argparse.Namespace) -> int:
    import json

    from zfish_assets.deploy import DeploySettings, deploy
    from zfish_assets.policies import policies

    try:
        deploy_settings = DeploySettings.from_env()
    except ValueError as exc:
        args.error(str(exc))
    deploy(deploy_settings, dry_run=args.dry_run)
    documents = {name: json.dumps(policy, indent=2) + "\n" for name, policy in policies(deploy_settings).items()}
    if args.policy_out:
        args.policy_out.mkdir(parents=True, exist_ok=True)
        for name, text in documents.items():
            (args.policy_out / f"{name}.json").write_text(text)
        print(f"IAM policies written to {args.policy_out}/: " + ", ".join(f"{n}.json" for n in documents))
    else:
        for name, text in documents.items():
            print(f"IAM policy {name}:\n{text}")
    return 0


def _add_upload(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "upload",
        help="land a local folder's day (DIR/<table>/day=D/) into the configured lake, replacing that day",
        description="DIR is laid out as `zfish generate` writes it: observations/day=D/ and outcomes/day=D/.",
    )
    parser.add_argument("dir", type=Path, metavar="DIR", help="holds observations/ and/or outcomes/")
    parser.add_argument("--day", type=_day, required=True, metavar="YYYY-MM-DD", help="the day to upload")
    parser.set_defaults(run=_upload, error=parser.error)


def _upload(args: argparse.Namespace) -> int:
    import shutil

    from zfish_assets.deployments import resources_for
    from zfish_assets.resources.lake import RAW_TABLES

    day = args.day.isoformat()
    sources = {t: args.dir / t / f"day={day}" for t in RAW_TABLES if (args.dir / t / f"day={day}").is_dir()}
    if not sources:
        args.error(f"{args.dir} has no observations/day={day}/ or outcomes/day={day}/")
    lake = resources_for()["lake"].process_config_and_initialize()

    def copy_from(source: Path):
        return lambda folder: [shutil.copy2(p, folder / p.name) for p in sorted(source.iterdir()) if p.is_file()]

    for table, source in sources.items():
        landed = lake.land_day(table, day, copy_from(source))
        print(f"{table} day={day}: {landed.files} files, {landed.bytes:,} bytes -> {landed.uri}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zfish", description="Tools around the zfish data platform.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_generate(subparsers)
    _add_demo(subparsers)
    _add_deploy(subparsers)
    _add_upload(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `zfish` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
