"""A join killed between its two commits (its upsert done, its delete not), then the next evening.

A run that deletes writes two commits: the upsert of new or changed rows, then the delete of the rows
the days it read no longer make, among them a withdrawn label's rows on days before the window, which
it read only because the label state named their outcome day as changed. The child (`crash_child.py
join`, the production job) is SIGKILLed while its delete writes the old day's new file, after its
upsert completed. The next run of the window must still delete those rows: the table is then what
the raw files say (computed here from them, never from the job).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from glue_scripts.joined_fish_data import run
from zfish_assets.domain.crawl import crawl_day
from zfish_assets.partitions import days_between
from zfish_assets.resources.data_catalog import LocalCatalog
from zfish_assets.resources.lake import LocalLake
from zfish_assets_tests.support.crash import hold_then_kill, job_args, land_and_crawl, start_child, timeline
from zfish_assets_tests.support.tables import as_expected, raw_expected, table_rows

OLD_DAY, LABEL_DAY = "2025-04-05", "2025-04-07"  # labels come two days after the images (crash.SIM)
WINDOW = ("2025-04-06", "2025-04-10")  # the evening after the withdrawal: OLD_DAY is before it


def completed(table: Path) -> list[str]:
    return [n for n in timeline(table) if n.endswith(".commit")]


def test_a_join_killed_between_its_upsert_and_its_delete_leaves_the_next_one_the_delete(tmp_path, spark, reliability):
    from zfish_assets_tests.support.crash_child import compile_hold_fs

    lake, catalog = LocalLake(root=str(tmp_path / "lake")), LocalCatalog(root=str(tmp_path / "catalog"))
    lake_dir, table = tmp_path / "lake" / "use-cases/fish-demo", tmp_path / "processed" / "joined_fish_data"
    # The evening's join, started now so its JVM warms meanwhile; it runs once `go` exists, and is held
    # while its delete writes OLD_DAY's new file, its upsert complete.
    args, go = job_args(str(tmp_path / "catalog"), table, *WINDOW), tmp_path / "go"
    env = {"ZFISH_CRASH_HOLD": rf"/joined_fish_data/day={OLD_DAY}/[^/]+\.parquet$", "ZFISH_CRASH_GO": str(go),
           "ZFISH_CRASH_SIGNAL": str(tmp_path / "held"), "JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}
    child = start_child(["join", json.dumps(asdict(args)), str(compile_hold_fs(tmp_path / "java"))], env,
                        tmp_path / "child")
    for day in days_between(OLD_DAY, "2025-04-09"):
        for raw in ("observations", "outcomes"):
            land_and_crawl(lake, catalog, raw, day)
    assert run(spark, job_args(str(tmp_path / "catalog"), table, OLD_DAY, "2025-04-09")).commit_instant
    assert as_expected(table_rows(f"file://{table}")) == raw_expected(lake_dir)

    # LABEL_DAY re-delivered without one fish's label, its only one (a fish imaged on OLD_DAY), and a new day.
    labels = lake.local_day_dir("outcomes", LABEL_DAY)
    lines = [line for path in sorted(labels.glob("*.json")) for line in path.read_text().splitlines() if line.strip()]
    withdrawn = json.loads(lines[0])["fish_id"]
    kept = [line for line in lines if json.loads(line)["fish_id"] != withdrawn]
    lake.land_day("outcomes", LABEL_DAY, lambda folder: (folder / "labels.json").write_text("\n".join(kept) + "\n"))
    crawl_day(lake, catalog, "outcomes", LABEL_DAY)
    for raw in ("observations", "outcomes"):
        land_and_crawl(lake, catalog, raw, WINDOW[1])
    expected = raw_expected(lake_dir)
    gone = {k for k, v in as_expected(table_rows(f"file://{table}")).items() if k not in expected}
    assert gone and all(v[0] == OLD_DAY for k, v in as_expected(table_rows(f"file://{table}")).items() if k in gone)

    # The evening's join, killed while its delete writes OLD_DAY's new file: its upsert is complete.
    before = completed(table)
    go.touch()
    hold_then_kill(child, tmp_path / "held", tmp_path / "child")
    assert len(completed(table)) == len(before) + 1  # the upsert's commit, and not the delete's
    assert gone <= set(table_rows(f"file://{table}"))

    # The next run of the window (the evening retried) deletes them.
    rerun = run(spark, args)
    assert OLD_DAY in rerun.days_read and rerun.rows_deleted == len(gone)
    stored = as_expected(table_rows(f"file://{table}"))
    assert stored == expected
    reliability.add("crash", "join killed between its upsert and its delete", rows_in=len(expected),
                    rows_out=len(stored), quarantined=0, lost=len(set(expected) - set(stored)),
                    duplicates=len(set(stored) - set(expected)))
