"""Landing and crawling one large day through the Dagster assets: wall time per phase.

`.venv/bin/python benchmarks/land_and_crawl.py --rows 1000000` lands that many observations for one
day (raw_observations: the simulator writes into the local lake) and then crawls it (observations:
schema, row count, partition registration, and the observations checks). Data goes to a temporary
data dir, removed afterwards.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import warnings

DAY = "2025-04-05"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory(prefix="zfish-bench-") as data_dir:
        os.environ.update({
            "ZFISH_DATA_DIR": data_dir, "ZFISH_CLOCK": f"{DAY}T18:00:00Z", "ZFISH_LOG_LEVEL": "WARNING",
            "ZFISH_FISH_PER_DAY": str(math.ceil(args.rows / 3)), "ZFISH_IMAGES_PER_FISH": "3",
        })
        from dagster import DagsterInstance

        from zfish_assets.definitions import build_definitions
        from zfish_assets.tools.runs import land_and_crawl

        defs = build_definitions()
        with DagsterInstance.ephemeral() as instance:
            figures = {}
            for phase, assets in (("land", ["raw_observations"]), ("crawl+checks", ["observations"])):
                began = time.perf_counter()
                (run,) = land_and_crawl(defs, instance, [DAY], assets=assets)
                figures[phase] = time.perf_counter() - began
                assert run.success and all(c.passed for c in run.checks), run.checks
            rows = defs.resources["query"].scalar('SELECT count(*) FROM "zebra_fish_demo"."observations"', {"observations": None})
    print(f"{'cores':<14}{os.cpu_count():>10}")
    print(f"{'rows':<14}{rows:>10,}")
    for phase, seconds in figures.items():
        print(f"{phase + ' s':<14}{seconds:>10.1f}   {rows / seconds:>10,.0f} rows/s")


if __name__ == "__main__":
    main()
