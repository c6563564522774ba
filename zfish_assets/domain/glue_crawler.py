"""Crawler mode: the walkthrough's Glue crawler registers day D, instead of zfish's own crawl.

`ZFISH_CRAWL_MODE=partitions` (default; the Glue catalog's `crawl_mode`) crawls in process (`zfish_assets/domain/crawl.py`): the schema
inferred and checked for drift, `batch_create_partition` for day D, no waiting. `crawler` runs the
walkthrough's on-demand crawler of the table (S3 target `PREFIX/<table>/`, the catalog database;
`day=` folders become the partition key), which `zfish deploy` creates (a run missing it fails
with "run `zfish deploy`"; runs never create or change infrastructure): started, waited for with a
timeout, failed with the crawl's error message, and then day D must be registered, or the run
fails naming the day. The day's partition is then pointed at the day's accepted rows, as the
in-process crawl registers it (the crawler only ever crawls the raw folders, never zfish's own folder, `layout.own()`). A crawler is shared by every day's run: a crawl already running is waited
for and a new one started after it, and a timed-out crawl is left running (another run may be
waiting for it); the error says where to look.
"""

from __future__ import annotations

import json
import time
from typing import Any

from dagster import get_dagster_logger

from zfish_assets.domain.quarantine import recorded_keys
from zfish_assets.domain.crawl import (
    CrawledDay, crawl_day, fingerprint, follow_other_days, judge_and_record, register_accepted,
)
from zfish_assets.resources.data_catalog import Catalog, GlueCatalog
from zfish_assets.resources.lake import Lake
from zfish_assets.backends.polling import PollTimeout, poll_until
from glue_scripts.zfish_etl import layout
from glue_scripts.zfish_etl.accepted import data_fingerprint
from glue_scripts.zfish_etl.lease import hold
from zfish_assets.dagster_names import DATA_FINGERPRINT, FINGERPRINT, QUARANTINED_ROWS

# LastCrawl.Status of a crawl that did not succeed: Glue says FAILED or CANCELLED (moto: STOPPED).
FAILED_CRAWLS = ("FAILED", "CANCELLED", "STOPPED")


class CrawlerError(RuntimeError):
    """The crawler could not be created or started, failed, timed out, or did not register the day."""


def crawler_name(database: str, table: str) -> str:
    return f"{database}-{table}"


def crawler_definition(name: str, role_arn: str, database: str, s3_path: str) -> dict[str, Any]:
    """The walkthrough's crawler of one table: one S3 target, on demand (no schedule), new folders only.

    A schema change is logged, not applied (Glue requires LOG with CRAWL_NEW_FOLDERS_ONLY), as the
    in-process crawl refuses drift; compatible schemas of the days are combined into one table.
    """
    return {
        "Name": name, "Role": role_arn, "DatabaseName": database,
        "Targets": {"S3Targets": [{"Path": s3_path}]},
        "SchemaChangePolicy": {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
        "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"},
        "Configuration": json.dumps({"Version": 1.0, "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"}}),
    }


def crawler_links(glue, name: str, last_crawl: dict[str, Any] | None = None) -> str:
    """Where to read about a crawl: its CloudWatch log stream and the crawler in the console."""
    region = glue.meta.region_name
    console = f"https://{region}.console.aws.amazon.com/glue/home?region={region}#/v2/data-catalog/crawlers/view/{name}"
    if last_crawl and last_crawl.get("LogGroup"):
        logs = (f"CloudWatch {last_crawl['LogGroup']} stream {last_crawl.get('LogStream', name)}"
                f" (messages {last_crawl.get('MessagePrefix', '')})")
    else:
        logs = f"CloudWatch /aws-glue/crawlers stream {name}"
    return f"logs: {logs}; console: {console}"


def require_crawler(glue, definition: dict[str, Any]) -> None:
    """Refuse (CrawlerError naming the fix) a crawler that is missing or crawls elsewhere.

    A run never creates or changes one: that is `zfish deploy`'s (the runner's policy has neither
    `glue:CreateCrawler` nor `iam:PassRole`, and a run should never change infrastructure).
    """
    name = definition["Name"]
    try:
        found = glue.get_crawler(Name=name)["Crawler"]
    except glue.exceptions.EntityNotFoundException:
        raise CrawlerError(f"crawler {name} does not exist: run `zfish deploy` (it creates the crawlers)") from None
    wanted = ([t["Path"] for t in definition["Targets"]["S3Targets"]], definition["DatabaseName"])
    actual = ([t["Path"] for t in found.get("Targets", {}).get("S3Targets", [])], found.get("DatabaseName"))
    if actual != wanted:
        raise CrawlerError(f"crawler {name} crawls {actual[0]} into {actual[1]}, not {wanted[0]} into {wanted[1]}: "
                           "run `zfish deploy` to put it back")


