"""What an incremental commit saw of the labels, so the next evening's stale-label scan reads only
the older days a newer label can have made stale, not every older partition.

An incremental run leaves no stored row with a stale label (it redoes every day holding one). So
after its commit, a row can only turn stale through a label the commit did not see: an outcome day
registered since, or one whose rows changed. Each incremental commit records, in its Hudi commit
metadata (key `layout.label_state_key()`, written atomically with the commit):

- `outcome_days`: a digest of each registered outcome day's labels, as the run read them;
- `label_days`: for each label day, the image days holding rows that carry a label of that day
  (every stored row's pair is in it: the first recording run reads them from the whole table, later
  ones add the pairs of the rows they write; a pair left behind by a row since relabeled only
  widens a later scan).

The next run compares the digests: the fish with a label on a new or changed day are the only ones
whose rows can be stale, and those rows carry one of that fish's label days (or a changed day's
label it no longer holds), so the image days to scan are `label_days` of those label days. Whenever that cannot be known (the last commit records
no state: a `full` run, an older writer; or an outcome day it saw is gone) the scan reads every
older day, as before, and the commit records a fresh state.

The same metadata records what the commit's rows were built from on the observations' side
(`observation_days`: each day read, with its registered observations' fingerprint,
`observation_versions`). A day of the range whose version is still the recorded one has rows that
only a label can have made wrong, which the stale-label scan and the late-label plan find as they
do for the days before the range; so an incremental run reads only the range's days with news.
Only a run's last commit records them, and only it records the labels as the run read them: a run
killed between its upsert and its delete leaves a commit with neither (`interim`), and the next run
reads its whole range again and scans the older days the killed run scanned (finding the keys to delete).

Every commit also records the job code that made it (`code`, `own_code.source_digest`): rows built
by other code are not what this code makes of the same inputs (a changed join or label rule), so a
state recorded by other code counts as none, and the run reads its range, scans every older day and
places every label once, as a first run does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from glue_scripts.zfish_etl import layout
from glue_scripts.zfish_etl.accepted import day_fingerprint
from glue_scripts.zfish_etl.catalog import CatalogTable
from glue_scripts.zfish_etl.hudi import commit_metadata, completed_instants
from glue_scripts.zfish_etl.own_code import source_digest

LABEL_STATE_KEY = layout.label_state_key()
UNREGISTERED = "-"  # the version of a day with no registered observations


def observation_versions(table: CatalogTable, days: Iterable[str]) -> dict[str, str | None]:
    """What the job reads of each day's observations, as a string equal only for equal reads: the day's
    `day_fingerprint` (the rule the IO manager's no-news skip uses too) and the table's columns (an
    evolved schema reads every day anew, with the members it added); `UNREGISTERED` for a day with no
    partition. None: the crawl recorded no fingerprint (another writer registered it), so the day
    always counts as having news."""
    columns = hashlib.sha256(json.dumps(table.columns).encode()).hexdigest()[:16]

    def version(day: str) -> str | None:
        if day not in table.partitions:
            return UNREGISTERED
        found = day_fingerprint(table.partitions[day], table.parameters.get(day, {}))
        return None if found is None else f"{found}:{columns}"

    return {day: version(day) for day in days}


@dataclass(frozen=True)
class LabelState:
    """The labels a commit saw (`outcome_days`: day -> digest) and where their rows live (`label_days`)."""

    outcome_days: dict[str, str]
    label_days: dict[str, list[str]]
    observation_days: dict[str, str] | None = None  # day -> `observation_versions` its rows were built from
    code: str = ""  # the job code that made the commit (`source_digest`)

    def to_json(self) -> str:
        doc = {"outcome_days": self.outcome_days, "label_days": self.label_days, "code": self.code}
        if self.observation_days is not None:
            doc["observation_days"] = self.observation_days
        return json.dumps(doc, sort_keys=True)

    def interim(self, previous: "LabelState | None") -> "LabelState | None":
        """What a commit before the run's last records (its upsert, when a delete follows): where the rows
        live (`label_days`), but the labels as the `previous` state saw them and no observation versions.
        A run killed between its commits has made only part of what the new labels ask (a withdrawn
        label's rows on older days are deleted by the last commit): the next run must find the same
        outcome days new, and so scan the same older days, and read its range whole. None (no state:
        the next run scans everything) when there was no previous state."""
        if previous is None:
            return None
        return LabelState(previous.outcome_days, self.label_days, code=self.code)

    def registered_observation_days(self) -> list[str]:
        """The observation days the commit read as registered (`observation_days` not `UNREGISTERED`)."""
        return sorted(d for d, v in (self.observation_days or {}).items() if v != UNREGISTERED)

    def unchanged(self, days: Iterable[str], versions: Mapping[str, str | None]) -> list[str]:
        """The `days` whose observations' version is the one their stored rows were built from."""
        built = self.observation_days or {}
        return [d for d in days if versions.get(d) is not None and built.get(d) == versions.get(d)]

    @classmethod
    def from_commit(cls, metadata: dict, code: str) -> "LabelState | None":
        """The state recorded in a commit's metadata by the job code `code`; None when it records none, or
        was made by other code (whose rows this code may not make: see the module docstring)."""
        raw = (metadata.get("extraMetadata") or {}).get(LABEL_STATE_KEY)
        if not raw:
            return None
        try:
            doc = json.loads(raw)
            if doc.get("code") != code:
                return None
            return cls(outcome_days=dict(doc["outcome_days"]), label_days=dict(doc["label_days"]),
                       observation_days=doc.get("observation_days"), code=code)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # A state that cannot be read (cut short, edited by hand) is none: the run reads its whole range and
            # scans every older day, as a first run does, and its commit records a fresh state. Nothing is lost.
            print(f"zfish: the label state in the table's last commit cannot be read ({type(exc).__name__}: {exc}); "
                  "reading every older day and recording a fresh state")
            return None


@dataclass(frozen=True)
class OutcomeDays:
    """The registered outcome days as read now (`outcome_days`)."""

    digests: dict[str, str]  # day -> digest of its labels
    fish_days: dict[str, list[str]]  # day -> the label days of its fish (asked for only with a previous state)
    relabeled: frozenset[str] | None  # the fish labeled on a day new or changed since then (None: no previous state)


def outcome_days(outcomes: DataFrame, previous: dict[str, str] | None) -> OutcomeDays:
    """Per outcome day, in one Spark action (each has a fixed cost of 0.2-3 s here, docs/performance.md): a
    digest of its labels (rows, and two order-free folds of a hash of each row) and, given the `previous`
    commit's digests, the days holding a label of a fish labeled on it (its fish's label days) and, of the
    days whose digest is not the previous one, the fish labeled there (what late labels look for).

    The digest is spelled by Spark, and the days whose fish are collected are compared there with
    the same strings, so the fish collected are exactly those of the days `changed_days` names.
    """
    row_hash = F.xxhash64("fish_id", "condition_developed")
    per_day = outcomes.groupBy("day").agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(row_hash.bitwiseAND(F.lit(0xFFFFFFFF))).alias("s"),
        F.bit_xor(row_hash).alias("x"),
    ).select("day", F.concat_ws(":", "n", "s", "x").alias("digest"))
    if previous is not None:
        fish = outcomes.where(F.col("fish_id").isNotNull()).select("fish_id", "day").distinct()
        linked = fish.join(fish.withColumnRenamed("day", "linked"), "fish_id").groupBy("day").agg(
            F.collect_set("linked").alias("fish_days"), F.collect_set("fish_id").alias("fish"))
        # The previous digests as a literal map, not a frame to join: a join adds a broadcast stage to the action.
        before = F.try_element_at(F.create_map(*[F.lit(v) for item in sorted(previous.items()) for v in item]),
                                  F.col("day")) if previous else F.lit(None).cast("string")
        changed = before.isNull() | (before != F.col("digest"))
        per_day = per_day.join(linked, "day", "left").select(
            "day", "digest", "fish_days", F.when(changed, F.col("fish")).alias("fish"))
    rows = per_day.collect()
    digests = {r["day"]: r["digest"] for r in rows}
    if previous is None:
        return OutcomeDays(digests, {}, None)
    return OutcomeDays(digests, {r["day"]: sorted(r["fish_days"] or ()) for r in rows},
                       frozenset(f for r in rows if r["fish"] is not None for f in r["fish"]))


def changed_days(previous: LabelState, digests: dict[str, str]) -> list[str]:
    """The outcome days new or changed since the `previous` state."""
    return sorted(d for d, digest in digests.items() if previous.outcome_days.get(d) != digest)


def label_day_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """`label_days` of (label day, image day) pairs: label day -> sorted image days."""
    days: dict[str, set[str]] = {}
    for label_day, day in pairs:
        days.setdefault(label_day, set()).add(day)
    return {k: sorted(v) for k, v in sorted(days.items())}


def merged(*maps: dict[str, list[str]]) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {}
    for m in maps:
        for k, v in m.items():
            out.setdefault(k, set()).update(v)
    return {k: sorted(v) for k, v in sorted(out.items())}


def days_to_scan(previous: LabelState | None, digests: dict[str, str],
                 fish_days: dict[str, list[str]]) -> list[str] | None:
    """The image days whose stored rows may carry a stale label since the `previous` commit's state;
    None when every day must be scanned (no state, or an outcome day it saw is no longer registered).
    `fish_days`: each outcome day's fish's label days (`outcome_days`)."""
    if previous is None or set(previous.outcome_days) - set(digests):
        return None
    changed = changed_days(previous, digests)
    # A changed day's rows (also labels it no longer holds), and every label day of its fish.
    label_days = {d for day in changed for d in fish_days.get(day, [])}
    return sorted({d for label_day in label_days | set(changed) for d in previous.label_days.get(label_day, [])})


@dataclass(frozen=True)
class StaleLabelScan:
    """The evening's plan for the stale-label scan: the labels as read now, and the older days to scan."""

    previous: LabelState | None  # what the table's last commit recorded
    digests: dict[str, str]  # the outcome days as this run read them
    days: list[str] | None  # the image days to scan; None: every older day
    relabeled: frozenset[str] | None = None  # the fish labeled on the days changed since `previous` (None: no state)

    def next_state(self, stored: dict[str, list[str]], written: dict[str, list[str]],
                   built: dict[str, str], since: str) -> LabelState:
        """The state this run's commit records: these labels, where the rows of each label day live
        (the previous commit's pairs, else `stored`: every stored row's, plus `written`: those of the rows
        written), and the observations' versions the table's days from `since` were built from (the
        previous commit's, updated with `built`: those of the days this run read). The run collects
        `stored` with its counts, and only when there is no previous state."""
        known = self.previous.label_days if self.previous is not None else stored
        before = (self.previous.observation_days or {}) if self.previous is not None else {}
        versions = {d: v for d, v in sorted({**before, **built}.items()) if d >= since}
        return LabelState(outcome_days=self.digests, label_days=merged(known, written), observation_days=versions,
                          code=source_digest())


def plan_stale_label_scan(base_path: str, outcomes: DataFrame) -> StaleLabelScan:
    """The scan for this run, from the table's last commit's recorded state and the labels read now."""
    instants = completed_instants(base_path)
    previous = LabelState.from_commit(commit_metadata(base_path, instants[-1]), source_digest()) if instants else None
    found = outcome_days(outcomes, previous.outcome_days if previous is not None else None)
    days = days_to_scan(previous, found.digests, found.fish_days)
    return StaleLabelScan(previous=previous, digests=found.digests, days=days, relabeled=found.relabeled)
