"""The incremental join path: the table the full-window re-upsert makes, with fewer partitions rewritten.

Both modes run the job's own entry point on one lake and catalog, each into its own table (the
incremental one through Dagster where its metadata matters). Tables are compared as hudi-rs reads
them, without Hudi's per-commit meta columns; what a commit rewrote comes from its commit file,
parsed here; the days that had news come from the raw files, never from the job.
"""

import json
import random
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import AssetKey

from glue_scripts.joined_fish_data import JobArgs, JobResult, run
from glue_scripts.zfish_etl.transform import changed_rows
from zfish_assets.domain.crawl import crawl_day
from zfish_assets.partitions import days_between
from zfish_assets.backends.hudi_reader import read_hudi_snapshot
from zfish_assets.deployments import resources_for
from zfish_assets.tools.runs import join_range
from zfish_assets.synthetic import SimSettings, parse_delay_spread
from zfish_assets.synthetic_rows import observations_for_day, outcomes_for_day
from zfish_assets.dagster_names import META_COLUMNS

START = "2025-04-05"
JOINED = "joined_fish_data"
FULL = "processed/joined_full_window"  # the twin table the full mode writes, beside the real one


# --- reading the tables, their commits and the raw files, independently of the job ---------------

def table_rows(uri: str) -> dict[str, dict]:
    """image_id -> every non-meta column, as hudi-rs reads the snapshot (a duplicate key fails)."""
    rows = read_hudi_snapshot(uri, {}).to_pylist()
    found = {r["image_id"]: {k: v for k, v in r.items() if k not in META_COLUMNS} for r in rows}
    assert len(found) == len(rows), "duplicate image_id"
    return found


def commit_files(uri: str) -> list[Path]:
    """The completed commits' files, oldest first."""
    return sorted(Path(uri.removeprefix("file://"), ".hoodie").glob("[0-9]*.commit"))


def last_commit(uri: str) -> dict:
    """What the latest commit wrote, from its commit file: partitions (days), files, bytes."""
    doc = json.loads(commit_files(uri)[-1].read_text())
    stats = doc["partitionToWriteStats"]
    return {
        "days": {p.removeprefix("day=") for p in stats},
        "files": sum(len(s) for s in stats.values()),
        "bytes": sum(int(w["totalWriteBytes"]) for s in stats.values() for w in s),
    }


def raw_labels(lake: Path, through: str) -> dict[str, tuple[str, bool]]:
    """fish -> (label day, label): the latest day wins, a positive label within a day."""
    labels: dict[str, tuple[str, bool]] = {}
    for path in sorted(lake.glob("outcomes/day=*/*.json")):
        day = path.parent.name.removeprefix("day=")
        if day <= through:
            for line in path.read_text().splitlines():
                record = json.loads(line)
                labels[record["fish_id"]] = max(labels.get(record["fish_id"], ("", False)),
                                                (day, record["condition_developed"]))
    return labels


def imaged_days(lake: Path) -> dict[str, set[str]]:
    """fish -> the days it was imaged on, from the observation files."""
    days: dict[str, set[str]] = {}
    for path in lake.glob("observations/day=*/*.json"):
        days.setdefault(json.loads(path.read_text())["fish_id"], set()).add(path.parent.name.removeprefix("day="))
    return days


def days_with_news(lake: Path, labels_before: dict[str, tuple[str, bool]], through: str) -> set[str]:
    """The image days of the fish whose label (or its day) is new or different since `labels_before`."""
    imaged = imaged_days(lake)
    changed = [fish for fish, label in raw_labels(lake, through).items() if labels_before.get(fish) != label]
    return {day for fish in changed for day in imaged.get(fish, ())}


def observations_on(lake: Path, day: str) -> int:
    """The observation files delivered for `day` (one image each)."""
    return len(list((lake / "observations" / f"day={day}").glob("*.json")))


def labeled_days(lake: Path, first: str, last: str, through: str) -> set[str]:
    """Days in [first, last] imaging at least one fish labeled by `through`: what the full mode rewrites."""
    labels = raw_labels(lake, through)
    return {d for fish, days in imaged_days(lake).items() if fish in labels for d in days if first <= d <= last}


# --- running the job ---------------------------------------------------------------------------

def job_args(defs, key: str, first: str, last: str, mode: str) -> JobArgs:
    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    return JobArgs(first_day=first, last_day=last, database=catalog.database, observations_table="observations",
                   outcomes_table="outcomes", target_path=lake.spark_uri(key), target_table=JOINED, join_mode=mode,
                   **catalog.job_arguments())


