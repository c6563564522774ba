"""The job's arguments and result: what an engine starts the job with and reads back (Spark-free).

Each argument is spelled as its JobArgs field all the way to the job: a Glue run gets it as
`--field value` (`JobArgs.glue_arguments`), and `parse_args` reads exactly those back, under Glue
through awsglue's `getResolvedOptions`, elsewhere through argparse.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, asdict, dataclass, field, fields
from functools import cached_property
from typing import Literal, get_args

from glue_scripts.zfish_etl.days import DayRange, parse_day
from glue_scripts.zfish_etl.modes import JoinMode

CatalogKind = Literal["glue", "file"]
CATALOG_KINDS: tuple[CatalogKind, ...] = get_args(CatalogKind)


def glue_argument(name: str) -> str:
    """How Glue spells the job argument `name` (a JobArgs field): `--name`."""
    return f"--{name}"


LONGEST_WAIT_S = 7 * 24 * 3600
"""The longest wait the job takes (a week, Glue's longest run): more would hang it, or overflow `time.sleep`."""


@dataclass(frozen=True)
class JobArgs:
    """The job's arguments, each spelled as its field: Glue's `--field value` (`glue_arguments`, `parse_args`)."""

    first_day: str
    last_day: str
    database: str
    observations_table: str
    outcomes_table: str
    target_path: str
    target_table: str
    catalog: CatalogKind = "glue"
    catalog_dir: str = ""  # the local catalog's folder (catalog "file")
    join_mode: JoinMode = JoinMode.INCREMENTAL  # see modes.py and the job script's docstring
    # The endpoint and region of the job's own AWS clients (catalog, Pipes context): set when the catalog
    # is served by a local endpoint (ZFISH_AWS_ENDPOINT_URL); on Glue both are empty (AWS's own).
    aws_endpoint_url: str = ""
    aws_region: str = ""
    kms_key_arn: str = ""  # SSE-KMS for the job's own boto3 S3 writes; a deployed job's, not a run's
    # Who runs the job (the Dagster run and step), named by the table's lease to a second writer,
    # and how long that second writer waits for the lease before refusing (see lease.py).
    writer: str = ""
    writer_wait_s: float = 0.0

    def __post_init__(self) -> None:
        """Refuse a day that is not `YYYY-MM-DD`, an unknown catalog or join mode (naming it) before any work;
        the days are parsed here once, the mode becomes a JoinMode, the wait a number (Glue and argparse hand
        over text)."""
        bounds = parse_day(self.first_day, "first_day"), parse_day(self.last_day, "last_day")
        object.__setattr__(self, "_bounds", bounds)
        if self.catalog not in CATALOG_KINDS:
            raise ValueError(f"catalog={self.catalog!r} is not one of {', '.join(CATALOG_KINDS)}")
        object.__setattr__(self, "join_mode", JoinMode.parse(self.join_mode))
        try:
            wait = float(self.writer_wait_s)
        except ValueError:
            raise ValueError(f"writer_wait_s={self.writer_wait_s!r} is not a number of seconds") from None
        if not 0 <= wait <= LONGEST_WAIT_S:  # NaN and infinity fail too
            raise ValueError(f"writer_wait_s={self.writer_wait_s!r} must be from 0 to {LONGEST_WAIT_S} seconds")
        object.__setattr__(self, "writer_wait_s", wait)

    @cached_property
    def window(self) -> DayRange:
        """The run's days, parsed on construction and expanded once, on first use (a ValueError when
        last_day is before first_day)."""
        return DayRange(*self._bounds)

    def days(self) -> list[str]:
        return list(self.window.keys)

    def glue_arguments(self) -> dict[str, str]:
        """The arguments of a Glue run of the job; those left empty are left out (the job's default)."""
        return {glue_argument(k): str(v) for k, v in asdict(self).items() if v != ""}


@dataclass(frozen=True)
class JobResult:
    first_day: str
    last_day: str
    observations_read: int
    rows_upserted: int  # incremental: the rows that changed; full: every labeled row of the range
    rows_per_day: dict[str, int]  # rows upserted per day: its keys are the days redone
    commit_instant: str | None
    files_written: int
    bytes_written: int
    join_mode: JoinMode
    rows_labeled: int  # labeled rows computed for the days read (what `full` upserts)
    days_read: list[str]  # the range (incremental: its days with news), plus the days of stale and of late labels
    partitions_touched: list[str]  # the commit's partitions, from Hudi's commit file
    files_replaced: int  # of files_written, new versions of existing files (the rest are new file groups)
    bytes_replaced: int
    # The days not read whole (before the range, or unchanged in it) the stale-label scan read: those a
    # label newer than the last commit can reach (see label_state); None when it read every one.
    days_scanned: list[str] | None = None
    rows_deleted: int = 0  # stored rows of the days read that they no longer make
    deleted_per_day: dict[str, int] = field(default_factory=dict)
    delete_instant: str | None = None  # the run's second commit, when it deleted
    # The days outside the range redone because a fish labeled since the last commit was imaged
    # there without that label (see late_labels), and those read only to add them to the fish index.
    days_placed: list[str] = field(default_factory=list)
    days_indexed: list[str] = field(default_factory=list)
    # The range's days not read (incremental): their observations are the ones their stored rows were
    # built from, and no label since reached them (see label_state).
    days_unchanged: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """The mode as a JoinMode, also when the result was read back from JSON (a Pipes message)."""
        object.__setattr__(self, "join_mode", JoinMode.parse(self.join_mode))


def parse_args(argv: list[str]) -> JobArgs:
    """Glue's `--name value` arguments (`glue_argument`), one per JobArgs field, through awsglue when it is there.

    A field with a default is optional; arguments that are not the job's (Glue's own, the engine's
    run key) are ignored.
    """
    required = [f.name for f in fields(JobArgs) if f.default is MISSING]
    optional = [f.name for f in fields(JobArgs) if f.default is not MISSING and glue_argument(f.name) in argv]
    try:
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    except ImportError:
        parser = argparse.ArgumentParser(description="The zfish job: builds joined_fish_data for a range of days.")
        for name in required + optional:
            parser.add_argument(glue_argument(name), required=True)
        return JobArgs(**vars(parser.parse_known_args(argv)[0]))
    return JobArgs(**getResolvedOptions(argv, required + optional))
