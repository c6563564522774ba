"""Every `ZFISH_*` setting, declared once: its variable, type, local default and meaning.

This module is the only one that reads the environment for zfish. Each setting is a `Setting`
in `SETTINGS` (docs/configuration.md's settings table lists the same), read when asked for (not at import), so a
test or the demo can set variables before building resources. A bad value fails with the
variable, the value and what is expected; choices are `Literal` types, flags are `bool`.

>>> LABEL_HORIZON_DAYS.parse("36")
36
>>> JOIN_MODE.parse("fast")
Traceback (most recent call last):
...
ValueError: ZFISH_JOIN_MODE='fast' is not one of incremental, full

The kinds of value (and their parsers) are `setting_kinds.py`'s.

Resources never read settings: `deployments.py` gives each field its setting (`Setting.config()` for a
field only runs read, else the value). The module's length is the table of settings: one declaration each.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from dagster import EnvVar

from glue_scripts.zfish_etl import days, layout
from glue_scripts.zfish_etl.contract import BIGINT_RANGE
from glue_scripts.zfish_etl.modes import JoinMode
from zfish_assets.runtimes import DEFAULT as DEFAULT_GLUE_VERSION
from zfish_assets.runtimes import RUNTIMES, VARIABLE as GLUE_VERSION_VARIABLE, GlueRuntime, GlueVersion
from zfish_assets.runtimes import default_jars_dir, runtime
from zfish_assets.setting_kinds import (  # noqa: F401 (the parsers, also used as `settings.<kind>`)
    MAX_DAYS, WEEK_S, IntegerParser, arn_partition, aws_region, bucket_name, day, endpoint_url, flag, folder,
    instant, integer, key_prefix, kms_key_arn, level, masked_url, memory, number, one_of, optional, partition_of,
    plain_name, poll_seconds, resource_name, role_arn, s3_location, seconds, share, spark_master, spark_remote,
    spread_text, text)

REPO_ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")

Deployment = Literal["local", "aws"]
LakeKind = Literal["local", "s3"]
CatalogKind = Literal["local", "glue"]
EngineKind = Literal["spark", "glue"]
QueryKind = Literal["duckdb", "athena"]
CrawlMode = Literal["partitions", "crawler"]


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One `ZFISH_*` variable: `parse` turns its text (or `default` when unset or blank) into a `T`."""

    name: str
    default: str
    parse_text: Callable[[str], T]
    description: str

    def raw(self) -> str:
        value = os.environ.get(self.name, "")
        return value if value.strip() else self.default

    def is_set(self) -> bool:
        return bool(os.environ.get(self.name, "").strip())

    def parse(self, text: str) -> T:
        """`text` as this setting's type, or a ValueError naming the variable and the value."""
        try:
            return self.parse_text(text)
        except ValueError as exc:
            problem = str(exc) if str(exc).startswith("is ") else f"is not {exc}"
            raise ValueError(f"{self.name}={masked_url(text)!r} {problem}") from None

    def get(self) -> T:
        return self.parse(self.raw())

    def config(self) -> Any:
        """For a resource field only runs read: this setting's value, checked now (a ValueError naming the
        variable); an `EnvVar(name)` when the variable is set and its text is the value (Dagster resolves it at
        run time, the UI shows the variable), else the parsed value."""
        value = self.get()
        if isinstance(value, str) and self.is_set() and os.environ[self.name] == value:
            return EnvVar(self.name)
        return value





# Where things are.
DATA_DIR = Setting("ZFISH_DATA_DIR", "./.zfish", folder,
                   "Everything a local run writes: the lake, the catalog, Dagster's home, caches.")
GLUE_VERSION: Setting[GlueVersion] = Setting(
    GLUE_VERSION_VARIABLE, DEFAULT_GLUE_VERSION, one_of(GlueVersion),
    f"The AWS Glue runtime whose Spark and Hudi run the job: {', '.join(RUNTIMES)} "
    f"({', '.join(v for v, r in RUNTIMES.items() if not r.local)} deployed only, not run locally).")
JARS_DIR = Setting("ZFISH_JARS_DIR", "", optional(folder),
                   "The Maven-fetched jars Spark loads (`bin/fetch-jars`); default `.cache/jars`, "
                   "or `.cache/jars-glue5.1` for Glue 5.1.")
LAKE_PREFIX = Setting("ZFISH_LAKE_PREFIX", "use-cases/fish-demo", key_prefix,
                      "The key prefix of the walkthrough's layout inside the lake.")