def both_modes(spark, defs, first: str, last: str) -> tuple[JobResult, JobResult]:
    """One evening in each mode, each into its own table."""
    incremental = run(spark, job_args(defs, f"processed/{JOINED}", first, last, "incremental"))
    full = run(spark, job_args(defs, FULL, first, last, "full"))
    return incremental, full


def first_evening(spark, defs, first: str, last: str) -> JobResult:
    """The first join, on no table: both modes upsert every labeled row (the same code path), so
    it runs once and the full mode's table starts as a copy of it."""
    result = run(spark, job_args(defs, f"processed/{JOINED}", first, last, "incremental"))
    lake = defs.resources["lake"]
    shutil.copytree(lake.uri(f"processed/{JOINED}").removeprefix("file://"), lake.uri(FULL).removeprefix("file://"))
    return result


def land_with_corrections(defs, day: str, corrections: dict[str, bool]) -> None:
    """Land `day`'s simulated labels plus the lab's corrections (fish -> label) in the same file."""
    def upload(folder: Path) -> None:
        defs.resources["simulator"].write_day("outcomes", day, folder)
        if not corrections:
            return  # a label-less day stays without a file
        folder.mkdir(parents=True, exist_ok=True)  # the simulator drew no label that day: corrections only
        with (folder / f"outcomes-{day}.json").open("a") as file:
            file.writelines(json.dumps({"fish_id": f, "condition_developed": v}) + "\n" for f, v in corrections.items())

    defs.resources["lake"].land_day("outcomes", day, upload)


def land_and_crawl_directly(defs, day: str, corrections: dict[str, bool] | None = None) -> None:
    """Land and crawl one day with the project's own functions (no Dagster run: the join is under test)."""
    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    simulator = defs.resources["simulator"]
    lake.land_day("observations", day, lambda folder: simulator.write_day("observations", day, folder))
    land_with_corrections(defs, day, corrections or {})
    for table in ("observations", "outcomes"):
        crawl_day(lake, catalog, table, day)


def latest_metadata(instance) -> dict[str, dict]:
    """Per partition of joined_fish_data, the metadata of its latest materialization."""
    records = instance.fetch_materializations(AssetKey(JOINED), limit=200).records
    return {r.partition_key: r.asset_materialization.metadata for r in reversed(records)}


# --- the walkthrough ---------------------------------------------------------------------------

