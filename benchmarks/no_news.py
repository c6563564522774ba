"""An evening with no news, end to end, in a fresh process: wall time by phase, and proof that Spark never ran.

`.venv/bin/python benchmarks/no_news.py` seeds 36 days of history at the walkthrough's settings
(2025-04-05..2025-05-10, backfilled in one join run, untimed), runs the evening of 2025-05-11 in a
fresh process (untimed: it has news), then runs that evening again in another fresh process, as a
rerun (a retried schedule, a click in the UI) does: the project's two jobs, landing and crawling
the same files with the crawled tables' checks, then the join of the window [D-35, D] with the
joined table's checks. Nothing
it reads changed, so the join must not call the engine: the run counts the JVMs under its process
and whether a Spark session exists (both must be none). Target (issue "Performance III"): 1.5 s or
less, no Spark action.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import harness
import pipeline

TARGET_S = 1.5


def no_news_evening(offset: int) -> dict[str, Any]:
    """The evening of day `offset` again, timed by phase; the JVMs and Spark sessions it left behind."""
    today = harness.day(offset)
    os.environ["ZFISH_CLOCK"] = f"{today}T18:00:00Z"
    phases = harness.Phases()
    with phases("imports+definitions"):
        from dagster import AssetKey, DagsterInstance

        from zfish_assets.dagster_names import JOIN_JOB, LAND_AND_CRAWL_JOB
        from zfish_assets.partitions import evening_window

        defs = pipeline.definitions()
    first, _ = evening_window(today)
    with DagsterInstance.ephemeral() as instance:
        with phases(pipeline.LAND_PHASE):
            crawled = pipeline.run_job(defs, instance, LAND_AND_CRAWL_JOB, partition=today)
        with phases("join (no news) and its checks"):
            joined = pipeline.run_job(defs, instance, JOIN_JOB, first=first, last=today)
        last = instance.fetch_materializations(AssetKey("joined_fish_data"), limit=1).records[0]
        skipped = last.asset_materialization.metadata["engine_skipped"].value
    session = sys.modules.get("pyspark.sql") and sys.modules["pyspark.sql"].SparkSession.getActiveSession()
    return {"day": today, "window": f"{first}..{today}", "checks": crawled["checks"] + joined["checks"],
            "seconds": phases.seconds, "steps": {**crawled["steps"], **joined["steps"]},
            "engine_skipped": skipped, "jvms": len(harness.jvm_pids()), "spark_session": session is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history-days", type=int, default=36, help="days before the measured evening")
    parser.add_argument("--fish-per-day", type=int, default=5, help="the walkthrough's 5 (x3 images)")
    args = parser.parse_args()
    results = harness.Results("no_news", vars(args))
    with harness.scratch_data_dir(ZFISH_FISH_PER_DAY=str(args.fish_per_day)):
        harness.in_fresh_process(pipeline.seed_history, 0, args.history_days - 1)
        harness.in_fresh_process(pipeline.evening, args.history_days)
        measured = harness.in_fresh_process(no_news_evening, args.history_days)
    rows = [{"phase": phase, "seconds": round(seconds, 2)} for phase, seconds in measured["seconds"].items()]
    total = sum(measured["seconds"].values())
    rows.append({"phase": "total", "seconds": round(total, 2)})
    for row in rows:
        results.add(row)
    no_spark = measured["engine_skipped"] and not measured["jvms"] and not measured["spark_session"]
    met = total <= TARGET_S and no_spark
    results.document.update(day=measured["day"], window=measured["window"], checks_passed=measured["checks"], steps=measured["steps"],
                            engine_skipped=measured["engine_skipped"], jvms=measured["jvms"],
                            spark_session=measured["spark_session"], target_s=TARGET_S, met=met)
    harness.print_table(rows, f"no-news evening of {measured['day']} (window {measured['window']}, "
                              f"{measured['checks']} checks passed)")
    harness.print_steps(measured["steps"])
    print(f"engine skipped: {measured['engine_skipped']}; JVMs under the run's process: {measured['jvms']}; "
          f"Spark session: {'yes' if measured['spark_session'] else 'none'}")
    print(f"target <= {TARGET_S} s with no Spark: {'met' if met else 'missed'} ({total:.2f} s)")
    results.write()


if __name__ == "__main__":
    main()
