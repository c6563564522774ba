"""Deletes: a re-delivery that drops, moves or adds images and a withdrawn label leave the table a fresh build makes.

A small lake (labels two days after the images) is joined once; then the lab re-delivers an
observation day without two of its images (one of them re-delivered under the next day) and with
a new one, and re-delivers a label day without one fish's only label. The incremental run
(through Dagster, for its metadata) and the full run (the job alone) must then hold exactly what a
fresh full build from the final lake writes into an empty table path, which in turn must be what
the raw files say (computed here from the files, never from the job). The training set cut
before the delete is re-made byte for byte from its pinned commit.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from dagster import AssetKey

from glue_scripts.joined_fish_data import JobArgs, run
from zfish_assets.assets.training import MANIFEST, SPLITS, read_parquet
from zfish_assets.domain.crawl import crawl_day
from zfish_assets.partitions import days_between
from zfish_assets.backends.hudi_reader import read_hudi_snapshot
from zfish_assets.tools.runs import join_range, materialize_training
from zfish_assets_tests.support.tables import as_expected, raw_expected, table_rows

JOINED = "joined_fish_data"
FULL, FRESH = "processed/joined_full_mode", "processed/joined_fresh_build"
WINDOW = ("2025-04-05", "2025-04-12")
DAYS = days_between(*WINDOW)
DROPPED_DAY, MOVED_TO, LABEL_DAY = "2025-04-06", "2025-04-07", "2025-04-10"
EXPORT_FILES = (MANIFEST, *(f"{s}.parquet" for s in SPLITS))


@pytest.fixture
def small_defs(monkeypatch, data_dir):
    """Labels two days after the images, so a week of days has labels; definitions built for it."""
    from zfish_assets.definitions import build_definitions

    monkeypatch.setenv("ZFISH_LABEL_DELAY_DAYS", "2")
    return build_definitions()


# --- the raw files, read independently of the job ------------------------------------------------


def report(reliability, kind: str, uri: str, expected: dict) -> None:
    """The table against the raw files, in the suite's reliability summary: stale rows count as duplicates."""
    rows = read_hudi_snapshot(uri, {}).to_pylist()
    kept = {r["image_id"] for r in rows if r["image_id"] in expected and r["day"] == expected[r["image_id"]][0]}
    reliability.add("delete", kind, rows_in=len(expected), rows_out=len(rows), quarantined=0,
                    lost=len(set(expected) - kept), duplicates=len(rows) - len(kept))


def last_operation(uri: str) -> str:
    """The operation of the table's latest completed commit, from its commit file."""
    latest = sorted(Path(uri.removeprefix("file://"), ".hoodie").glob("[0-9]*.commit"))[-1]
    return json.loads(latest.read_text())["operationType"]


# --- running and re-delivering --------------------------------------------------------------------

def job_args(defs, key: str, mode: str) -> JobArgs:
    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    return JobArgs(first_day=WINDOW[0], last_day=WINDOW[1], database=catalog.database,
                   observations_table="observations", outcomes_table="outcomes", target_path=lake.spark_uri(key),
                   target_table=JOINED, join_mode=mode,
                   **catalog.job_arguments())


def redeliver(defs, table: str, day: str, change) -> None:
    """Land `day` again with its current files as `change(files)` returns them (name -> bytes), and crawl it."""
    lake = defs.resources["lake"]
    folder = lake.local_day_dir(table, day)
    files = change({p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()})

    def write(dest: Path) -> None:
        for name, data in files.items():
            (dest / name).write_bytes(data)

    lake.land_day(table, day, write)
    crawl_day(lake, defs.resources["catalog"], table, day)


def export_bytes(defs, instance) -> tuple[str, dict[str, bytes]]:
    """The latest training export's commit and the bytes of each of its files."""
    metadata = instance.fetch_materializations(AssetKey("training_set"), limit=1).records[0].asset_materialization.metadata
    folder = metadata["manifest_key"].value.rsplit("/", 1)[0]
    return metadata["commit_instant"].value, {n: defs.resources["lake"].get_bytes(f"{folder}/{n}") for n in EXPORT_FILES}