def test_walkthrough_evenings_incremental_equals_full_and_rewrites_only_the_news(
        walkthrough, defs, instance, data_dir, spark):
    lake_dir = data_dir / "lake" / "use-cases/fish-demo"
    mine, full = defs.resources["hudi_io_manager"].table_uri(JOINED), defs.resources["lake"].uri(FULL)

    # Evening of 2025-05-10, the demo's backfill.
    assert first_evening(spark, defs, START, "2025-05-10").rows_upserted == 60

    # Evening of 2025-05-11: five labels, all for fish imaged on 2025-04-09. Incremental through
    # Dagster (its checks and metadata), full through the job alone.
    before = raw_labels(lake_dir, "2025-05-10")
    land_and_crawl_directly(defs, "2025-05-11")
    window = ("2025-04-06", "2025-05-11")
    second = join_range(defs, instance, *window)
    assert second.success and all(c.passed for c in second.checks), second.checks
    result = run(spark, job_args(defs, FULL, *window, "full"))
    assert table_rows(mine) == table_rows(full) and len(table_rows(mine)) == 75
    news = days_with_news(lake_dir, before, "2025-05-11")
    assert news == {"2025-04-09"}
    assert last_commit(mine)["days"] == news
    assert last_commit(full)["days"] == labeled_days(lake_dir, *window, "2025-05-11") == {
        "2025-04-06", "2025-04-07", "2025-04-08", "2025-04-09"}
    assert last_commit(mine)["files"] < last_commit(full)["files"]
    assert last_commit(mine)["bytes"] < last_commit(full)["bytes"]
    assert result.partitions_touched == sorted(last_commit(full)["days"]) and result.rows_upserted == 60

    # What the run recorded: per partition, and the run's figures once, on the window's last day.
    latest = latest_metadata(instance)
    news_day, quiet_day, run_day = latest["2025-04-09"], latest["2025-04-08"], latest[window[-1]]
    assert run_day["join_mode"].value == "incremental"
    assert run_day["redone"].value == ["2025-04-09"] and run_day["partitions_touched"].value == 1
    assert news_day["rows_upserted"].value == 15 and quiet_day["rows_upserted"].value == 0
    assert news_day["files_rewritten"].value == last_commit(mine)["files"]
    # Only the window's days with news were read: the relabeled fish's day and the evening's new day.
    # The other 34 were built from the same observations by the first evening and no label reached them.
    read = news | {"2025-05-11"}
    assert run_day["bytes_written"].value == last_commit(mine)["bytes"]
    assert run_day["observations_read"].value == sum(observations_on(lake_dir, d) for d in read)
    assert run_day["rows_labeled"].value == sum(1 for r in table_rows(mine).values() if r["day"] in read)
    assert run_day["days_unchanged"].value == len(days_between(*window)) - len(read)
    assert "join_mode" not in news_day and "window" not in quiet_day  # run-wide values recorded once
    assert quiet_day["dagster/partition_row_count"].value == 15 and quiet_day["files_rewritten"].value == 0

    # The lab re-uploads 2025-05-11 itself (crawled, as the lake sensor does) with two corrections:
    # a fish imaged inside the window (2025-04-06) and one imaged before it (2025-04-05), which the
    # full mode never reaches.
    rows_before = table_rows(mine)
    stored = {r["fish_id"]: r["condition_developed"] for r in rows_before.values()}
    before = raw_labels(lake_dir, "2025-05-11")
    land_with_corrections(defs, "2025-05-11", {f: not stored[f] for f in ("zfish_00000", "zfish_00005")})
    crawl_day(defs.resources["lake"], defs.resources["catalog"], "outcomes", "2025-05-11")
    corrected = join_range(defs, instance, *window)
    assert corrected.success and all(c.passed for c in corrected.checks), corrected.checks  # labels_are_latest too
    run(spark, job_args(defs, FULL, *window, "full"))
    news = days_with_news(lake_dir, before, "2025-05-11")
    assert news == {"2025-04-05", "2025-04-06"} and last_commit(mine)["days"] == news
    # No observation day changed, so none was read whole; the stale-label scan read only the days
    # holding rows labeled on the changed outcome day (2025-05-11) or on another label day of its
    # fish, not every day: computed here from the table's rows before the run and the raw labels.
    relabeled = {fish for fish, (day, _) in raw_labels(lake_dir, "2025-05-11").items() if day == "2025-05-11"}
    reached = {row["outcome_day"] for row in rows_before.values() if row["fish_id"] in relabeled} | {"2025-05-11"}
    scanned = latest_metadata(instance)[window[-1]]["stale_scan"].value  # a run-wide value: on the last day
    assert scanned == {"all_older_days": False,
                       "days": sorted({row["day"] for row in rows_before.values() if row["outcome_day"] in reached})}
    assert news <= set(scanned["days"]) and len(scanned["days"]) < len(days_between(*window))
    assert last_commit(full)["days"] == {"2025-04-06", "2025-04-07", "2025-04-08", "2025-04-09"}
    stale = {k for k, row in table_rows(full).items() if row["fish_id"] == "zfish_00000"}
    assert len(stale) == 3 and all(table_rows(full)[k]["condition_developed"] == stored["zfish_00000"] for k in stale)
    # Equivalence with a correction older than the window: the full mode plus a full run over
    # the day that fish was imaged.
    run(spark, job_args(defs, FULL, "2025-04-05", "2025-04-05", "full"))
    assert table_rows(mine) == table_rows(full)

    # No news: the incremental rerun writes nothing at all.
    commits = commit_files(mine)
    rerun = run(spark, job_args(defs, f"processed/{JOINED}", *window, "incremental"))
    assert rerun.rows_upserted == 0 and rerun.commit_instant is None and commit_files(mine) == commits
    assert rerun.days_scanned == []  # no label is newer than the last commit: no older day read
    # No day of the window changed since the last commit built it: none is read, none compared.
    assert rerun.days_read == [] and rerun.days_unchanged == days_between(*window) and rerun.rows_labeled == 0


# --- a random simulation: labels spread over 7-35 days, corrections --------------------------

@pytest.fixture
def spread_defs(monkeypatch, data_dir):
    """A simulator with spread label delays and its own seed; definitions built for it."""
    from zfish_assets.definitions import build_definitions

    for var, value in {"ZFISH_LABEL_DELAY_SPREAD": "7-35", "ZFISH_FISH_PER_DAY": "6", "ZFISH_IMAGES_PER_FISH": "2",
                       "ZFISH_SEED": "2024"}.items():
        monkeypatch.setenv(var, value)
    return build_definitions()