DATABASE = Setting("ZFISH_DATABASE", "zebra_fish_demo", plain_name,
                   "The catalog database holding the three tables.")

# The pipeline.
SIM_START = Setting("ZFISH_SIM_START", "2025-04-05", day, "The first simulated day, and the first partition.")
CLOCK = Setting("ZFISH_CLOCK", "", instant, "A simulated \"now\" (ISO 8601); unset: the clock recorded in the "
                "data dir (`zfish demo` records its own), else the real clock (production).")
LABEL_HORIZON_DAYS = Setting("ZFISH_LABEL_HORIZON_DAYS", "36", integer(1, MAX_DAYS),
                             "How many days back an evening run reprocesses (the window).")
JOIN_MODE: Setting[JoinMode] = Setting(
    "ZFISH_JOIN_MODE", "incremental", one_of(JoinMode),
    "How an evening writes joined_fish_data: `incremental` upserts only the rows that changed (copy-on-"
    "write rewrites only partitions with news); `full` re-upserts every labeled row of the window.")
QUARANTINE_MAX_RATE = Setting("ZFISH_QUARANTINE_MAX_RATE", "0.1", share,
                              "The share of a day's rows that may be quarantined before the check is an error.")
LOG_LEVEL = Setting("ZFISH_LOG_LEVEL", "", level(("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"), True),
                    "Dagster's console log level for runs the CLI starts (default INFO; `zfish check` CRITICAL).")
PROGRESS_INTERVAL_S = Setting("ZFISH_PROGRESS_INTERVAL_S", "10", seconds,
                              "Seconds between progress lines of long commands when not on a terminal.")

# The simulated instrument.
FISH_PER_DAY = Setting("ZFISH_FISH_PER_DAY", "5", integer(1, 1_000_000), "Fish imaged per simulated day.")
IMAGES_PER_FISH = Setting("ZFISH_IMAGES_PER_FISH", "3", integer(1, 1_000), "Images per fish and day.")
LABEL_DELAY_DAYS = Setting("ZFISH_LABEL_DELAY_DAYS", "32", integer(0, MAX_DAYS),
                           "Days after its images a fish's label arrives.")
LABEL_DELAY_SPREAD = Setting("ZFISH_LABEL_DELAY_SPREAD", "off", spread_text,
                             "`off`, or `MIN-MAX` days (e.g. `7-35`): each fish's label delay drawn from the range.")
SEED = Setting("ZFISH_SEED", "42", integer(*BIGINT_RANGE), "The simulation's random seed.")

# The deployment: one switch, and each part overridable on its own.
DEPLOYMENT: Setting[Deployment] = Setting("ZFISH_DEPLOYMENT", "local", one_of(Deployment),
                                          "`local` (no cloud account) or `aws`: the parts below, by default.")
LAKE: Setting[LakeKind | None] = Setting("ZFISH_LAKE", "", optional(one_of(LakeKind)),
                                         "Where the lake is: a local folder or S3.")
CATALOG: Setting[CatalogKind | None] = Setting("ZFISH_CATALOG", "", optional(one_of(CatalogKind)),
                                               "The catalog: a local JSON catalog or the Glue Data Catalog.")
ENGINE: Setting[EngineKind | None] = Setting("ZFISH_ENGINE", "", optional(one_of(EngineKind)),
                                             "Where the job runs: Spark in process or the deployed Glue job.")
QUERY: Setting[QueryKind | None] = Setting("ZFISH_QUERY", "", optional(one_of(QueryKind)),
                                           "What the checks query: DuckDB (here or over S3) or Athena.")
CRAWL_MODE: Setting[CrawlMode | None] = Setting(
    "ZFISH_CRAWL_MODE", "", optional(one_of(CrawlMode)),
    "How a crawled asset registers a day: zfish's own crawl (`partitions`) or the table's Glue crawler.")
PARTS = (LAKE, CATALOG, ENGINE, QUERY, CRAWL_MODE)

# AWS.
glue_timeout = number(60, WEEK_S, f"a number of seconds from 60 to {WEEK_S} (Glue's Timeout: 1 minute to 7 days)")
S3_BUCKET = Setting("ZFISH_S3_BUCKET", "", bucket_name, "The lake's bucket (lake s3).")
AWS_REGION = Setting("ZFISH_AWS_REGION", "", aws_region,
                     "The region of every AWS client; blank: boto3's own resolution.")
AWS_ENDPOINT_URL = Setting("ZFISH_AWS_ENDPOINT_URL", "", endpoint_url,
                           "One endpoint for every AWS client (e.g. a local moto server); blank: AWS's.")