def test_redelivery_and_withdrawn_label_give_the_fresh_build(small_defs, data_dir, instance, spark, reliability):
    defs, lake = small_defs, small_defs.resources["lake"]
    lake_dir = data_dir / "lake" / "use-cases/fish-demo"
    simulator, catalog = defs.resources["simulator"], defs.resources["catalog"]
    for day in DAYS:
        for table in ("observations", "outcomes"):
            lake.land_day(table, day, lambda folder, t=table, d=day: simulator.write_day(t, d, folder))
            crawl_day(lake, catalog, table, day)
    mine, full, fresh = lake.uri(f"processed/{JOINED}"), lake.uri(FULL), lake.uri(FRESH)
    assert join_range(defs, instance, *WINDOW).success
    run(spark, job_args(defs, FULL, "full"))
    before = as_expected(table_rows(mine))
    assert before == raw_expected(lake_dir) and len(before) == 6 * 15  # fish of 04-05..04-10 are labeled
    assert materialize_training(defs, instance).success
    pinned, pinned_files = export_bytes(defs, instance)

    # The lab re-delivers DROPPED_DAY without two images (one moves to the next day) and with a new one.
    day_files = {p.name: json.loads(p.read_text()) for p in (lake_dir / f"observations/day={DROPPED_DAY}").glob("*.json")}
    dropped, moved = sorted(day_files)[:2]
    added = {**day_files[dropped], "image_id": "0000added-0000-0000-0000-000000000000", "length_mm": 4.2}

    def drop_and_add(files: dict[str, bytes]) -> dict[str, bytes]:
        kept = {n: b for n, b in files.items() if n not in (dropped, moved)}
        return {**kept, f"{added['image_id']}.json": json.dumps(added).encode()}

    redeliver(defs, "observations", DROPPED_DAY, drop_and_add)
    redeliver(defs, "observations", MOVED_TO, lambda files: {**files, moved: json.dumps(day_files[moved]).encode()})
    # ... and LABEL_DAY without the label of one fish (its only one): its images leave the table.
    label_lines = (lake_dir / f"outcomes/day={LABEL_DAY}").glob("*.json")
    withdrawn = json.loads(next(label_lines).read_text().splitlines()[0])["fish_id"]

    def withdraw(files: dict[str, bytes]) -> dict[str, bytes]:
        return {n: b"".join(line for line in b.splitlines(keepends=True) if withdrawn.encode() not in line)
                for n, b in files.items()}

    redeliver(defs, "outcomes", LABEL_DAY, withdraw)
    assert not list(lake_dir.glob("quarantine/*/day=*/quarantine.jsonl")) or not any(
        p.read_text().strip() for p in lake_dir.glob("quarantine/*/day=*/quarantine.jsonl")), "nothing quarantined"

    expected = raw_expected(lake_dir)
    gone = {k: v for k, v in before.items() if k not in expected or expected[k][0] != v[0]}
    assert {v[0] for v in gone.values()} == {DROPPED_DAY, "2025-04-08"}  # the withdrawn fish was imaged on 04-08
    assert expected[day_files[moved]["image_id"]][0] == MOVED_TO and added["image_id"] in expected

    incremental = join_range(defs, instance, *WINDOW)
    assert incremental.success and all(c.passed for c in incremental.checks), incremental.checks
    assert last_operation(mine) == "DELETE"  # Hudi's delete path, a commit of the run's own
    full_result = run(spark, job_args(defs, FULL, "full"))
    fresh_result = run(spark, job_args(defs, FRESH, "full"))
    assert fresh_result.rows_deleted == 0 and full_result.rows_deleted == len(gone)
    assert as_expected(table_rows(fresh)) == expected
    assert table_rows(mine) == table_rows(fresh) == table_rows(full)
    report(reliability, "re-delivery drops, moves, adds; label withdrawn", mine, expected)

    # What the run recorded: how many rows each day lost.
    records = instance.fetch_materializations(AssetKey(JOINED), limit=200).records
    latest = {r.partition_key: r.asset_materialization.metadata for r in reversed(records)}
    per_day = Counter(v[0] for v in gone.values())
    assert {d: latest[d]["rows_deleted"].value for d in DAYS} == {d: per_day.get(d, 0) for d in DAYS}
    assert latest[DAYS[-1]]["deleted"].value == dict(sorted(per_day.items()))  # the run's, on its last day
    assert latest[DAYS[0]]["rows_deleted"].value == 0 and latest[DROPPED_DAY]["rows_deleted"].value == 2

    # The training set cut before the delete is re-made, byte for byte, from its pinned commit.
    assert materialize_training(defs, instance, {"as_of_commit": pinned}).success
    assert export_bytes(defs, instance) == (pinned, pinned_files)
    assert materialize_training(defs, instance).success
    _, now = export_bytes(defs, instance)
    now_ids = {i for s in SPLITS for i in read_parquet(now[f"{s}.parquet"])["image_id"].to_pylist()}
    assert now_ids == set(expected) and not now_ids & {k for k in gone if k not in expected}

    # A rerun has nothing left to upsert or delete: no commit.
    rerun = run(spark, job_args(defs, f"processed/{JOINED}", "incremental"))
    assert rerun.commit_instant is None and rerun.delete_instant is None and rerun.rows_deleted == 0