def run_crawler(glue, name: str, timeout_s: float, poll_interval_s: float) -> dict[str, Any]:
    """Start a crawl of `name` and wait for it; returns its `LastCrawl`, raises `CrawlerError` unless it succeeded.

    A crawl someone else started is waited for first: it may have begun before this day landed.
    """
    log = get_dagster_logger()
    def describe() -> dict[str, Any]:
        return glue.get_crawler(Name=name)["Crawler"]

    deadline = time.monotonic() + timeout_s

    def remaining() -> float:
        return max(0.0, deadline - time.monotonic())

    previous = describe().get("LastCrawl")
    try:
        while True:
            try:
                glue.start_crawler(Name=name)
                break
            except glue.exceptions.CrawlerRunningException:
                log.info(f"crawler {name} is already crawling: waiting for that crawl, then starting one")
                poll_until(describe, lambda c: c["State"] == "READY", remaining(), poll_interval_s)
                previous = describe().get("LastCrawl")
        log.info(f"started crawler {name}; {crawler_links(glue, name)}")
        crawler = poll_until(describe, lambda c: c["State"] == "READY" and c.get("LastCrawl") != previous,
                             remaining(), poll_interval_s)
    except PollTimeout as timeout:
        raise CrawlerError(f"crawler {name} still {timeout.last['State']} after {timeout_s:g}s (left running); "
                           f"{crawler_links(glue, name, timeout.last.get('LastCrawl'))}") from None
    last = crawler["LastCrawl"]
    if last.get("Status") in FAILED_CRAWLS:
        raise CrawlerError(f"crawler {name}'s crawl ended {last['Status']}: "
                           f"{last.get('ErrorMessage') or 'no error message'}; {crawler_links(glue, name, last)}")
    log.info(f"crawler {name} finished ({last.get('Status')}); {crawler_links(glue, name, last)}")
    return last


def crawl_day_with_crawler(lake: Lake, catalog: GlueCatalog, table: str, day: str) -> CrawledDay:
    """Day D registered by the table's Glue crawler; the partition then records the files' fingerprint.

    The fingerprint (beside the crawler's own `recordCount`, `objectCount`, `sizeKey`) is what the
    `partitions_match_lake` check compares to tell files changed since the crawl.
    """
    listed = lake.list_day(table, day)
    objects = [o for o in listed if o.is_data()]
    location = lake.day_uri(table, day)
    if not objects:  # nothing for the crawler: the day is judged (stray files) and dropped as in process
        return crawl_day(lake, catalog, table, day, own_schema=False)
    glue = catalog.client()
    name = crawler_name(catalog.database, table)
    require_crawler(glue, crawler_definition(name, "", catalog.database, lake.table_uri(table) + "/"))
    last = run_crawler(glue, name, catalog.crawler_timeout_s, catalog.crawler_poll_interval_s)
    parameters = catalog.partition_parameters(table).get(day)
    found = catalog.get_table(table)
    if parameters is None or found is None:
        raise CrawlerError(
            f"crawler {name} finished but {catalog.database}.{table} has no partition day={day} "
            f"({location}, {len(objects)} files): the day is not queryable. Are the files JSON the crawler "
            f"can classify, under the crawler's target? {crawler_links(glue, name, last)}"
        )
    # The crawler keeps no contract: the day is judged as the in-process crawl judges it, so its
    # quarantine ledger and accepted keys exist and the job leaves out the same lines in both modes,
    # and the partition the crawler registered over the raw files is pointed at the accepted rows,
    # so Athena reads the contract in this mode too. The crawler's own `recordCount` counted every
    # line: it is replaced by the accepted rows' count.
    judged, contract = judge_and_record(lake, catalog, table, day, listed)  # the crawler owns the table's schema
    location = register_accepted(lake, catalog, table, day, judged, {
        **parameters, "recordCount": str(judged.rows), QUARANTINED_ROWS: str(judged.quarantined_rows()),
        FINGERPRINT: fingerprint(listed), DATA_FINGERPRINT: data_fingerprint((o.name, o.size, o.version) for o in objects),
        **recorded_keys(contract, judged),
    })
    return CrawledDay(table, day, location, judged.rows, len(objects),
                      sum(o.size for o in objects), tuple(found.columns), registered=True, judged=judged)


CRAWL_WAIT_S = 900.0
"""How long a crawl waits for another crawl of the same table (a Glue crawler's run can take minutes)."""


def crawl(lake: Lake, catalog: Catalog, table: str, day: str, wait_s: float = CRAWL_WAIT_S) -> CrawledDay:
    """Register day D of `table` the way the catalog's `crawl_mode` says (see the module docstring),
    then re-judge the other days whose verdict that changed (`follow_other_days`).

    Crawls of one table take turns under its lease (`layout.crawl_lease_key`; a `flock` locally, S3's
    conditional writes on S3, as the table's writers and a day's landings): a crawl judges its day against
    the keys the other days' crawls recorded and re-judges other days, so two at once (two days' runs,
    a backfill beside the sensor's run) could each accept a key the other day delivers, or leave a day's
    partition on accepted rows the other crawl removed. Another crawl is waited for up to `wait_s`,
    naming it, then refused (`TableBusy`)."""
    with hold(lake.table_uri(table), f"crawl of {table} day={day}", wait_s, get_dagster_logger().info,
              lake.lease(layout.crawl_lease_key(table)), "the crawl's CRAWL_WAIT_S"):
        if isinstance(catalog, GlueCatalog) and catalog.crawl_mode == "crawler":
            return follow_other_days(lake, catalog, crawl_day_with_crawler(lake, catalog, table, day), own_schema=False)
        return follow_other_days(lake, catalog, crawl_day(lake, catalog, table, day))