def test_random_simulation_with_spread_delays_and_corrections(spread_defs, data_dir, spark):
    defs = spread_defs
    lake_dir = data_dir / "lake" / "use-cases/fish-demo"
    mine, full = defs.resources["lake"].uri(f"processed/{JOINED}"), defs.resources["lake"].uri(FULL)
    for day in days_between(START, "2025-05-12"):
        land_and_crawl_directly(defs, day)
    assert first_evening(spark, defs, START, "2025-05-12").rows_upserted > 100

    # Evening of 2025-05-13, window [2025-04-08, 2025-05-13]: the day's spread labels, plus
    # corrections for three fish imaged in the window and one before it, and one label re-sent
    # unchanged (only its day moves).
    evening, (first, last) = "2025-05-13", ("2025-04-08", "2025-05-13")
    rng = random.Random(7)
    stored = {r["fish_id"]: (r["condition_developed"], r["day"]) for r in table_rows(mine).values()}
    inside = sorted(f for f, (_, d) in stored.items() if d >= first)
    picked = rng.sample(inside, 4)
    older = rng.choice(sorted(f for f, (_, d) in stored.items() if d < first))
    corrections = {f: not stored[f][0] for f in [*picked[:3], older]} | {picked[3]: stored[picked[3]][0]}
    before = raw_labels(lake_dir, "2025-05-12")
    land_and_crawl_directly(defs, evening, corrections)

    incremental, _ = both_modes(spark, defs, first, last)
    news = days_with_news(lake_dir, before, evening)
    assert stored[older][1] in news and stored[older][1] < first
    assert stored[older][1] in incremental.days_scanned  # the scan reached the corrected fish's day
    assert last_commit(mine)["days"] == news == set(incremental.partitions_touched)
    assert last_commit(full)["days"] == labeled_days(lake_dir, first, last, evening)
    assert len(news) < len(last_commit(full)["days"]) and last_commit(mine)["files"] < last_commit(full)["files"]
    # Every day but the older fish's is the full mode's exactly; a full run over that day makes it all.
    others = {k: row for k, row in table_rows(mine).items() if row["day"] != stored[older][1]}
    assert others == {k: row for k, row in table_rows(full).items() if row["day"] != stored[older][1]}
    run(spark, job_args(defs, FULL, stored[older][1], stored[older][1], "full"))
    assert table_rows(mine) == table_rows(full)
    assert all(row["condition_developed"] == corrections[row["fish_id"]] and row["outcome_day"] == evening
               for row in table_rows(mine).values() if row["fish_id"] in corrections)


# --- the pieces ----------------------------------------------------------------------------------

def test_changed_rows_are_new_or_different_in_any_column(spark):
    ddl = "image_id string, length_mm double, outcome_day string, day string"
    stored = spark.createDataFrame([("a", 1.0, "d1", "x"), ("b", 2.0, None, "x"), ("c", 3.0, "d1", "y")], ddl)
    candidates = spark.createDataFrame(
        [("a", 1.0, "d1", "x"), ("b", 2.0, None, "x"), ("c", 3.5, "d1", "y"), ("d", 4.0, "d2", "y"),
         ("a2", 1.0, "d2", "x")], ddl)
    assert sorted(r["image_id"] for r in changed_rows(candidates, stored).collect()) == ["a2", "c", "d"]
    retyped = stored.withColumn("length_mm", stored.length_mm.cast("float"))
    assert changed_rows(candidates, retyped).count() == 5


def test_delay_spread_labels_each_fish_once_between_7_and_35_days_later(monkeypatch):
    sim = SimSettings(start=date.fromisoformat(START), fish_per_day=30, label_delay_spread=(7, 35))
    days = [date.fromisoformat(START) + timedelta(days=n) for n in range(80)]
    imaged = {row["fish_id"]: day for day in days for row in observations_for_day(sim, day)}
    delays: dict[str, list[int]] = {}
    for day in days:
        for row in outcomes_for_day(sim, day):
            delays.setdefault(row["fish_id"], []).append((day - imaged[row["fish_id"]]).days)
    assert set(delays) >= {f for f, d in imaged.items() if d <= days[44]}  # 44 + 35 days fit in the 80
    assert all(len(d) == 1 and 7 <= d[0] <= 35 for d in delays.values())
    assert len({d[0] for d in delays.values()}) == 29  # every delay of 7..35 occurs, not one

    monkeypatch.setenv("ZFISH_LABEL_DELAY_SPREAD", "7-35")
    assert SimSettings.from_env().label_delay_spread == (7, 35)
    assert resources_for()["simulator"].sim_settings().label_delay_spread == (7, 35)
    monkeypatch.setenv("ZFISH_LABEL_DELAY_SPREAD", "35-7")
    with pytest.raises(ValueError, match="ZFISH_LABEL_DELAY_SPREAD='35-7'"):
        SimSettings.from_env()
    assert parse_delay_spread("off") is None and parse_delay_spread("") is None
