"""The zebrafish simulator: the pipeline's raw data, one day at a time.

Every day the lab images `fish_per_day` new fish (`images_per_fish` photos each, one JSON file per
photo) and learns `label_delay_days` later whether each fish developed the condition (one JSON Lines
file per day). With `label_delay_spread` (MIN, MAX) each fish's label instead arrives a seeded random
number of days in [MIN, MAX] after its photos, so one day's labels concern many imaging days.
Every random draw is seeded from (seed, day, stream, block of fish), never from what came before,
so any day can be generated alone, in any order, on any number of processes, and comes out
byte-identical. The fish and their rows are `synthetic_rows.py`'s; this module holds the settings and
writes the rows to files, in parallel blocks whose bytes do not depend on the worker count.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, timedelta
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

from zfish_assets import settings
from zfish_assets.setting_kinds import MAX_DAYS, day_spread
from zfish_assets.dagster_names import RAW_TABLES
from zfish_assets.synthetic_rows import (
    blocks, cohort_of, first_fish, image_id_keys, image_sequence, labels_arriving, observation_rows,
)

TABLES = RAW_TABLES
_JSON = json.JSONEncoder(separators=(",", ":"))
_SETTINGS = {
    "fish_per_day": settings.FISH_PER_DAY,
    "images_per_fish": settings.IMAGES_PER_FISH,
    "label_delay_days": settings.LABEL_DELAY_DAYS,
    "seed": settings.SEED,
}
_SPREAD_VAR = settings.LABEL_DELAY_SPREAD.name
WORKERS = settings.integer(1, 256)
"""Writer processes: more than this on one machine only contend for its disk (and each is a Python process)."""


def _checked_int(value: object, parser: settings.IntegerParser, what: str) -> int:
    """`value` if it is in `parser`'s domain (the setting's own bound), else a ValueError naming `what`."""
    if not parser.accepts(value):
        raise ValueError(f"{what}={value!r} is not {parser.expected}")
    return value


def _checked_spread(value: object, what: str) -> tuple[int, int] | None:
    """`value` if it is None or a (MIN, MAX) pair of days with 0 <= MIN <= MAX <= MAX_DAYS (`day_spread`'s
    domain), else a ValueError naming `what`."""
    if value is None:
        return None
    if (not isinstance(value, tuple) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) for v in value) or not 0 <= value[0] <= value[1] <= MAX_DAYS):
        raise ValueError(f"{what}={value!r} is not a pair of days (MIN, MAX) with "
                         f"0 <= MIN <= MAX <= {MAX_DAYS}")
    return value


def parse_delay_spread(text: str, what: str = _SPREAD_VAR) -> tuple[int, int] | None:
    """`off` (or empty) as None, `MIN-MAX` (e.g. `7-35`) as (MIN, MAX): the form of `ZFISH_LABEL_DELAY_SPREAD`
    (`setting_kinds.day_spread`), a ValueError naming `what` otherwise."""
    try:
        return day_spread(text)
    except ValueError as exc:
        raise ValueError(f"{what}={text!r} is not {exc}") from None


def format_delay_spread(spread: tuple[int, int] | None) -> str:
    """The `ZFISH_LABEL_DELAY_SPREAD` text of a spread (`off` for None)."""
    return "off" if spread is None else f"{spread[0]}-{spread[1]}"


@dataclass(frozen=True)
class SimSettings:
    """What to simulate; together with a day it fully determines that day's files."""

    start: date
    fish_per_day: int = int(settings.FISH_PER_DAY.default)
    images_per_fish: int = int(settings.IMAGES_PER_FISH.default)
    label_delay_days: int = int(settings.LABEL_DELAY_DAYS.default)
    seed: int = int(settings.SEED.default)
    label_delay_spread: tuple[int, int] | None = None
    """(MIN, MAX): each fish's label arrives a random number of days in [MIN, MAX] after its photos
    (then `label_delay_days` is not used). None (the default) keeps one delay for every fish, so the
    walkthrough's numbers stay; the spread exercises labels landing on many image days at once."""

    def __post_init__(self) -> None:
        for name, setting in _SETTINGS.items():
            _checked_int(getattr(self, name), setting.parse_text, name)
        _checked_spread(self.label_delay_spread, "label_delay_spread")

    @classmethod
    def from_env(cls) -> SimSettings:
        """The settings of `ZFISH_SIM_START`, `ZFISH_{FISH_PER_DAY,IMAGES_PER_FISH,LABEL_DELAY_DAYS,SEED}`
        and `ZFISH_LABEL_DELAY_SPREAD` (`off`, the default, or `MIN-MAX` days such as `7-35`).

        Read when called, so the CLI, the demo and the tests agree with the Dagster deployment.
        """
        values = {name: setting.get() for name, setting in _SETTINGS.items()}
        spread = parse_delay_spread(settings.LABEL_DELAY_SPREAD.get())
        return cls(start=settings.sim_start(), label_delay_spread=spread, **values)


