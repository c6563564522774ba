"""`zfish check`: the asset checks of a day, a range or every day, run through Dagster and reported.

The checks are the definitions' own: job `checks_on_demand` selects the checks of the crawled
tables, joined_fish_data and training_set, and runs in process on the instance the other commands
use, so the run and every check result show in the UI. training_set's checks run once the asset
was materialized (before, they could only say "no training set yet"). The days travel as the range
tags a backfill sets, which the checks read (`check_specs.run_days`); without them a check covers every
day. What comes out: a table, JUnit XML for a CI system to display, and an exit status. Those
three renderings of one run's results are why the module runs to ~270 lines.
"""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from dagster import (AssetCheckKey, AssetCheckSeverity, AssetKey, DagsterEventType, DagsterInstance, Definitions,
                     build_resources)

from zfish_assets import settings

from zfish_assets.tools.instance import dagster_home
from zfish_assets.partitions import DayRange
from zfish_assets.dagster_names import CHECKED_ON_DEMAND, CHECKS_JOB, LAND_AND_CRAWL_JOB, RANGE_END, RANGE_START, RAW_TABLES, TRAINING, TRIGGER



PASSED, FAILED, USAGE, NOTHING_TO_CHECK = 0, 1, 2, 3
"""Exit statuses: every blocking check passed (warnings allowed); a blocking check failed or could
not run; a usage error (bad day or range, a day that is no partition); nothing landed or registered
in the scope yet, so there is nothing to check (a CI job pointed at an empty deployment)."""

UNSCOPED = {TRAINING: "latest export"}
"""Assets whose checks look at something other than days: what their `days` column says instead."""

MAX_SHOWN = 160


@dataclass(frozen=True)
class Scope:
    """The days a run of the checks covers; `days` None is every day (the weekly run's scope)."""

    days: list[str] | None

    @property
    def label(self) -> str:
        if self.days is None:
            return "every day"
        return self.days[0] if len(self.days) == 1 else f"{self.days[0]}..{self.days[-1]} ({len(self.days)} days)"

    def tags(self) -> dict[str, str]:
        return {} if self.days is None else {RANGE_START: self.days[0], RANGE_END: self.days[-1]}


def parse_range(text: str) -> DayRange:
    """`A..B` as its range of days, parsed once here; a ValueError naming the text when it is malformed or
    reversed."""
    first, sep, last = text.partition("..")
    if not sep or ".." in last:
        raise ValueError(f"range {text!r} is not FIRST..LAST, e.g. 2025-04-05..2025-05-10")
    start, end = settings.parse_day(first, "range start"), settings.parse_day(last, "range end")
    if end < start:
        raise ValueError(f"range {text!r} is reversed: {last} is before {first} (write --range {last}..{first})")
    return DayRange(start, end)


def scope_of(defs: Definitions, day: str | None = None, day_range: DayRange | None = None) -> Scope:
    """The scope of `--day`, `--range` or neither (every day); a ValueError when a day is no partition.

    A day outside the partitions (before `ZFISH_SIM_START`, after the clock's last evening) was never
    landed by the platform: asking for it is a mistake in the command, not a passing check.
    """
    if day is None and day_range is None:
        return Scope(None)
    days = [day] if day else list(day_range.keys)
    keys = defs.resolve_job_def(LAND_AND_CRAWL_JOB).partitions_def.get_partition_keys()
    outside = [d for d in days if d < keys[0] or d > keys[-1]]
    if outside:
        named = outside[0] + " is not a partition" if len(outside) == 1 else \
            f"{len(outside)} days ({outside[0]}..{outside[-1]}) are not partitions"
        raise ValueError(f"{named}: days run {keys[0]}..{keys[-1]} ({settings.SIM_START.name} to the last day "
                         f"by {settings.clock_source()})")
    return Scope(days)


def lake_and_catalog(defs: Definitions):
    """The definitions' lake and catalog built as a run builds them (`build_resources`, a context manager):
    a field set from a variable is an `EnvVar` in the definitions (`Setting.config`), resolved only there."""
    return build_resources({k: defs.resources[k] for k in ("lake", "catalog")})


def days_with_data(defs: Definitions) -> set[str]:
    """The days landed in the lake or registered in the catalog, of either raw table."""
    with lake_and_catalog(defs) as built:
        return {d for t in RAW_TABLES for d in (*built.lake.list_days(t), *built.catalog.partition_parameters(t))}


