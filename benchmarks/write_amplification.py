"""Write amplification of the evening run: what each join rewrites, against what had news.

`.venv/bin/python benchmarks/write_amplification.py` seeds `--history-days` of history in a scratch
data dir, then runs `--evenings` evenings (land and crawl the day, join the window [D-35, D]) and
reads each evening's Hudi commit file: files and bytes written and rewritten (a file group's new
version under copy-on-write), partitions touched. The partitions with news are computed
independently, as the days whose rows differ between the table's snapshots before and after the
run (hudi-rs), and their bytes are the size of those partitions' current base files.

Scenarios: the walkthrough's settings (5 fish a day, every label 32 days late) and labels spread over
7-35 days (`ZFISH_LABEL_DELAY_SPREAD=7-35`), each under `ZFISH_JOIN_MODE=full` (the walkthrough's
36-day re-upsert) and `ZFISH_JOIN_MODE=incremental`. Target (issue #8): the incremental run writes at most
1.2 x the bytes of the partitions with news.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import harness
import pipeline
from zfish_assets.dagster_names import META_COLUMNS

TARGET_RATIO = 1.2
SPREAD = "7-35"


def _snapshot_by_day(uri: str, options: dict[str, str]) -> dict[str, frozenset[tuple]]:
    """The table's rows per day without Hudi's meta columns: what a reader sees, to tell news from churn."""
    from zfish_assets.backends.hudi_reader import read_hudi_snapshot, table_exists

    if not table_exists(uri, options):
        return {}
    table = read_hudi_snapshot(uri, options)
    columns = [c for c in table.column_names if c not in META_COLUMNS]
    by_day: dict[str, set[tuple]] = {}
    for row in table.select(columns).to_pylist():
        by_day.setdefault(row["day"], set()).add(tuple(row[c] for c in columns))
    return {d: frozenset(rows) for d, rows in by_day.items()}


def _partition_bytes(uri: str, options: dict[str, str], table_dir: Path) -> dict[str, int]:
    """Per day, the bytes of the base files the current snapshot reads (the latest file slices)."""
    from zfish_assets.backends.hudi_reader import read_hudi_snapshot

    table = read_hudi_snapshot(uri, options).select(["day", "_hoodie_file_name"])
    files = {(d, f) for d, f in zip(table["day"].to_pylist(), table["_hoodie_file_name"].to_pylist())}
    sizes: dict[str, int] = {}
    for day, name in files:
        sizes[day] = sizes.get(day, 0) + (table_dir / f"day={day}" / name).stat().st_size
    return sizes


def scenario(history_days: int, evenings: int) -> list[dict[str, Any]]:
    """Seed the history, then run the evenings in this process; one row of figures per evening."""
    import time

    from dagster import DagsterInstance

    from zfish_assets.partitions import evening_window

    pipeline.seed_history(0, history_days - 1)
    rows = []
    for offset in range(history_days, history_days + evenings):
        today = harness.day(offset)
        first, _ = evening_window(today)
        os.environ["ZFISH_CLOCK"] = f"{today}T18:00:00Z"
        defs = pipeline.definitions()
        io_manager = defs.resources["hudi_io_manager"]
        uri, options = io_manager.table_uri("joined_fish_data"), defs.resources["lake"].storage_options()
        table_dir = Path(uri.removeprefix("file://"))
        before, commits_before = _snapshot_by_day(uri, options), pipeline.hudi_commits(table_dir)
        pipeline.land_and_crawl_directly(offset, offset)
        began = time.perf_counter()
        with DagsterInstance.ephemeral() as instance:
            pipeline.materialize_assets(defs, instance, ["joined_fish_data"], first=first, last=today)
        join_s = time.perf_counter() - began
        after = _snapshot_by_day(uri, options)
        news = sorted(d for d in set(before) | set(after) if before.get(d) != after.get(d))
        sizes = _partition_bytes(uri, options, table_dir)
        new_commits = [c for c in pipeline.hudi_commits(table_dir) if c not in commits_before]
        stats = [pipeline.commit_write_stats(table_dir, c) for c in new_commits]
        written = sum(s["bytes_written"] for s in stats)
        news_bytes = sum(sizes.get(d, 0) for d in news)
        labeled_in_window = [d for d in sizes if first <= d <= today]
        rows.append({
            "day": today,
            "commits": len(stats),
            "partitions_with_news": len(news),
            "partitions_touched": len({p for s in stats for p in s["partitions_touched"]}),
            "labeled_partitions_in_window": len(labeled_in_window),
            "files_written": sum(s["files_written"] for s in stats),
            "files_rewritten": sum(s["files_rewritten"] for s in stats),
            "bytes_written": written,
            "bytes_rewritten": sum(s["bytes_rewritten"] for s in stats),
            "bytes_of_news_partitions": news_bytes,
            "written/news": round(written / news_bytes, 2) if news_bytes else 0.0,
            "join_s": round(join_s, 1),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history-days", type=int, default=36, help="days before the first measured evening (36: the walkthrough's 2025-05-11)")
    parser.add_argument("--evenings", type=int, default=2)
    parser.add_argument("--fish-per-day", type=int, default=5, help="the walkthrough's 5 (x3 images)")
    args = parser.parse_args()
    results = harness.Results("write_amplification", vars(args))
    from glue_scripts.zfish_etl.modes import JOIN_MODES

    modes = sorted(JOIN_MODES, key=lambda m: m != "full")  # full first: the baseline
    delays = {"walkthrough (32 d)": {}, f"spread {SPREAD} d": {"ZFISH_LABEL_DELAY_SPREAD": SPREAD}}
    table = []
    for delay_name, delay_settings in delays.items():
        for mode in modes:
            env = {"ZFISH_FISH_PER_DAY": str(args.fish_per_day), "ZFISH_JOIN_MODE": mode, **delay_settings}
            with harness.scratch_data_dir(**env):
                per_evening = harness.in_fresh_process(scenario, args.history_days, args.evenings)
            for row in per_evening:
                results.add({"delays": delay_name, "mode": mode, **row})
            total = {k: sum(r[k] for r in per_evening) for k in per_evening[0] if k not in ("day", "written/news")}
            mean = {k: round(v / len(per_evening), 1) for k, v in total.items()}
            table.append({"delays": delay_name, "mode": mode, **mean,
                          "written/news": round(total["bytes_written"] / total["bytes_of_news_partitions"], 2)
                          if total["bytes_of_news_partitions"] else 0.0})
    harness.print_table(table, f"per evening, mean of {args.evenings} evenings after {args.history_days} days")
    incremental = [r for r in table if r["mode"] == "incremental"]
    for row in incremental:
        met = row["written/news"] <= TARGET_RATIO
        print(f"{row['delays']}: incremental writes {row['written/news']} x the news partitions' bytes "
              f"(target <= {TARGET_RATIO}): {'met' if met else 'missed'}")
    results.document.update(summary=table, target_ratio=TARGET_RATIO)
    results.write()


if __name__ == "__main__":
    main()
