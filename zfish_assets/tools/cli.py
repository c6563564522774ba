"""The `zfish` command: one subcommand per task around the platform (`generate`, `demo`, `check`, `engine`, ...).

Each subcommand has an `_add_<name>` that declares its flags and sets `run` (the function that runs
it, taking the parsed args) and `error` (its parser's usage error), so a new one is two functions and
one line in `_parser`. The module is the declarations of every subcommand's flags and help (those
that change the AWS deployment or the lake: `lake_commands.py`); what a subcommand does lives in the
module it names.
"""

from __future__ import annotations

import argparse
import errno
import dataclasses
import sys
import time
from datetime import timedelta
from pathlib import Path

from zfish_assets import settings
from zfish_assets.synthetic import WORKERS, SimSettings, generate
from zfish_assets.tools.arguments import day as _day, day_range as _range, of_kind, port as _port
from zfish_assets.tools.lake_commands import add_deploy, add_upload


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
    for flag, setting, what in (("--fish-per-day", settings.FISH_PER_DAY, "new fish imaged each day"),
                                ("--images-per-fish", settings.IMAGES_PER_FISH, "photos of each fish"),
                                ("--label-delay-days", settings.LABEL_DELAY_DAYS, "days until a fish's label arrives"),
                                ("--seed", settings.SEED, "random seed")):
        parser.add_argument(flag, type=of_kind(setting.parse_text), metavar=count, help=f"{what} ({setting.name})")
    parser.add_argument("--workers", type=of_kind(WORKERS), metavar=count,
                        help="writer processes (default: one per core)")
    parser.set_defaults(run=_generate, error=parser.error)


def _generate(args: argparse.Namespace) -> int:
    """Generate the days and print what was written and how fast (file creation is the bound)."""
    from zfish_assets.tools.progress import Progress
    from zfish_assets.synthetic import photos_between

    sim = _generation_settings(args)
    why = unwritable(args.out)
    if why:
        args.error(f"--out {args.out} is not a writable folder ({why})")
    try:
        began = time.perf_counter()
        with Progress(f"generate {args.start}..{args.end}", photos_between(sim, args.start, args.end), "photos") as bar:
            summary = generate(sim, args.out, args.start, args.end, workers=args.workers, progress=bar.advance)
    except ValueError as exc:  # bad range or workers: a usage error, exit status 2
        args.error(str(exc))
    _print_generated(args, sim, summary, time.perf_counter() - began)
    return 0


def _generation_settings(args: argparse.Namespace) -> SimSettings:
    """The simulator's settings with the flags given, once the range is checked against them.

    A range wholly before the simulation's start would write nothing: a usage error saying why and
    which range can be generated. A range starting before it writes from the start on, and says so.
    """
    flags = ("fish_per_day", "images_per_fish", "label_delay_days", "seed")
    overrides = {name: getattr(args, name) for name in flags if getattr(args, name) is not None}
    try:
        sim = dataclasses.replace(SimSettings.from_env(), **overrides)
    except ValueError as exc:  # bad settings or flags: a usage error, exit status 2
        args.error(str(exc))
    days = (args.end - args.start).days + 1
    if days < 1:
        args.error(f"--end {args.end} is before --start {args.start}")
    if args.end < sim.start:
        args.error(f"{args.start}..{args.end} holds no simulated day: the simulation starts on ZFISH_SIM_START="
                   f"{sim.start} and days before it hold no fish. It can generate {sim.start} or any later day, "
                   f"e.g. --start {sim.start} --end {sim.start + timedelta(days=max(days, 1) - 1)}"
                   f" (or set ZFISH_SIM_START)")
    if args.start < sim.start <= args.end:
        print(f"note: {args.start}..{sim.start - timedelta(days=1)} is before ZFISH_SIM_START={sim.start} and holds "
              f"no fish; writing {sim.start}..{args.end}", file=sys.stderr)
    return sim