GLUE_JOB_NAME = Setting("ZFISH_GLUE_JOB_NAME", "zfish-joined-fish-data", resource_name(255),
                        "The Glue job `zfish deploy` defines and engine glue runs.")
GLUE_ROLE_ARN = Setting("ZFISH_GLUE_ROLE_ARN", "", role_arn,
                        "The role the Glue job and the crawlers assume; `zfish deploy` needs it.")
GLUE_TIMEOUT_S = Setting("ZFISH_GLUE_TIMEOUT_S", str(2 * 3600), glue_timeout,
                         "How long a Glue job run may take: the job's `Timeout` (`zfish deploy`, whole minutes) "
                         "and how long a run waits for it.")
KMS_KEY_ARN = Setting("ZFISH_KMS_KEY_ARN", "", kms_key_arn,
                      "A KMS key for SSE-KMS on every object zfish writes (boto3, s3a, the Glue job); "
                      "blank: the bucket's default encryption.")
GLUE_POLL_S = Setting("ZFISH_GLUE_POLL_S", "15", poll_seconds, "Seconds between polls of a Glue job run.")
CRAWLER_TIMEOUT_S = Setting("ZFISH_CRAWLER_TIMEOUT_S", "1800", seconds, "How long a Glue crawl may take.")
CRAWLER_POLL_S = Setting("ZFISH_CRAWLER_POLL_S", "15", poll_seconds, "Seconds between polls of a Glue crawler.")
ATHENA_WORKGROUP = Setting("ZFISH_ATHENA_WORKGROUP", "primary", resource_name(128), "Athena's workgroup (query athena).")
ATHENA_OUTPUT = Setting("ZFISH_ATHENA_OUTPUT", "", s3_location,
                        f"Where Athena writes results; blank: `{layout.athena_results_dir()}/` under the lake prefix.")

