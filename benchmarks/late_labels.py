"""Late labels: the evening's join when a label arrives for a fish imaged k days long ago, at two history lengths.

`.venv/bin/python benchmarks/late_labels.py` seeds each history (simulator + crawl per day, one join
over every day; untimed) in a scratch data dir, with extra fish `late_K` imaged on K old days
(days 2 .. K+1 of the history, long before any evening's window). Then, in the same process and
Spark session (so the Spark start is not part of the figures), one evening per K lands and crawls
its day with the simulator's labels plus one label for `late_K`, and the job joins its window
[D-35, D] (incremental): the timed figure is that join, as the job reports it (`days_read`, the
days outside the window it redid, the observations it read). K=0 is an evening without a late
label. The cost should grow with K (the days read for the late fish), not with the history.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from pathlib import Path

import harness
import pipeline

LATE_SPANS = (0, 1, 4, 16)
FIRST_LATE_DAY = 2  # offset of the first day holding a late fish's images


def _late_image(fish: str, day: str, n: int) -> dict:
    return {"fish_id": fish, "image_id": f"late-{fish}-{day}-{n}", "timestamp": f"{day}T12:00:{n:02d}Z",
            "age_days": 9, "treatment": "drug_a", "genetic_markers": {"gene_a": 0.5, "gene_b": 0.1, "gene_c": -0.4},
            "length_mm": 4.1, "sex": "M"}


def _seed(history_days: int, spans: tuple[int, ...]) -> None:
    """Days [0, history) generated, the late fish's images added, every day crawled, one join over all."""
    from zfish_assets.domain.crawl import crawl_day
    from zfish_assets.synthetic import SimSettings, generate

    defs = pipeline.definitions()
    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    root = Path(lake.local_day_dir("observations", harness.day(0))).parent.parent
    generate(SimSettings.from_env(), root, harness.SIM_START, harness.SIM_START + timedelta(days=history_days - 1))
    for k in spans:
        for offset in range(FIRST_LATE_DAY, FIRST_LATE_DAY + k):
            folder = Path(lake.local_day_dir("observations", harness.day(offset)))
            image = _late_image(f"late_{k}", harness.day(offset), 0)
            (folder / f"{image['image_id']}.json").write_text(json.dumps(image))
    for offset in range(history_days):
        for table in ("observations", "outcomes"):
            crawl_day(lake, catalog, table, harness.day(offset))


def _join(spark, defs, first: str, last: str):
    from glue_scripts.joined_fish_data import JobArgs, run

    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    return run(spark, JobArgs(first_day=first, last_day=last, database=catalog.database,
                              observations_table="observations", outcomes_table="outcomes",
                              target_path=lake.spark_uri("processed/joined_fish_data"),
                              target_table="joined_fish_data", join_mode="incremental", **catalog.job_arguments()))


def _evening(spark, offset: int, k: int) -> dict:
    """Land and crawl day `offset` with one label for `late_K` (none for K=0), then the timed join."""
    import os

    from zfish_assets.domain.crawl import crawl_day
    from zfish_assets.partitions import evening_window
    from zfish_assets.synthetic import SimSettings, write_day

    today = harness.day(offset)
    os.environ["ZFISH_CLOCK"] = f"{today}T18:00:00Z"
    defs = pipeline.definitions()
    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    for table in ("observations", "outcomes"):
        def write(folder: Path, table: str = table) -> None:
            write_day(SimSettings.from_env(), table, harness.SIM_START + timedelta(days=offset), folder)
            if table == "outcomes" and k:
                with (folder / f"outcomes-{today}.json").open("a") as labels:
                    labels.write(json.dumps({"fish_id": f"late_{k}", "condition_developed": True}) + "\n")
        lake.land_day(table, today, write)
        crawl_day(lake, catalog, table, today)
    first, last = evening_window(today)
    began = time.perf_counter()
    result = _join(spark, defs, first, last)
    seconds = time.perf_counter() - began
    return {"K (late fish's days)": k, "join s": round(seconds, 2), "days read": len(result.days_read),
            "days redone outside window": len(result.days_placed), "days indexed": len(result.days_indexed),
            "observations read": result.observations_read, "rows upserted": result.rows_upserted}


def measure(history_days: int, spans: tuple[int, ...]) -> list[dict]:
    """In this process: seed `history_days`, then one evening per K in `spans`, on consecutive days."""
    import os

    from zfish_assets.backends.spark_session import get_spark_session

    os.environ["ZFISH_CLOCK"] = f"{harness.day(history_days - 1)}T18:00:00Z"
    _seed(history_days, spans)
    spark = get_spark_session()
    _join(spark, pipeline.definitions(), harness.day(0), harness.day(history_days - 1))
    rows = [{"history days": history_days, **_evening(spark, history_days + i, k)} for i, k in enumerate(spans)]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fish-per-day", type=int, default=5)
    parser.add_argument("--histories", type=int, nargs=2, default=[60, 400], metavar=("SHORT", "LONG"))
    parser.add_argument("--spans", type=int, nargs="+", default=list(LATE_SPANS), metavar="K")
    args = parser.parse_args()
    results = harness.Results("late_labels", vars(args))
    rows: list[dict] = []
    for history in args.histories:
        with harness.scratch_data_dir(ZFISH_FISH_PER_DAY=str(args.fish_per_day)):
            rows += harness.in_fresh_process(measure, history, tuple(args.spans))
    for row in rows:
        results.add(row)
    harness.print_table(rows, f"the evening's join with a label for a fish imaged on K old days, "
                              f"{args.fish_per_day * 3} observations a day")
    results.write()


if __name__ == "__main__":
    main()