def _print_generated(args: argparse.Namespace, sim: SimSettings, summary: dict, seconds: float) -> None:
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
    if summary["observations"] and not summary["outcomes"] and sim.label_delay_spread is None:
        print(f"  (no outcomes yet: a label arrives {sim.label_delay_days} days after its fish's images "
              f"(ZFISH_LABEL_DELAY_DAYS), the first on {sim.start + timedelta(days=sim.label_delay_days)})")


def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the walkthrough's two evenings on the local deployment (60, then 75 joined rows)",
        description="Writes into ZFISH_DATA_DIR (default ./.zfish); runs show in `dagster dev` afterwards.",
    )
    parser.set_defaults(run=_demo, error=parser.error)


def _demo(args: argparse.Namespace) -> int:
    from zfish_assets.tools.demo import run_demo

    return run_demo()


def _add_engine(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "engine",
        help="start, stop or show the warm local engine (Spark Connect) that runs with ZFISH_SPARK_REMOTE use",
        description="`start` prints the URL to set as ZFISH_SPARK_REMOTE (it carries the server's secret: "
        "`export ZFISH_SPARK_REMOTE=$(zfish engine start)`) and replaces a server started with other job code. "
        "The server listens on 127.0.0.1 only and refuses clients without its secret, which is new at each start "
        "and kept in ZFISH_DATA_DIR/engine/secret (mode 0600) beside its state and log. `make dev` starts and stops it.",
    )
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--port", type=_port, default=None, metavar="PORT",
                        help="port of a new server (default: a free port); a taken port is refused naming its holder")
    parser.add_argument("--background", action="store_true",
                        help="with start: return at once and print `warm` (the value of ZFISH_SPARK_REMOTE that "
                             "makes runs wait for the engine, with a log line, then use it); the start's log is "
                             "ZFISH_DATA_DIR/engine/start.log. `make dev` starts it so")
    parser.set_defaults(run=_engine, error=parser.error)


def _no_local_spark_runs() -> str:
    """Why no run of this deployment would use a warm engine ('' when its runs would): it serves joins run by
    Spark on this machine's disk, and a run given one for a lake on S3 refuses it."""
    from zfish_assets import settings
    from zfish_assets.deployments import Parts

    parts = Parts.of(settings.DEPLOYMENT.get())
    if parts.engine == "spark" and parts.lake == "local":
        return ""
    return (f"this deployment's joins run with ZFISH_ENGINE={parts.engine} on ZFISH_LAKE={parts.lake}, and the warm "
            "engine serves only Spark runs on this machine's disk (ZFISH_ENGINE=spark, ZFISH_LAKE=local)")


def _engine(args: argparse.Namespace) -> int:
    from zfish_assets.backends import connect_server
    from zfish_assets.backends.spark_session import WARM, SparkEnvironmentError
    from zfish_assets.domain.warm_evenings import warm_up

    if args.action == "start" and (unused := _no_local_spark_runs()):
        print(f"zfish: no warm engine started: {unused}", file=sys.stderr)
        if args.background:  # `make dev` goes on without one (ZFISH_SPARK_REMOTE left empty)
            print("")
            return 0
        return 1
    if args.action == "start" and args.background:
        if args.port is not None:
            args.error("--background takes no --port: the engine takes a free port, and runs find it")
        try:
            pid = connect_server.start_in_background(warm_up=warm_up)
        except SparkEnvironmentError as exc:  # no JDK, no jars: the message says the fix
            print(f"zfish: {exc}", file=sys.stderr)
            return 1
        print(WARM)
        print(f"zfish: the warm engine is starting in the background (pid {pid}, log "
              f"{connect_server.state_file().with_name('start.log')}); runs with ZFISH_SPARK_REMOTE={WARM} wait for it",
              file=sys.stderr)
        return 0
    if args.action == "start":
        began = time.perf_counter()
        connect_server.sigterm_interrupts()
        try:
            state = connect_server.start(port=args.port, warm_up=warm_up)
        except SparkEnvironmentError as exc:  # a taken port, a missing JDK or jar: the message says the fix
            print(f"zfish: {exc}", file=sys.stderr)
            return 1
        print(state.url)
        print(f"zfish: Spark Connect server pid {state.pid} on 127.0.0.1:{state.port} ready in "
              f"{time.perf_counter() - began:.1f}s, closed to clients without its secret (log {state.log})",
              file=sys.stderr)
        return 0
    if args.action == "stop":
        print("stopped" if connect_server.stop() else "no server was running")
        return 0
    return _engine_status()