# Spark.
SPARK_MASTER = Setting("ZFISH_SPARK_MASTER", "local[2]", spark_master, "Spark's master for local runs: local[N] or a URL.")
SPARK_DRIVER_MEMORY = Setting("ZFISH_SPARK_DRIVER_MEMORY", "4g", memory, "The local Spark driver's memory.")
SPARK_LOG_LEVEL = Setting("ZFISH_SPARK_LOG_LEVEL", "WARN",
                          level(("ALL", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF")), "Spark's log level.")
SPARK_S3A = Setting("ZFISH_SPARK_S3A", "false", flag,
                    "Load the s3a jars into every local session (an S3 lake's session loads them anyway).")
SPARK_REMOTE = Setting("ZFISH_SPARK_REMOTE", "", spark_remote,
                       "The warm engine's Spark Connect URL, its secret included (`zfish engine start` prints "
                       "it); `warm`: this data dir's warm engine, waited for while it starts (`make dev`); "
                       "blank: Spark in process.")

SETTINGS: tuple[Setting[Any], ...] = tuple(v for v in list(globals().values()) if isinstance(v, Setting))


def check_set() -> None:
    """Parse every variable that is set, raising the first one's ValueError: a command and the definitions
    refuse a bad value before anything runs, not when the step that reads it (a Spark session's start, a
    run's logger) comes, after days were landed and crawled."""
    for setting in SETTINGS:
        if setting.is_set():
            setting.get()
    check_aws_agree()
    check_athena_output()


def check_aws_agree() -> None:
    """The ARNs given agree with the region: the role's and the key's partition is the region's (`aws-cn` in
    cn-north-1), and the KMS key is in the region (S3 encrypts with a key of the bucket's region only)."""
    region, key = AWS_REGION.get(), KMS_KEY_ARN.get()
    if not region:
        return
    partition = partition_of(region)
    for setting in (GLUE_ROLE_ARN, KMS_KEY_ARN):
        arn = setting.get()
        if arn and arn_partition(arn) != partition:
            raise ValueError(f"{setting.name}={arn!r} is in partition {arn_partition(arn)}, but {AWS_REGION.name}="
                             f"{region!r} is in {partition}: ARNs there start arn:{partition}:")
    if key and key.split(":")[3] != region:
        raise ValueError(f"{KMS_KEY_ARN.name}={key!r} is a key of region {key.split(':')[3]}, but {AWS_REGION.name}="
                         f"{region!r}: S3 encrypts with a key of the bucket's region only")


def check_athena_output() -> None:
    """`ZFISH_ATHENA_OUTPUT` in the lake's bucket stays clear of the lake's keys: outside its prefix, or in its own
    results folder (`layout.athena_results_dir`). The runner may write and list Athena's results (Athena writes them as the caller), so
    an output that held the lake prefix, or a folder in it, would let the runner write the job's code, the raw
    days and the table, and list the whole bucket."""
    output, bucket = ATHENA_OUTPUT.get(), S3_BUCKET.get()
    out_bucket, _, key = output.removeprefix("s3://").partition("/")
    if not output or out_bucket != bucket:
        return
    key, prefix = key.strip("/"), lake_prefix().strip("/")
    own = f"{prefix}/{layout.athena_results_dir()}"
    holds_the_lake = not key or prefix == key or prefix.startswith(f"{key}/")
    in_the_lake = key.startswith(f"{prefix}/") and not (key == own or key.startswith(f"{own}/"))
    if holds_the_lake or in_the_lake:
        raise ValueError(
            f"{ATHENA_OUTPUT.name}={output!r} reaches the lake's keys (s3://{bucket}/{prefix}/), which Athena's caller "
            f"would then be allowed to write: name a folder of its own, outside the lake prefix (e.g. "
            f"s3://{bucket}/athena-results/), or leave it blank for s3://{bucket}/{own}/")


# Accessors for the settings most modules need, under the names they have always had.

def data_dir() -> Path:
    return DATA_DIR.get()


def glue_version() -> GlueVersion:
    return GLUE_VERSION.get()


def glue_runtime() -> GlueRuntime:
    """The configured Glue runtime's facts (`ZFISH_GLUE_VERSION`)."""
    return runtime(glue_version())


def jars_dir() -> Path:
    return JARS_DIR.get() or default_jars_dir(REPO_ROOT, glue_version())


def sim_start() -> date:
    return SIM_START.get()


CLOCK_FILE = "clock"
"""The data dir's own simulated "now" (`zfish demo` writes it): every command, `zfish dev` and the UI
on that data dir then share one notion of today, unless `ZFISH_CLOCK` says otherwise."""


def clock_text() -> str:
    """`ZFISH_CLOCK` when set, else the clock recorded in the data dir, else "" (the real clock)."""
    if CLOCK.is_set():
        return CLOCK.raw()
    try:
        return (data_dir() / CLOCK_FILE).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return ""


def record_clock() -> None:
    """Record `ZFISH_CLOCK` as the data dir's clock (what the demo simulates stays its today)."""
    data_dir().mkdir(parents=True, exist_ok=True)
    (data_dir() / CLOCK_FILE).write_text(CLOCK.raw() + "\n")


def simulated_clock() -> datetime | None:
    text = clock_text()
    if CLOCK.is_set():
        return CLOCK.parse(text)
    try:
        return CLOCK.parse_text(text)
    except ValueError as exc:  # the variable is unset: the message names the file that was read
        problem = str(exc) if str(exc).startswith("is ") else f"is not {exc}"
        raise ValueError(f"the clock recorded in {data_dir() / CLOCK_FILE}, {text[:80]!r}, {problem} "
                         f"({CLOCK.name} unset): fix or delete the file, or set {CLOCK.name}") from None


def clock_source() -> str:
    """Which clock is "now" and where it came from, as a refusal of a day names it: `ZFISH_CLOCK`, the
    clock recorded in the data dir (`zfish demo`'s), or the real clock. One text for every command and
    the definitions, so a user told a day is after the clock knows which clock to change."""
    if CLOCK.is_set():
        return f"{CLOCK.name}={CLOCK.raw()}"
    recorded = data_dir() / CLOCK_FILE
    if simulated_clock() is not None:
        return f"the clock recorded in {recorded}, {clock_text()} ({CLOCK.name} unset)"
    return f"the real clock ({CLOCK.name} unset, no clock recorded in {recorded})"


def simulated() -> bool:
    """Whether a simulated "now" is set (`ZFISH_CLOCK`, or the data dir's recorded clock)."""
    return simulated_clock() is not None


def clock() -> datetime:
    """The simulated "now", else the real clock."""
    return simulated_clock() or datetime.now(timezone.utc)


def lake_prefix() -> str:
    return LAKE_PREFIX.get()


def database() -> str:
    return DATABASE.get()


def label_horizon_days() -> int:
    return LABEL_HORIZON_DAYS.get()


def join_mode() -> JoinMode:
    return JOIN_MODE.get()


parse_day = days.parse_day  # a day not from a variable, refused naming what it is and its value
