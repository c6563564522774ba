"""The `zfish` subcommands that change the AWS deployment or the lake: `deploy` and `upload`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zfish_assets.dagster_names import RAW_TABLES
from zfish_assets.tools import arguments


def add_deploy(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "deploy",
        help="create or update the AWS resources (Glue database, crawlers, Glue job, code in S3)",
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

    from zfish_assets.aws_errors import denied, explain
    from zfish_assets.tools.deploy import DeploySettings, deploy
    from zfish_assets.tools.policies import policies

    try:  # a bad setting (the role's ARN included) is refused before anything changes
        deploy_settings = DeploySettings.from_env()
        documents = {name: json.dumps(policy, indent=2) + "\n" for name, policy in policies(deploy_settings).items()}
    except ValueError as exc:
        args.error(str(exc))
    changed: list[str] = []
    if args.policy_out:  # first: a folder that cannot take them is refused before the account changes
        try:
            args.policy_out.mkdir(parents=True, exist_ok=True)
            for name, text in documents.items():
                written = args.policy_out / f"{name}.json"
                if written.is_file() and written.read_text() != text:
                    changed.append(written.name)
                (args.policy_out / f"{name}.json").write_text(text)
        except OSError as exc:
            args.error(f"--policy-out {args.policy_out}: cannot write the policies there ({exc.strerror or exc})")
    try:
        deploy(deploy_settings, dry_run=args.dry_run)
    except Exception as exc:
        # a closed or wrong endpoint, a missing bucket: one line naming the setting; a call the identity may not make
        message = explain(exc) or denied(exc, "deployer.json")
        if message is None:
            raise
        print(f"zfish deploy: {message}", file=sys.stderr)
        return 1
    if args.policy_out:
        print(f"IAM policies written to {args.policy_out}/: " + ", ".join(f"{n}.json" for n in documents))
        if changed:  # deploy changes no IAM: a setting that moved a grant (ZFISH_ATHENA_OUTPUT) needs them applied
            print(f"changed since they were last written there: {', '.join(changed)}: apply them to their "
                  "principals (zfish deploy does not change IAM)")
    else:
        for name, text in documents.items():
            print(f"IAM policy {name}:\n{text}")
    return 0


def add_upload(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "upload",
        help="land a local folder's day (DIR/<table>/day=D/) into the configured lake, replacing that day",
        description="DIR is laid out as `zfish generate` writes it: observations/day=D/ and outcomes/day=D/.",
    )
    parser.add_argument("dir", type=Path, metavar="DIR", help="holds observations/ and/or outcomes/")
    parser.add_argument("--day", type=arguments.day, required=True, metavar="YYYY-MM-DD", help="the day to upload")
    parser.set_defaults(run=_upload, error=parser.error)


def _upload(args: argparse.Namespace) -> int:
    """Land each table's day, with progress over the files copied and then stored in the lake."""
    import shutil

    from zfish_assets.deployments import resources_for
    from zfish_assets.tools.progress import Progress
    from zfish_assets.resources.lake import is_day_folder
    from glue_scripts.zfish_etl.write_errors import writing
    from zfish_assets.tools.upload import plan_upload

    day = args.day.isoformat()
    try:  # every entry's fate, and the day's partition, before anything lands
        uploads = plan_upload(args.dir, day)
    except ValueError as exc:
        args.error(str(exc))
    with resources_for()["lake"].process_config_and_initialize_cm() as lake:
        for table in RAW_TABLES:
            misnamed = sorted(p.name for p in (args.dir / table).glob("*") if not is_day_folder(p.name))
            if misnamed:
                print(f"zfish: {args.dir / table} holds {', '.join(misnamed)}: not day=YYYY-MM-DD folders, "
                      "so not uploaded (rename them to the day they hold)", file=sys.stderr)
        for table, source, files in ((u.table, u.source, u.files) for u in uploads):

            def copy(folder: Path, files: list[Path] = files, table: str = table, source: Path = source) -> None:
                with Progress(f"{table} day={day}: copied", len(files), "files") as bar:
                    for path in files:
                        target = folder / path.relative_to(source)
                        with writing(target):  # copy2 would name the source
                            target.parent.mkdir(parents=True, exist_ok=True)
                            shutil.copy2(path, target)
                        bar.advance()

            with Progress(f"{table} day={day}: stored in {lake.uri(table)}", len(files), "files") as stored:
                landed = lake.land_day(table, day, copy, stored=stored.advance)
            print(f"{table} day={day}: {landed.files} files, {landed.bytes:,} bytes -> {landed.uri}")
        for table in sorted(set(RAW_TABLES) - {u.table for u in uploads}):
            _say_left(lake, args.dir, table, day)
    return 0


def _say_left(lake, folder: Path, table: str, day: str) -> None:
    """A table the folder has no day of is left as the lake holds it: said, so that nobody takes the upload for
    a retraction of that table's day (or a retraction for done), with how to retract it."""
    held = [o for o in lake.list_day(table, day) if o.is_data()]
    now = f"it keeps its {len(held)} data files at {lake.day_uri(table, day)}" if held else "it holds none there"
    print(f"{table} day={day}: no {folder / table / f'day={day}'} folder, so the lake's day is left as it is ({now}); "
          f"to retract it, upload an empty {table}/day={day}/ folder")