def days_without_data(scope: Scope, present: set[str]) -> str | None:
    """Which days of `scope` hold no data (nothing landed or registered), or None when all do: their
    checks pass over nothing, which the report must not let pass for checked data."""
    if scope.days is None:
        return None
    empty = sorted(set(scope.days) - present)
    if not empty:
        return None
    from zfish_assets.assets.check_specs import listed

    return f"{len(empty)} of the {len(scope.days)} days hold no data (nothing landed or registered): {listed(empty)}"


def nothing_to_check(defs: Definitions, scope: Scope, present: set[str]) -> str | None:
    """Why there is nothing to check in `scope` (no day folder and no registered day among `present`,
    `days_with_data`'s answer), or None."""
    if present if scope.days is None else present & set(scope.days):
        return None
    with lake_and_catalog(defs) as built:
        where = f"the lake {built.lake.uri()} and the catalog database {built.catalog.database}"
    return (f"nothing to check yet for {scope.label}: no day of it is landed or registered in {where}. "
            "Land and crawl days first (`make demo`, a backfill in `make dev`, or `zfish upload DIR --day D`)"
            + (f"; days present: {min(present)}..{max(present)}" if present else ""))


@dataclass(frozen=True)
class CheckOutcome:
    """One check's result in a `zfish check` run."""

    asset: str
    name: str
    blocking: bool
    result: str  # PASS, WARN (failed with severity WARN), FAIL, ERROR (raised instead of reporting)
    detail: str  # what the check found against what it expected: its result's description
    metadata: dict[str, str]  # the result's metadata; for an ERROR, `error`: the error chain and stack
    seconds: float
    days: str

    @property
    def blocks(self) -> bool:
        """Whether this outcome fails the command: an error, or a failed blocking check."""
        return self.result == "ERROR" or (self.result == "FAIL" and self.blocking)

    @property
    def shown_result(self) -> str:
        return "FAIL (not blocking)" if self.result == "FAIL" and not self.blocking else self.result


@dataclass(frozen=True)
class CheckReport:
    run_id: str
    scope: Scope
    outcomes: list[CheckOutcome]
    seconds: float
    started: datetime

    @property
    def exit_status(self) -> int:
        return FAILED if any(o.blocks for o in self.outcomes) else PASSED


def training_set_exists(instance: DagsterInstance) -> bool:
    return bool(instance.fetch_materializations(AssetKey(TRAINING), limit=1).records)


def _step_times(instance: DagsterInstance, run_id: str) -> dict[str, float]:
    """Seconds each step took, from the run's event log."""
    began, took = {}, {}
    kinds = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}
    for entry in instance.all_logs(run_id, of_type=kinds):
        event = entry.dagster_event
        if event.event_type == DagsterEventType.STEP_START:
            began[event.step_key] = entry.timestamp
        elif event.step_key in began:
            took[event.step_key] = entry.timestamp - began[event.step_key]
    return took


def _error_text(error) -> tuple[str, str]:
    """A step error's root cause in one line (what raised, in the check's code), and the whole chain."""
    chain = []
    while error is not None:
        chain.append(error)
        error = error.cause
    root = chain[-1]
    return (f"raised: {' '.join(root.message.split())}",
            "\n".join(e.to_string() for e in chain))


def run_checks(defs: Definitions, instance: DagsterInstance, scope: Scope) -> CheckReport:
    """Run the checks of `scope` as one Dagster run recorded in `instance`; every check's outcome.

    The console stays quiet (`ZFISH_LOG_LEVEL`, default CRITICAL): the table says what failed, the
    JUnit file and the run in the UI hold each error's stack.
    """
    specs = {spec.key: (spec, checks_def.node_def.name)
             for checks_def in defs.asset_checks for spec in checks_def.check_specs
             if spec.asset_key.to_user_string() in CHECKED_ON_DEMAND}
    if not training_set_exists(instance):
        specs = {key: value for key, value in specs.items() if key.asset_key != AssetKey(TRAINING)}
    job = defs.resolve_job_def(CHECKS_JOB).get_subset(asset_check_selection=set(specs))
    started, began = datetime.now(timezone.utc), time.monotonic()
    result = job.execute_in_process(
        instance=instance, raise_on_error=False, tags={**scope.tags(), TRIGGER: "zfish check"},
        run_config={"loggers": {"console": {"config": {"log_level": settings.LOG_LEVEL.get() or "CRITICAL"}}}},
    )
    seconds = time.monotonic() - began
    evaluations = {AssetCheckKey(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}
    errors = {e.step_key: _error_text(e.step_failure_data.error) for e in result.get_step_failure_events()
              if e.step_failure_data.error is not None}
    times = _step_times(instance, result.run_id)
    outcomes = []
    for key, (spec, step) in sorted(specs.items(), key=lambda item: item[0].to_user_string()):
        asset = key.asset_key.to_user_string()
        evaluation = evaluations.get(key)
        if evaluation is None:
            detail, stack = errors.get(step, ("reported no result", ""))
            outcome, metadata = "ERROR", {"error": stack}
        else:
            outcome = "PASS" if evaluation.passed else \
                "WARN" if evaluation.severity == AssetCheckSeverity.WARN else "FAIL"
            detail = evaluation.description or ""
            metadata = {name: str(value.value) for name, value in evaluation.metadata.items()}
        outcomes.append(CheckOutcome(asset, key.name, spec.blocking, outcome, detail, metadata,
                                     round(times.get(step, 0.0), 3), UNSCOPED.get(asset, scope.label)))
    return CheckReport(result.run_id, scope, outcomes, seconds, started)


def _shorten(text: str, width: int = MAX_SHOWN) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(report: CheckReport) -> str:
    """The outcomes as a plain-text table, one check a line."""
    header = ("check", "days", "result", "expected vs actual")
    rows = [(f"{o.asset}/{o.name}", o.days, o.shown_result, _shorten(o.detail)) for o in report.outcomes]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(3)]
    lines = ["  ".join((*(v.ljust(w) for v, w in zip(r[:3], widths)), r[3])).rstrip() for r in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in (*widths, len(header[3]))))
    return "\n".join(lines)