def _engine_status() -> int:
    from zfish_assets.backends import connect_server
    from zfish_assets.backends.job_code import script_sha256

    state = connect_server.read_state()
    if state is None:
        print("no server running")
        return 1
    if state.port == 0:
        print(f"starting (pid {state.pid}; log {state.log})")
        return 0
    fresh = "this checkout's job code" if state.code_sha256 == script_sha256() else "STALE job code: run `zfish engine start`"
    print(f"{state.masked_url} pid {state.pid}, {fresh}; listening on 127.0.0.1 only, clients need the secret in "
          f"{state.secret_file or 'no file: an open server of an older zfish, replace it with `zfish engine start`'} "
          f"(`zfish engine start` prints the whole URL); log {state.log}")
    return 0


def _add_check(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="run the asset checks of a day, a range or every day against the configured deployment",
        description="Runs the checks of the crawled tables, joined_fish_data and (once materialized) training_set "
        "as one Dagster run on the instance in DAGSTER_HOME (shown in the UI), prints a table and optionally writes "
        "JUnit XML. Exit status: 0 no blocking check failed (warnings allowed), 1 a blocking check failed or raised, "
        "2 usage error, 3 nothing to check yet (no day landed or registered in the scope).",
    )
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument("--day", type=_day, metavar="YYYY-MM-DD", help="the checks of one day")
    scope.add_argument("--range", type=_range, metavar="FIRST..LAST", dest="day_range",
                       help="the checks of the days FIRST to LAST, included")
    scope.add_argument("--all", action="store_true", help="the checks of every day (what the weekly run does)")
    parser.add_argument("--junit", type=Path, metavar="FILE", help="also write the outcomes as JUnit XML here")
    parser.set_defaults(run=_check, error=parser.error)


def _check(args: argparse.Namespace) -> int:
    import warnings

    from dagster import BetaWarning, PreviewWarning

    warnings.filterwarnings("ignore", category=BetaWarning)  # before the definitions' module builds them
    warnings.filterwarnings("ignore", category=PreviewWarning)
    from zfish_assets.tools import checking
    from zfish_assets.tools.instance import local_instance

    try:
        from zfish_assets.definitions import build_definitions  # the module builds them too, as it loads

        defs = build_definitions()
        scope = checking.scope_of(defs, args.day.isoformat() if args.day else None, args.day_range)
    except ValueError as exc:
        args.error(str(exc))
    present = checking.days_with_data(defs)  # the lake listed and the catalog read once, for both questions
    reason = checking.nothing_to_check(defs, scope, present)
    if reason:
        print(f"zfish check: {reason}", file=sys.stderr)
        return checking.NOTHING_TO_CHECK
    empty = checking.days_without_data(scope, present)
    if empty:
        print(f"zfish check: {empty}", file=sys.stderr)
    with local_instance() as instance:
        report = checking.run_checks(defs, instance, scope)
    if args.junit:
        checking.write_junit(report, args.junit)
    print(checking.table(report))
    print(f"JUnit XML: {args.junit}" if args.junit else "(--junit FILE writes these outcomes as JUnit XML)")
    print(checking.summary(report))
    return report.exit_status