# --- random edit scripts: whatever the lab drops, moves, adds, withdraws or flips ----------------

RANDOM_DAYS = days_between("2025-04-05", "2025-04-08")


def observation(rng, day: str, fish: str, image: str) -> dict:
    return {"fish_id": fish, "image_id": image, "timestamp": f"{day}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z",
            "age_days": rng.randrange(1, 30), "treatment": rng.choice(["control", "drug_x"]),
            "genetic_markers": {g: round(rng.uniform(-1, 1), 4) for g in ("gene_a", "gene_b", "gene_c")},
            "length_mm": round(rng.uniform(2, 9), 2), "sex": rng.choice("MF")}


def land_lake(lake, catalog, images: dict[str, dict[str, dict]], labels: dict[str, dict[str, bool]]) -> None:
    """Land every day as given (day -> image_id -> record; day -> fish -> label) and crawl it; observations
    twice, so an image moved to a day crawled before the day it left is accepted on the second pass."""
    for day in RANDOM_DAYS:
        def observations(folder: Path, day=day) -> None:
            for image, record in images[day].items():
                (folder / f"{image}.json").write_text(json.dumps(record))

        def outcomes(folder: Path, day=day) -> None:
            if labels[day]:
                (folder / f"outcomes-{day}.json").write_text("".join(
                    json.dumps({"fish_id": f, "condition_developed": v}) + "\n" for f, v in labels[day].items()))

        lake.land_day("observations", day, observations)
        lake.land_day("outcomes", day, outcomes)
    for table in ("observations", "observations", "outcomes"):
        for day in RANDOM_DAYS:
            crawl_day(lake, catalog, table, day)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_edits_give_the_fresh_build(seed, tmp_path, spark, reliability):
    """A random lake, joined in both modes; then a random re-delivery of every day: images dropped, moved to
    another day, added; labels withdrawn, flipped, added. Both modes must then equal a fresh build, and the
    fresh build the raw files."""
    import random

    from zfish_assets.resources.data_catalog import LocalCatalog
    from zfish_assets.resources.lake import LocalLake

    rng = random.Random(seed)
    lake, catalog = LocalLake(root=str(tmp_path / "lake")), LocalCatalog(root=str(tmp_path / "catalog"))
    fish = {day: [f"fish_{i}{k}" for k in range(3)] for i, day in enumerate(RANDOM_DAYS)}
    images = {day: {f"img-{seed}-{i}-{n}": observation(rng, day, f, f"img-{seed}-{i}-{n}")
                    for n, f in enumerate(fish[day] * 2)} for i, day in enumerate(RANDOM_DAYS)}
    labels: dict[str, dict[str, bool]] = {day: {} for day in RANDOM_DAYS}
    for i, day in enumerate(RANDOM_DAYS):
        for f in fish[day]:
            if rng.random() < 0.8:
                labels[RANDOM_DAYS[min(i + rng.randrange(2), len(RANDOM_DAYS) - 1)]][f] = rng.random() < 0.5
    land_lake(lake, catalog, images, labels)

    def job(key: str, mode: str) -> JobArgs:
        return JobArgs(first_day=RANDOM_DAYS[0], last_day=RANDOM_DAYS[-1], database=catalog.database,
                       observations_table="observations", outcomes_table="outcomes",
                       target_path=lake.spark_uri(key), target_table=JOINED, join_mode=mode,
                       **catalog.job_arguments())

    mine, full, fresh = (f"processed/{name}" for name in ("incremental", "full", "fresh"))
    run(spark, job(mine, "incremental"))
    run(spark, job(full, "full"))
    assert as_expected(table_rows(lake.uri(mine))) == raw_expected(Path(lake.uri().removeprefix("file://")))

    # The re-delivery: every day's images and labels edited at random.
    edited = {day: {} for day in RANDOM_DAYS}
    for day in RANDOM_DAYS:
        for image, record in images[day].items():
            fate = rng.random()
            if fate < 0.15:
                continue  # dropped
            edited[rng.choice([d for d in RANDOM_DAYS if d != day]) if fate < 0.3 else day][image] = record
        for n in range(rng.randrange(3)):  # added: new images of any fish
            new = f"img-{seed}-new-{day}-{n}"
            edited[day][new] = observation(rng, day, rng.choice([f for fs in fish.values() for f in fs]), new)
    relabeled = {day: {} for day in RANDOM_DAYS}
    for day, given in labels.items():
        for f, label in given.items():
            fate = rng.random()
            if fate >= 0.2:  # below: withdrawn
                relabeled[day][f] = (not label) if fate < 0.35 else label
    for f in [f for fs in fish.values() for f in fs if not any(f in given for given in labels.values())]:
        if rng.random() < 0.3:
            relabeled[rng.choice(RANDOM_DAYS)][f] = rng.random() < 0.5
    land_lake(lake, catalog, edited, relabeled)
    quarantine = [p for p in tmp_path.glob("lake/**/quarantine.jsonl") if p.read_text().strip()]
    assert not quarantine, [p.read_text() for p in quarantine]

    expected = raw_expected(Path(lake.uri().removeprefix("file://")))
    before = as_expected(table_rows(lake.uri(mine)))
    gone = Counter(v[0] for k, v in before.items() if expected.get(k, (None,))[0] != v[0])
    incremental = run(spark, job(mine, "incremental"))
    run(spark, job(full, "full"))
    run(spark, job(fresh, "full"))
    assert as_expected(table_rows(lake.uri(fresh))) == expected
    assert table_rows(lake.uri(mine)) == table_rows(lake.uri(fresh)) == table_rows(lake.uri(full))
    assert incremental.deleted_per_day == dict(sorted(gone.items())) and sum(gone.values()) > 0
    report(reliability, f"random re-delivery of every day (seed {seed})", lake.uri(mine), expected)