def summary(report: CheckReport) -> str:
    """What ran and the verdict; its last line in the plain `N passed, N failed` form CI logs are read for."""
    counts = {r: sum(o.result == r for o in report.outcomes) for r in ("PASS", "WARN", "FAIL", "ERROR")}
    blocking = sum(o.blocks for o in report.outcomes)
    told = ", ".join(f"{n} {r.lower()}" for r, n in counts.items() if n)
    verdict = f"{blocking} blocking: FAILED" if blocking else "no blocking failure: OK"
    failed = counts["FAIL"] + counts["ERROR"]
    return (f"{len(report.outcomes)} checks over {report.scope.label} in {report.seconds:.1f}s: {told}; {verdict}. "
            f"Dagster run {report.run_id} (job {CHECKS_JOB}) in {dagster_home()}\n"
            f"checks: {len(report.outcomes) - failed} passed, {failed} failed")


def junit_xml(report: CheckReport) -> ET.ElementTree:
    """JUnit XML: one test suite per asset, one test case per check.

    A failed check is a <failure> (type `blocking` or `not blocking`), a check that raised is an
    <error>, a warning passes with the warning in <system-out>; every case carries the result's
    description and metadata, so a CI system's test view shows expected against actual.
    """
    def totals(element: ET.Element, outcomes: Sequence[CheckOutcome]) -> None:
        element.set("tests", str(len(outcomes)))
        element.set("failures", str(sum(o.result == "FAIL" for o in outcomes)))
        element.set("errors", str(sum(o.result == "ERROR" for o in outcomes)))
        element.set("skipped", "0")
        element.set("time", f"{sum(o.seconds for o in outcomes):.3f}")

    root = ET.Element("testsuites", name="zfish check")
    totals(root, report.outcomes)
    for asset in dict.fromkeys(o.asset for o in report.outcomes):
        outcomes = [o for o in report.outcomes if o.asset == asset]
        suite = ET.SubElement(root, "testsuite", name=asset, timestamp=report.started.isoformat(timespec="seconds"),
                              hostname=socket.gethostname())
        totals(suite, outcomes)
        properties = ET.SubElement(suite, "properties")
        for name, value in (("days", outcomes[0].days), ("dagster_run_id", report.run_id), ("dagster_job", CHECKS_JOB),
                            ("deployment", settings.DEPLOYMENT.get())):
            ET.SubElement(properties, "property", name=name, value=value)
        for o in outcomes:
            case = ET.SubElement(suite, "testcase", classname=asset, name=o.name, time=f"{o.seconds:.3f}")
            body = "\n".join([o.detail, *(f"{k}: {v}" for k, v in o.metadata.items())])
            if o.result == "FAIL":
                ET.SubElement(case, "failure", message=o.detail, type="blocking" if o.blocking else "not blocking").text = body
            elif o.result == "ERROR":
                ET.SubElement(case, "error", message=o.detail, type="check raised").text = body
            ET.SubElement(case, "system-out").text = f"{o.result}: {body}"
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return tree


def write_junit(report: CheckReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_xml(report).write(path, encoding="utf-8", xml_declaration=True)