def _add_dev(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dev",
        help="`dg dev` on the project's instance, stopping on SIGTERM (what `make dev` runs)",
        description="DAGSTER_HOME defaults to $ZFISH_DATA_DIR/dagster, created with the project's dagster.yaml. "
        "Arguments after `--` go to `dg dev`, e.g. `zfish dev -- -h 127.0.0.1 -p 3000`.",
    )
    parser.add_argument("dagster_args", nargs="*", metavar="DG_DEV_ARG", help="passed to `dg dev`")
    parser.set_defaults(run=_dev, error=parser.error)


def _dev(args: argparse.Namespace) -> int:
    """Become `dg dev` (the project's [tool.dg]) with DAGSTER_HOME set and SIGINT and SIGTERM at their
    default dispositions.

    A process a non-interactive shell starts in the background (a script, CI, `make dev &`)
    inherits SIGINT ignored. `dg dev` (Dagster's dev command) hands SIGTERM SIGINT's handler, so it then ignores
    SIGTERM as well, and its webserver and daemon, though they stop their work, wait for a shutdown
    message from it that never comes: SIGTERM stopped nothing. With SIGINT at its default the new
    Python installs its KeyboardInterrupt handler, and SIGTERM shuts every part down.
    """
    import os
    import signal

    from zfish_assets.tools.instance import dagster_home
    from zfish_assets.settings import REPO_ROOT

    os.environ["DAGSTER_HOME"] = str(dagster_home())
    os.environ["VIRTUAL_ENV"] = sys.prefix  # the project's virtualenv is the active one: dg warns otherwise
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    os.chdir(REPO_ROOT)
    dg = str(Path(sys.executable).parent / "dg")
    os.execv(dg, [dg, "dev", *args.dagster_args])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zfish", description="Tools around the zfish data platform.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_generate(subparsers)
    _add_demo(subparsers)
    add_deploy(subparsers)
    add_upload(subparsers)
    _add_engine(subparsers)
    _add_check(subparsers)
    _add_dev(subparsers)
    return parser


WRITES_DATA_DIR = ("demo", "check", "dev", "engine", "upload")
"""The commands that keep state in ZFISH_DATA_DIR (Dagster's instance, the local lake, the engine's state)."""


def unwritable(path: Path) -> str | None:
    """Why `path` cannot be a folder this process writes (the OS's words), creating it if need be; None when it can."""
    import tempfile

    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".zfish-write-probe-"):
            pass
    except OSError as exc:
        return str(exc.strerror or exc)
    return None


def data_dir_problem() -> str | None:
    """Why ZFISH_DATA_DIR cannot hold zfish's state (not creatable, not writable), in a line; None when it can."""
    from zfish_assets import settings

    path = settings.data_dir()
    why = unwritable(path)
    if why:
        return (f"ZFISH_DATA_DIR={path} is not a writable folder ({why}): point ZFISH_DATA_DIR at "
                "a folder you can write (default ./.zfish), or fix its permissions")
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `zfish` console script; returns the exit status."""
    from zfish_assets import settings

    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the subcommand, with its usage (the top parser's usage names no subcommand's arguments)
        args.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        settings.check_set()
    except ValueError as exc:  # a usage error naming the variable, before anything runs (exit status 2)
        args.error(str(exc))
    problem = data_dir_problem() if args.command in WRITES_DATA_DIR else None
    if problem:
        print(f"zfish {args.command}: {problem}", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except Exception as caught:
        from zfish_assets.tools.instance import instance_storage_error

        exc = caught if isinstance(caught, OSError) else instance_storage_error(caught)
        if exc is None or exc.errno not in MACHINE_ERRORS:
            raise
        named = "" if exc.filename and str(exc.filename) in (exc.strerror or "") else f" ({exc.filename or 'no file named'})"
        print(f"zfish {args.command}: {exc.strerror}{named}. Fix that (free room, permissions), then run the command "
              "again: a day being landed is left as it was", file=sys.stderr)
        return 1


MACHINE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES)
"""OS errors of the machine, not of zfish: a command ends with one line naming them, not a traceback."""


if __name__ == "__main__":
    sys.exit(main())
