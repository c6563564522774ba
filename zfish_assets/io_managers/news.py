"""No Spark for no news: whether a run of joined_fish_data would find its inputs as its days' last run left them.

A join of a window is a function of what it reads: the window's observation days, every registered
outcome day (a label of any lateness reaches any day: `late_labels`, `fish_index`), the join mode,
the job's code, and the table it upserts into. Each of these already has a cheap fingerprint: the
crawl points each day's partition at its accepted rows' content-addressed folder and records its
files' fingerprint in the partition's parameters (one catalog read per table lists both; see
`day_fingerprint`), `job_code.script_sha256` names the code, and the table's timeline names its latest
commit. So, after each successful write, the IO manager records the window's `Inputs` beside the
table together with the table's latest commit instant (`NewsLedger.record`); a later run of the same
window whose `Inputs` and table instant equal the record has nothing to learn from the engine, and
skips it (its checks still run: they read the table).

Why this is safe, case by case: a new, re-delivered or retracted observation day of the window, a
new, changed or retracted outcome day anywhere, a partition registered without a fingerprint (it
cannot be compared: always news), other code or another join mode all change `Inputs`; a commit by
anyone since (another window's evening, another writer) changes the table's latest instant. A day
whose files in the lake are no longer those its crawl recorded (emptied: the crawl registers nothing
for a day without files; or changed and not crawled again) cannot be fingerprinted: news. The
inputs are read before the engine runs and recorded after it: a crawl landing meanwhile makes the
record older than what the run read, which can only cost a run, never skip one. A record is written
only when the table's latest instant is the run's own commit (or, when it committed nothing, the
instant it started from), and only after the catalog registration: a crash before that leaves no
record, or an older one that no longer matches, and the next run runs. Records are whole objects
(`Lake.put_bytes`), one per window.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from dagster import get_dagster_logger

from glue_scripts.zfish_etl import layout
from glue_scripts.zfish_etl.accepted import day_fingerprint
from glue_scripts.zfish_etl.job_args import JobResult
from zfish_assets.domain.crawl import fingerprint
from zfish_assets.backends.hudi_reader import latest_instant
from zfish_assets.dagster_names import FINGERPRINT
from zfish_assets.resources.data_catalog import Catalog
from zfish_assets.resources.lake import Lake


@dataclass(frozen=True)
class Inputs:
    """What a join of `window` reads, by fingerprint; a day without a partition has none (None)."""

    window: str  # first..last
    mode: str
    code: str  # the job code's digest
    sources: tuple[str, str]  # the crawled tables' names
    columns: tuple[str, str]  # their columns, as the catalog lists them
    observations: dict[str, str | None]  # each window day -> its fingerprint
    outcomes: dict[str, str]  # every registered outcome day -> its fingerprint

    def to_json(self) -> dict:
        return {**asdict(self), "sources": list(self.sources), "columns": list(self.columns)}

    @classmethod
    def from_json(cls, doc: Mapping) -> Inputs:
        return cls(**{**doc, "sources": tuple(doc["sources"]), "columns": tuple(doc["columns"])})


def table_fingerprints(catalog: Catalog, table: str, lake: Lake | None,
                       days: tuple[str, ...] | None = None) -> tuple[str, dict[str, str | None]]:
    """The crawled table's columns (the job's schema) and each registered day's fingerprint (of `days`
    only, if given). With `lake`, a day whose files differ from what its crawl recorded (a day emptied or
    changed and not registered again: the crawl registers nothing for a day without files) has none."""
    found = catalog.get_table(table)
    if found is None:
        return "", {}
    columns = json.dumps([list(c) for c in found.columns])
    wanted = sorted(found.partitions if days is None else set(days) & set(found.partitions))
    prints = {day: day_fingerprint(found.partitions[day], found.parameters.get(day, {})) for day in wanted}
    if lake is not None:
        stale = {d for d in wanted
                 if found.parameters.get(d, {}).get(FINGERPRINT) != fingerprint(lake.list_day(table, d))}
        prints.update(dict.fromkeys(stale))
    return columns, prints


def read_inputs(catalog: Catalog, days: tuple[str, ...], mode: str, code: str,
                sources: tuple[str, str], lake: Lake | None = None) -> Inputs | None:
    """The run's inputs as the catalog fingerprints them; None when one cannot be fingerprinted (then: news)."""
    observed_columns, observed = table_fingerprints(catalog, sources[0], lake, days)
    labeled_columns, outcomes = table_fingerprints(catalog, sources[1], lake)
    observations = {day: observed.get(day) for day in days}
    if any(observed.get(d, "absent") is None for d in days) or any(f is None for f in outcomes.values()):
        return None
    return Inputs(f"{days[0]}..{days[-1]}", mode, code, sources, (observed_columns, labeled_columns),
                  observations, outcomes)


@dataclass(frozen=True)
class NewsLedger:
    """The records of the inputs each window's last successful run read, and the table instant it left."""

    lake: Lake
    table: str
    uri: str  # the table's, as hudi-rs reads it
    storage_options: Mapping[str, str]

    def _key(self, window: str) -> str:
        return layout.news_key(self.table, window)

    def instant(self) -> str | None:
        """The table's latest completed data commit (None: no table yet)."""
        return latest_instant(self.uri, self.storage_options)

    def unchanged_since(self, inputs: Inputs | None) -> str | None:
        """The instant of the table as the window's last run left it, when nothing read since differs; else None."""
        if inputs is None:
            return None
        raw = self.lake.get_many([self._key(inputs.window)])[0]
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
            recorded, instant = Inputs.from_json(doc["inputs"]), doc["instant"]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # The record only lets a run skip the engine: one that cannot be read (cut short, edited by hand)
            # is none, and this run, running, writes it again.
            get_dagster_logger().warning(f"{self.lake.uri(self._key(inputs.window))} cannot be read "
                                         f"({type(exc).__name__}: {exc}): running the join, which records it again")
            return None
        if recorded != inputs:
            return None
        now = self.instant()
        return now if now is not None and now == instant else None

    def record(self, inputs: Inputs | None, before: str | None, result: JobResult) -> str | None:
        """Record `inputs` with the table's instant, when that instant is this run's (`before`: the table's
        latest when the run started); the instant recorded, or None when nothing was recorded."""
        if inputs is None:
            return None
        own = [i for i in (result.commit_instant, result.delete_instant) if i]
        now = self.instant()
        if now is None or now != (max(own) if own else before):
            return None  # another commit since this run's: the table is not what these inputs made
        self.lake.put_bytes(self._key(inputs.window),
                            json.dumps({"inputs": inputs.to_json(), "instant": now}, sort_keys=True).encode())
        return now


def skipped_result(first_day: str, last_day: str, mode) -> JobResult:
    """The result of a run that did not call the engine: nothing read, nothing written."""
    return JobResult(first_day=first_day, last_day=last_day, observations_read=0, rows_upserted=0, rows_per_day={},
                     commit_instant=None, files_written=0, bytes_written=0, join_mode=mode, rows_labeled=0,
                     days_read=[], partitions_touched=[], files_replaced=0, bytes_replaced=0, days_scanned=[])
