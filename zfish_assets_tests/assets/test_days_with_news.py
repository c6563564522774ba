"""The incremental join reads a window day whole whenever its files are not the ones its crawl saw.

A day is left unread only when the table's rows of it were built from the same crawl and the lake
still holds the files that crawl listed. A file rewritten in place keeps the day's file count and
bytes: the lab fixing one value of the same width, or a line broken by an edit of the same length.
Either must reach the job (the fix applied, the broken line refused by name), as it does when the
day is read whole; the table is compared with what the raw files say, computed here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from glue_scripts.joined_fish_data import JobArgs, run
from zfish_assets.domain.crawl import crawl_day
from zfish_assets.partitions import days_between
from zfish_assets_tests.support.tables import as_expected, raw_expected, table_rows

JOINED = "processed/joined_fish_data"
WINDOW = ("2025-04-05", "2025-04-09")
EDITED = "2025-04-06"


@pytest.fixture
def small_defs(monkeypatch, data_dir):
    """Labels two days after the images, so the window's first days are labeled."""
    from zfish_assets.definitions import build_definitions

    monkeypatch.setenv("ZFISH_LABEL_DELAY_DAYS", "2")
    return build_definitions()


def job_args(defs) -> JobArgs:
    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    return JobArgs(first_day=WINDOW[0], last_day=WINDOW[1], database=catalog.database,
                   observations_table="observations", outcomes_table="outcomes", target_path=lake.spark_uri(JOINED),
                   target_table="joined_fish_data", join_mode="incremental", **catalog.job_arguments())


def rewrite_in_place(path: Path, old: bytes, new: bytes) -> None:
    """Replace `old` by `new` (as long) in the file, keeping its size; its mtime moves on, as an editor's would."""
    data = path.read_bytes()
    assert len(old) == len(new) and data.count(old) == 1
    before = path.stat()
    path.write_bytes(data.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert path.stat().st_size == before.st_size


def test_a_file_rewritten_with_the_same_size_is_read_again(small_defs, data_dir, spark):
    defs = small_defs
    lake, catalog, simulator = defs.resources["lake"], defs.resources["catalog"], defs.resources["simulator"]
    lake_dir = data_dir / "lake" / "use-cases/fish-demo"
    for day in days_between(*WINDOW):
        for table in ("observations", "outcomes"):
            lake.land_day(table, day, lambda folder, t=table, d=day: simulator.write_day(t, d, folder))
            crawl_day(lake, catalog, table, day)
    first = run(spark, job_args(defs))
    assert first.rows_upserted > 0 and as_expected(table_rows(lake.uri(JOINED))) == raw_expected(lake_dir)

    # One image of EDITED is given to another labeled fish of the day, in place: same bytes, same count.
    files = sorted((lake_dir / f"observations/day={EDITED}").glob("*.json"))
    records = {p: json.loads(p.read_text()) for p in files}
    image, other = files[0], next(p for p in files if records[p]["fish_id"] != records[files[0]]["fish_id"])
    old, new = (f'"fish_id":"{records[p]["fish_id"]}"'.encode() for p in (image, other))
    rewrite_in_place(image, old, new)
    expected = raw_expected(lake_dir)
    assert expected[records[image]["image_id"]][1] == records[other]["fish_id"]

    second = run(spark, job_args(defs))
    assert EDITED in second.days_read and EDITED not in second.days_unchanged
    assert as_expected(table_rows(lake.uri(JOINED))) == expected

    # A value broken in place (a number made a word of the same width) is refused by name, not passed over.
    broken = files[1]
    length = f'"length_mm":{json.dumps(records[broken]["length_mm"])}'.encode()
    rewrite_in_place(broken, length, b'"length_mm":"' + b"x" * (len(length) - len(b'"length_mm":"') - 1) + b'"')
    with pytest.raises(ValueError, match=rf"day={EDITED} {broken.name}:1 "):
        run(spark, job_args(defs))