def test_a_retracted_day_leaves_the_table(tmp_path, spark, reliability):
    """An observation day and a label day re-delivered empty: their crawls drop them from the
    catalog, and the next incremental run deletes their rows (the retracted images, and the images
    of the fish whose only label went), leaving what a fresh build of the final lake holds."""
    import random

    from zfish_assets.domain.glue_crawler import crawl
    from zfish_assets.resources.data_catalog import LocalCatalog
    from zfish_assets.resources.lake import LocalLake

    rng = random.Random(7)
    lake, catalog = LocalLake(root=str(tmp_path / "lake")), LocalCatalog(root=str(tmp_path / "catalog"))
    fish = {day: [f"fish_{i}{k}" for k in range(2)] for i, day in enumerate(RANDOM_DAYS)}
    images = {day: {f"img-{i}-{n}": observation(rng, day, f, f"img-{i}-{n}") for n, f in enumerate(fish[day] * 2)}
              for i, day in enumerate(RANDOM_DAYS)}
    labels = {day: {f: rng.random() < 0.5 for f in fish[day]} for day in RANDOM_DAYS}
    land_lake(lake, catalog, images, labels)

    def job(key: str, mode: str) -> JobArgs:
        return JobArgs(first_day=RANDOM_DAYS[0], last_day=RANDOM_DAYS[-1], database=catalog.database,
                       observations_table="observations", outcomes_table="outcomes",
                       target_path=lake.spark_uri(key), target_table=JOINED, join_mode=mode,
                       **catalog.job_arguments())

    mine, fresh = f"processed/{JOINED}", "processed/fresh"
    run(spark, job(mine, "incremental"))
    lake_dir = Path(lake.uri().removeprefix("file://"))
    assert as_expected(table_rows(lake.uri(mine))) == raw_expected(lake_dir)

    retracted, unlabeled = RANDOM_DAYS[1], RANDOM_DAYS[2]
    for table, day in (("observations", retracted), ("outcomes", unlabeled)):
        lake.land_day(table, day, lambda folder: None)
        assert not crawl(lake, catalog, table, day).registered
        assert day not in catalog.partition_parameters(table)
    expected = raw_expected(lake_dir)
    gone = Counter(day for _, (day, *_rest) in as_expected(table_rows(lake.uri(mine))).items())
    gone.subtract(Counter(v[0] for v in expected.values()))
    incremental = run(spark, job(mine, "incremental"))
    run(spark, job(fresh, "full"))
    assert as_expected(table_rows(lake.uri(mine))) == as_expected(table_rows(lake.uri(fresh))) == expected
    assert not any(v[0] == retracted for v in expected.values())
    assert incremental.rows_deleted == sum(gone.values()) == 4 + 4  # the day's 4 images, the 4 of the fish unlabeled
    report(reliability, "a whole observation day and a whole label day retracted", lake.uri(mine), expected)
