"""How fast the simulator writes 10^6 observations (the budget is 2 minutes on 2 cores).

Run `.venv/bin/python benchmarks/generate.py` (the project installed, or `PYTHONPATH=.`). Without
`--out` the files go to a temporary folder removed afterwards (not timed), so a million files never
outlive the run. On ext4 without a journal (this machine) creating files within minutes of a mass
deletion is several times slower, as the inode allocator skips recently freed inodes: leave a few
minutes between runs, or the figures measure the previous run's cleanup.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from zfish_assets.synthetic import SimSettings, generate

START = date(2025, 4, 5)


def _run(out: Path, rows: int, days: int, images_per_fish: int, workers: int | None) -> dict[str, float]:
    """Generate about `rows` observations over `days` days into `out`; the figures of the run."""
    fish_per_day = math.ceil(rows / (days * images_per_fish))
    sim = SimSettings(start=START, fish_per_day=fish_per_day, images_per_fish=images_per_fish)
    began = time.perf_counter()
    summary = generate(sim, out, START, START + timedelta(days=days - 1), workers=workers)
    seconds = time.perf_counter() - began
    return {
        "rows": summary["observations"],
        "files": summary["files"],
        "MB": summary["bytes"] / 1e6,
        "seconds": seconds,
        "files/s": summary["files"] / seconds,
        "cores": os.cpu_count() or 1,
        "workers": workers or os.cpu_count() or 1,
    }


def _print(figures: dict[str, float]) -> None:
    for name, value in figures.items():
        shown = f"{value:,.2f}" if name in ("seconds", "MB") else f"{value:,.0f}"
        print(f"{name:<9}{shown:>14}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the files here (default: a temporary folder, removed)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="observations to write")
    parser.add_argument("--days", type=int, default=1, help="days to spread them over")
    parser.add_argument("--images-per-fish", type=int, default=3)
    parser.add_argument("--workers", type=int, help="writer processes (default: one per core)")
    args = parser.parse_args()
    if args.out:
        _print(_run(args.out, args.rows, args.days, args.images_per_fish, args.workers))
        return
    with tempfile.TemporaryDirectory(prefix="zfish-bench-") as folder:
        _print(_run(Path(folder), args.rows, args.days, args.images_per_fish, args.workers))
        print("removing the files ...", flush=True)
        began = time.perf_counter()
    print(f"removed in {time.perf_counter() - began:,.0f} s")


if __name__ == "__main__":
    main()
