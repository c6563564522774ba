"""Late labels: a label arriving 40, 100 or 400 days after its fish's images reaches every one of them
on that evening's run, reading only the days that hold them; so does a label changed months later.

A small lake over 14 months, with data on a dozen days only (days without data cost nothing): three
fish whose labels arrive 40, 100 and 400 days after their last image (two of them imaged on two
days), and on-time fish sharing some of their days. Evenings run as the schedule would (each over
its 36-day window); after each, the table must equal what the raw files say (computed here from
them, never from the job). That the evening read no day without the late fish's images is shown
from the files: those days' observation files are overwritten with bytes the contract rejects
after they were crawled, so a run that opened them would fail ("files changed after the crawl");
the job's own report (`days_read`, `days_placed`, `days_indexed`) agrees.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from dagster import AssetKey

from glue_scripts.joined_fish_data import JobArgs, JobResult, run
from glue_scripts.zfish_etl.fish_index import index_root
from zfish_assets.domain.crawl import crawl_day
from zfish_assets.backends.hudi_reader import read_hudi_snapshot
from zfish_assets.partitions import days_between, evening_window
from zfish_assets.tools.runs import join_range

JOINED = "joined_fish_data"
START, LAST_EVENING = "2024-01-01", "2025-02-13"
# fish -> {image day: images}, and the day its label arrives.
IMAGED = {
    "late_a": {"2024-01-03": 2, "2024-01-10": 1}, "late_b": {"2024-03-01": 2},
    "late_c": {"2024-05-01": 1, "2024-05-03": 1},
    "ontime_w": {"2024-01-10": 1}, "ontime_x": {"2024-02-01": 2}, "ontime_z": {"2024-03-01": 1},
    "ontime_y": {"2024-06-01": 1},
}
LABELED = {"ontime_w": "2024-01-12", "ontime_x": "2024-02-03", "ontime_z": "2024-03-03", "ontime_y": "2024-06-05",
           "late_b": "2024-06-09", "late_c": "2024-06-12", "late_a": LAST_EVENING}
FLIPPED = {"late_c": LAST_EVENING}  # a label changed 245 days after the first one


def lateness(fish: str) -> int:
    return (date.fromisoformat(LABELED[fish]) - date.fromisoformat(max(IMAGED[fish]))).days


@pytest.fixture
def late_defs(monkeypatch, data_dir):
    from zfish_assets.definitions import build_definitions

    monkeypatch.setenv("ZFISH_SIM_START", START)
    monkeypatch.setenv("ZFISH_CLOCK", f"{LAST_EVENING}T18:00:00Z")
    return build_definitions()


# --- the lab's files, and what they say, independently of the job ---------------------------------

def observation(fish: str, day: str, n: int) -> dict:
    return {"fish_id": fish, "image_id": f"img-{fish}-{day}-{n}", "timestamp": f"{day}T09:{n:02d}:00Z",
            "age_days": 5, "treatment": "control", "genetic_markers": {"gene_a": 0.1, "gene_b": -0.2, "gene_c": 0.3},
            "length_mm": 3.5, "sex": "F"}


def deliver(defs, day: str) -> None:
    """Land and crawl `day`'s observations and labels (those it has)."""
    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    images = [observation(f, day, n) for f, days in IMAGED.items() for n in range(days.get(day, 0))]
    labels = [{"fish_id": f, "condition_developed": len(f) % 2 == 0} for f, d in LABELED.items() if d == day]
    labels += [{"fish_id": f, "condition_developed": len(f) % 2 != 0} for f, d in FLIPPED.items() if d == day]

    def write(rows: list[dict], one_file: bool):
        def into(folder: Path) -> None:
            if one_file:
                (folder / f"outcomes-{day}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
            else:
                for row in rows:
                    (folder / f"{row['image_id']}.json").write_text(json.dumps(row))
        return into

    for table, rows, one_file in (("observations", images, False), ("outcomes", labels, True)):
        if rows:
            lake.land_day(table, day, write(rows, one_file))
            crawl_day(lake, catalog, table, day)


def raw_expected(lake: Path, spoiled: dict[Path, str]) -> dict[str, tuple[str, str, bool, str]]:
    """image_id -> (day, fish, label, label day) of every image of a labeled fish (latest label day wins);
    `spoiled`: the files `spoil` overwrote, with the text the crawl registered."""
    labels: dict[str, tuple[str, bool]] = {}
    for path in sorted(lake.glob("outcomes/day=*/*.json")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            labels[record["fish_id"]] = max(labels.get(record["fish_id"], ("", False)),
                                            (path.parent.name.removeprefix("day="), record["condition_developed"]))
    expected = {}
    for path in lake.glob("observations/day=*/*.json"):
        record = json.loads(spoiled.get(path) or path.read_text())
        if record["fish_id"] in labels:
            label_day, label = labels[record["fish_id"]]
            expected[record["image_id"]] = (path.parent.name.removeprefix("day="), record["fish_id"], label, label_day)
    return expected


def table_rows(uri: str) -> dict[str, tuple[str, str, bool, str]]:
    rows = read_hudi_snapshot(uri, {}).to_pylist()
    assert len({r["image_id"] for r in rows}) == len(rows), "duplicate image_id"
    return {r["image_id"]: (r["day"], r["fish_id"], r["condition_developed"], r["outcome_day"]) for r in rows}


def spoil(lake: Path, day: str, spoiled: dict[Path, str]) -> None:
    """Overwrite the crawled day's observation files with lines the contract rejects (any read of them
    fails), keeping what they held in `spoiled`."""
    paths = sorted((lake / f"observations/day={day}").glob("*.json"))
    assert paths, day
    for path in paths:
        spoiled[path] = path.read_text()
        path.write_text("{not json\n")


# --- the evenings ---------------------------------------------------------------------------------

def evening(spark, defs, day: str) -> JobResult:
    """The job over evening `day`'s window, incremental (the default mode)."""
    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    first, last = evening_window(day)
    return run(spark, JobArgs(first_day=first, last_day=last, database=catalog.database,
                              observations_table="observations", outcomes_table="outcomes",
                              target_path=lake.spark_uri(f"processed/{JOINED}"), target_table=JOINED,
                              join_mode="incremental", **catalog.job_arguments()))


def deliver_through(defs, delivered: set[str], day: str) -> None:
    for d in sorted({d for days in IMAGED.values() for d in days} | set(LABELED.values())):
        if d <= day and d not in delivered:
            deliver(defs, d)
            delivered.add(d)


def test_labels_40_100_and_400_days_late_reach_every_image_reading_only_their_days(
        late_defs, data_dir, instance, spark):
    defs = late_defs
    lake = data_dir / "lake" / "use-cases/fish-demo"
    table = defs.resources["lake"].uri(f"processed/{JOINED}")
    assert sorted(lateness(f) for f in ("late_a", "late_b", "late_c")) == [40, 100, 400]
    delivered: set[str] = set()
    spoiled: dict[Path, str] = {}

    # On-time labels, joined by the evenings their windows cover.
    for day in ("2024-02-05", "2024-03-05", "2024-06-05"):
        deliver_through(defs, delivered, day)
        evening(spark, defs, day)
        assert table_rows(table) == raw_expected(lake, spoiled)
    assert {fish for _, fish, _, _ in table_rows(table).values()} == {"ontime_w", "ontime_x", "ontime_z", "ontime_y"}

    # 100 days late, with the fish index deleted first: the evening rebuilds it from the days outside
    # its window (each read once to index it) and redoes the one day holding late_b's images.
    shutil.rmtree(index_root(table).removeprefix("file://"))
    deliver_through(defs, delivered, "2024-06-09")
    result = evening(spark, defs, "2024-06-09")
    assert table_rows(table) == raw_expected(lake, spoiled)
    window = set(days_between(*evening_window("2024-06-09")))
    older = sorted(d for d in delivered if d not in window and any(d in days for days in IMAGED.values()))
    assert result.days_indexed == older and result.days_placed == ["2024-03-01"]
    assert set(result.days_read) - window == {"2024-03-01"}

    # 40 days late: only late_c's two days are read besides the window; 2024-02-01, which holds
    # none of its images, is spoiled and the run succeeds.
    spoil(lake, "2024-02-01", spoiled)
    deliver_through(defs, delivered, "2024-06-12")
    result = evening(spark, defs, "2024-06-12")
    assert result.days_placed == sorted(IMAGED["late_c"]) and result.days_indexed == []
    assert set(result.days_read) - set(days_between(*evening_window("2024-06-12"))) == set(IMAGED["late_c"])
    assert table_rows(table) == raw_expected(lake, spoiled)  # 2024-02-01's rows untouched: it was not read

    # 400 days late, and late_c's label changed, through Dagster: the IO manager registers and records
    # the four old days, and the run's checks cover them. Every other day with data is spoiled.
    for day in ("2024-03-01", "2024-06-01"):
        spoil(lake, day, spoiled)
    deliver_through(defs, delivered, LAST_EVENING)
    first, last = evening_window(LAST_EVENING)
    summary = join_range(defs, instance, first, last)
    assert summary.success and all(c.passed for c in summary.checks), summary.checks
    expected = raw_expected(lake, spoiled)
    assert table_rows(table) == expected
    assert {image: row for image, row in expected.items() if row[1] in ("late_a", "late_c")} == {
        f"img-{f}-{d}-{n}": (d, f, f == "late_a", LAST_EVENING)
        for f in ("late_a", "late_c") for d, k in IMAGED[f].items() for n in range(k)}
    old_days = sorted([*IMAGED["late_a"], *IMAGED["late_c"]])
    assert set(defs.resources["catalog"].partition_parameters(JOINED)) >= set(old_days)
    recorded = instance.fetch_materializations(AssetKey(JOINED), limit=100).records
    mine = {r.partition_key: r.asset_materialization.metadata for r in recorded if r.run_id == summary.run_id}
    assert set(old_days) <= set(mine) and set(mine) - set(old_days) == set(days_between(first, last))
    n_old = sum(1 for row in expected.values() if row[0] in old_days)
    assert [mine[d]["dagster/partition_row_count"].value for d in old_days] == [
        sum(1 for row in expected.values() if row[0] == d) for d in old_days]
    run_day = mine[last]
    assert run_day["late_labels"].value == {"days": old_days, "indexed": []}
    checked = {c.name: c.description for c in summary.checks}
    assert checked["labeled_rows"].startswith(f"{n_old} labeled rows over {len(old_days)} days")
    assert checked["labels_are_latest"] == "every row has its fish's latest label"


def test_the_first_evening_of_a_new_table_places_labels_on_images_before_its_window(late_defs, data_dir, spark):
    """A table started on a lake that already holds months of crawled days: its first evening (no
    commit yet, so every label is new to it) places each label on its fish's images before the
    window, as later evenings do. Before, those images stayed out, the evening's checks passed, and
    later evenings skipped them (their labels were no longer new) until a label of their fish changed."""
    defs = late_defs
    lake = data_dir / "lake" / "use-cases/fish-demo"
    table = defs.resources["lake"].uri(f"processed/{JOINED}")
    evening_day = "2024-06-12"
    deliver_through(defs, set(), evening_day)
    result = evening(spark, defs, evening_day)
    expected = raw_expected(lake, {})
    assert table_rows(table) == expected
    window = set(days_between(*evening_window(evening_day)))
    labeled_by_then = {f for f, d in LABELED.items() if d <= evening_day}
    assert result.days_placed == sorted({d for f in labeled_by_then for d in IMAGED[f]} - window)
    assert {row[0] for row in expected.values()} - window == set(result.days_placed)  # it placed something


@pytest.mark.parametrize("withdrawal", ["day retracted", "day re-delivered without it"])
def test_a_label_withdrawn_months_after_its_images_takes_their_rows_out(late_defs, data_dir, spark, withdrawal):
    """Withdrawing a label is a label change of any lateness too: late_b's only label (its outcome day
    retracted, or re-delivered with another fish's label only) takes its images, imaged 100 days
    before, out of the table on that evening's run, not only once a run happens to cover their day."""
    defs = late_defs
    lake = data_dir / "lake" / "use-cases/fish-demo"
    table = defs.resources["lake"].uri(f"processed/{JOINED}")
    deliver_through(defs, set(), "2024-06-12")
    evening(spark, defs, "2024-06-12")
    assert {row[1] for row in table_rows(table).values()} >= {"late_b"}
    lake_resource, catalog = defs.resources["lake"], defs.resources["catalog"]
    other = '{"fish_id": "ontime_y", "condition_developed": false}\n'
    lake_resource.land_day("outcomes", LABELED["late_b"], lambda folder: None if withdrawal == "day retracted"
                           else (folder / "labels.json").write_text(other))
    crawl_day(lake_resource, catalog, "outcomes", LABELED["late_b"])
    evening(spark, defs, "2024-06-13")
    expected = raw_expected(lake, {})
    assert "late_b" not in {row[1] for row in expected.values()}
    assert table_rows(table) == expected