@dataclass(frozen=True)
class WrittenDay:
    """What writing one day of one table produced, for summaries and throughput figures."""

    files: int
    rows: int
    bytes: int

    def __add__(self, other: WrittenDay) -> WrittenDay:
        return WrittenDay(self.files + other.files, self.rows + other.rows, self.bytes + other.bytes)


_NOTHING = WrittenDay(0, 0, 0)


def _encode(row: dict[str, Any]) -> bytes:
    return (_JSON.encode(row) + "\n").encode()


def _encode_observation(row: dict[str, Any]) -> bytes:
    """`_encode(row)` for an observation, byte for byte, in a third of the time.

    A million of these are written per benchmark on two cores shared with the kernel, which is the
    real bound. Safe without escaping: every string is generated here from a fixed alphabet, and
    floats print through `repr` exactly as `json` prints them.
    """
    genes = row["genetic_markers"]
    return (
        f'{{"fish_id":"{row["fish_id"]}","image_id":"{row["image_id"]}","timestamp":"{row["timestamp"]}",'
        f'"age_days":{row["age_days"]},"treatment":"{row["treatment"]}",'
        f'"genetic_markers":{{"gene_a":{genes["gene_a"]!r},"gene_b":{genes["gene_b"]!r},"gene_c":{genes["gene_c"]!r}}},'
        f'"length_mm":{row["length_mm"]!r},"sex":"{row["sex"]}"}}\n'
    ).encode()


