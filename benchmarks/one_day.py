"""One simulated day end to end (land, crawl, checks, Spark start, join, checks): wall time by phase.

`.venv/bin/python benchmarks/one_day.py` seeds 36 days of history at the walkthrough's settings
(2025-04-05..2025-05-10, backfilled in one join run, untimed) in one process, then runs the evening
of 2025-05-11 in a fresh process, as the schedule and its sensor run it: the project's job landing
and crawling the day with the crawled tables' checks, the Spark session start on its own, then the
join job over the window [D-35, D] with the joined table's checks (each step's seconds printed). Then, in another fresh process on the same engine, the engine's floor
(`pipeline.engine_floor`): a session start and one warm Hudi upsert of the evening's rows into a
small table, and prints the evening's ratio to it. Targets: the whole evening in 10 s or less and
at most 2.5 x the floor (session start + warm upsert) on a fresh JVM (`--engine cold`); 3 s or less
and at most 2.5 x the warm upsert on the warm engine (`--engine warm`: a Spark Connect server
started before the history is seeded, so the evening finds it warm).
"""

from __future__ import annotations

import argparse

import harness
import pipeline

TARGET_S = {"cold": 10.0, "warm": 3.0}
TARGET_RATIO = 2.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history-days", type=int, default=36, help="days before the measured evening")
    parser.add_argument("--fish-per-day", type=int, default=5, help="the walkthrough's 5 (x3 images)")
    parser.add_argument("--engine", choices=harness.ENGINES, default="cold",
                        help="cold: the evening starts its own Spark; warm: it connects to a Spark Connect server")
    args = parser.parse_args()
    results = harness.Results("one_day", vars(args))
    with harness.scratch_data_dir(ZFISH_FISH_PER_DAY=str(args.fish_per_day)), harness.engine(args.engine):
        harness.in_fresh_process(pipeline.seed_history, 0, args.history_days - 1)
        measured = harness.in_fresh_process(pipeline.evening, args.history_days)
        floor_phases = harness.in_fresh_process(pipeline.engine_floor)
    rows = [{"phase": phase, "seconds": round(seconds, 2)} for phase, seconds in measured["seconds"].items()]
    total = sum(measured["seconds"].values())
    rows.append({"phase": "total", "seconds": round(total, 2)})
    # The floor a cold evening is held to includes its JVM; a warm one finds the JVM running.
    floor = floor_phases["warm upsert"] + (floor_phases["session start"] if args.engine == "cold" else 0.0)
    ratio = total / floor
    rows += [{"phase": f"floor: {name}", "seconds": round(seconds, 2)} for name, seconds in floor_phases.items()]
    for row in rows:
        results.add(row)
    results.document.update(day=measured["day"], window=measured["window"], checks_passed=measured["checks"],
                            steps=measured["steps"], join_stages=measured["join_stages"], target_s=TARGET_S[args.engine],
                            floor_s=round(floor, 2), ratio=round(ratio, 2), target_ratio=TARGET_RATIO,
                            met=total <= TARGET_S[args.engine] and ratio <= TARGET_RATIO)
    harness.print_table(rows, f"evening of {measured['day']} (window {measured['window']}, "
                              f"{measured['checks']} checks passed)")
    harness.print_steps(measured["steps"])
    stages = measured["join_stages"]
    print(f"{pipeline.JOIN_PHASE}: {stages['jobs']} Spark jobs ({stages['tasks']} tasks) busy {stages['busy_s']} s "
          f"of {measured['seconds'][pipeline.JOIN_PHASE]:.1f} s; longest: {', '.join(stages['top'])}")
    target = TARGET_S[args.engine]
    print(f"target ({args.engine} engine) <= {target:.0f} s: {'met' if total <= target else 'missed'} ({total:.1f} s)")
    print(f"floor {floor:.1f} s ({'session start + ' if args.engine == 'cold' else ''}warm upsert): the evening is "
          f"{ratio:.1f} x it, target <= {TARGET_RATIO} x: {'met' if ratio <= TARGET_RATIO else 'missed'}")
    results.write()


if __name__ == "__main__":
    main()