def _write_observation_block(task: tuple[SimSettings, date, int, str]) -> WrittenDay:
    """Write one block's photo files; runs in a worker, which writes itself so rows never cross processes."""
    sim, day, block, dest = task
    files = size = 0
    for row in observation_rows(sim, day, block):
        data = _encode_observation(row)
        fd = os.open(f"{dest}{os.sep}{row['image_id']}.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        files += 1
        size += len(data)
    return WrittenDay(files, files, size)


def _write_observations(sim: SimSettings, day: date, dest: Path, pool: Pool | None,
                        progress: Callable[[int], object] | None = None) -> WrittenDay:
    tasks = [(sim, day, block, str(dest)) for block in blocks(sim)]
    results: Iterable[WrittenDay] = (
        pool.imap_unordered(_write_observation_block, tasks) if pool else map(_write_observation_block, tasks)
    )
    total = _NOTHING
    for written in results:
        total += written
        if progress:
            progress(written.files)
    return total


def _write_outcomes(sim: SimSettings, day: date, dest: Path) -> WrittenDay:
    """Write the day's single JSON Lines file, block by block so memory stays bounded.

    With a delay spread a day may draw no label at all: then, as for any label-less day, no file.
    """
    rows = size = 0
    path = dest / f"outcomes-{day.isoformat()}.json"
    with path.open("wb") as file:
        for block in blocks(sim):
            lines = [_encode(row) for row in labels_arriving(sim, day, block)]
            file.write(b"".join(lines))
            rows += len(lines)
            size += sum(map(len, lines))
    if not rows:
        path.unlink()
        return _NOTHING
    return WrittenDay(1, rows, size)


def _written_by(sim: SimSettings, table: str, day: date) -> Callable[[str], bool]:
    """Whether a file name in `table`'s folder for `day` is one that writing the day (re)writes."""
    cohort = cohort_of(sim, table, day)
    if cohort is None:
        return lambda name: False
    if table == "outcomes":
        return lambda name: name == f"outcomes-{day.isoformat()}.json"
    keys = image_id_keys(sim.seed)
    first = first_fish(sim, cohort) * sim.images_per_fish
    images = range(first, first + sim.fish_per_day * sim.images_per_fish)

    def photo_of_the_day(name: str) -> bool:
        sequence = image_sequence(keys, name.removesuffix(".json"))
        return sequence is not None and sequence in images

    return photo_of_the_day


def _remove_stale(dest: Path, keep: Callable[[str], bool]) -> None:
    """Remove an earlier run's files that this run will not overwrite, so the day holds its rows only.

    Files about to be rewritten stay: overwriting beats deleting and recreating, all the more on ext4
    without a journal, where creating files right after a mass deletion crawls for minutes.
    """
    if not dest.is_dir():
        return
    with os.scandir(dest) as entries:
        stale = [entry.path for entry in entries if entry.name.endswith(".json") and not keep(entry.name)]
    for path in stale:
        os.unlink(path)


def _write_day(sim: SimSettings, table: str, day: date, dest: Path, pool: Pool | None,
               progress: Callable[[int], object] | None = None) -> WrittenDay:
    _remove_stale(dest, _written_by(sim, table, day))
    cohort = cohort_of(sim, table, day)
    if cohort is None:
        with suppress(OSError):  # gone if it was there and empty; stays when something else lives in it
            dest.rmdir()
        return _NOTHING
    dest.mkdir(parents=True, exist_ok=True)
    if table == "observations":
        return _write_observations(sim, cohort, dest, pool, progress)
    written = _write_outcomes(sim, day, dest)
    if not written.files:
        with suppress(OSError):
            dest.rmdir()
    return written


@contextmanager
def _pool(sim: SimSettings, workers: int | None) -> Iterator[Pool | None]:
    """Worker processes when a day has several blocks to share, else None (no start-up cost).

    File creation is the bound, so one process per core. "spawn" because forking a Dagster process
    that runs threads (Spark, gRPC) can copy held locks into the child.
    """
    if workers is not None:
        _checked_int(workers, WORKERS, "workers")
    count = min(workers or os.cpu_count() or 1, len(blocks(sim)))
    if count <= 1:
        yield None
        return
    with multiprocessing.get_context("spawn").Pool(count) as pool:
        yield pool


def write_day(sim: SimSettings, table: str, day: date, dest: Path, workers: int | None = None) -> WrittenDay:
    """Write `table`'s files for `day` into `dest`, the `day=YYYY-MM-DD` folder itself.

    The day is replaced as a whole; a day without rows (before the start, or no labels yet) leaves no
    folder, as in the real drop zone. `workers` defaults to one per core.
    """
    with _pool(sim, workers) as pool:
        return _write_day(sim, table, day, Path(dest), pool)


def _day_dir(out: Path, table: str, day: date) -> Path:
    return out / table / f"day={day.isoformat()}"


def photos_between(sim: SimSettings, start: date, end: date) -> int:
    """How many photo files `generate` writes for [start, end]: days before the start hold no fish."""
    first = max(start, sim.start)
    return max((end - first).days + 1, 0) * sim.fish_per_day * sim.images_per_fish


def generate(sim: SimSettings, out: Path, start: date, end: date, workers: int | None = None,
             progress: Callable[[int], object] | None = None) -> dict[str, Any]:
    """Write both tables for every day in [start, end] under `out`, sharing one pool of workers.

    Returns the totals (`days`, `observations`, `outcomes`, `files`, `bytes`) and `per_day` row counts
    keyed by `YYYY-MM-DD`. `progress` is called with the photos of each block once written (a day of
    10^6 photos is 10^3 blocks), of `photos_between(sim, start, end)` in all.
    """
    if end < start:
        raise ValueError(f"end={end.isoformat()} is before start={start.isoformat()}")
    out = Path(out)
    totals = {table: _NOTHING for table in TABLES}
    per_day: dict[str, dict[str, int]] = {}
    with _pool(sim, workers) as pool:
        for offset in range((end - start).days + 1):
            day = start + timedelta(days=offset)
            written = {table: _write_day(sim, table, day, _day_dir(out, table, day), pool, progress) for table in TABLES}
            per_day[day.isoformat()] = {table: written[table].rows for table in TABLES}
            totals = {table: totals[table] + written[table] for table in TABLES}
    return {
        "days": len(per_day),
        "observations": totals["observations"].rows,
        "outcomes": totals["outcomes"].rows,
        "files": sum(total.files for total in totals.values()),
        "bytes": sum(total.bytes for total in totals.values()),
        "per_day": per_day,
    }
