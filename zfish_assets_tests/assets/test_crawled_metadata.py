"""What a Dagster user reads on the crawled tables right after a lab moves an image to another day and
retracts a whole day: each partition's latest materialization says its rows (`dagster/partition_row_count`)
and the table's (`dagster/row_count`), as counted here from the raw files. No Spark.

A crawl that re-judges another day (a key it held moved) records that day materialized too: with its
own figures, or the UI kept showing the day's count from before the move.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections import Counter
from pathlib import Path

from dagster import AssetKey

from zfish_assets import settings
from zfish_assets.tools.cli import main
from zfish_assets.tools.runs import land_and_crawl, run_checks

DAYS = ["2025-04-05", "2025-04-06", "2025-04-07"]


def rows_by_raw_files(data_dir) -> dict[str, int]:
    """Rows per day from the raw files: each image on the earliest day that delivers it."""
    holder: dict[str, str] = {}
    for f in sorted((data_dir / "lake" / settings.lake_prefix() / "observations").glob("day=*/*.json")):
        day = f.parent.name.removeprefix("day=")
        for line in f.read_text().splitlines():
            image = json.loads(line)["image_id"]
            holder[image] = min(holder.get(image, day), day)
    return dict(Counter(holder.values()))


def latest_counts(instance, day: str) -> tuple[int, int]:
    """(partition rows, table rows) of the latest materialization of observations' `day`."""
    records = instance.fetch_materializations(AssetKey("observations"), limit=1000).records
    latest = max((r for r in records if r.asset_materialization.partition == day), key=lambda r: r.storage_id)
    metadata = latest.asset_materialization.metadata
    return metadata["dagster/partition_row_count"].value, metadata["dagster/row_count"].value


def redeliver(defs, day: str, files: dict[str, str]) -> None:
    """The lab's new delivery of `day` through `zfish upload` (in process), replacing the day; no files:
    the lake's day emptied, as a retraction leaves it."""
    if not files:
        defs.resources["lake"].land_day("observations", day, lambda folder: None)
        return
    with tempfile.TemporaryDirectory() as lab:
        folder = Path(lab) / "observations" / f"day={day}"
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text)
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["upload", lab, "--day", day]) == 0


def test_row_counts_after_a_move_and_a_retraction(defs, instance, data_dir):
    land_and_crawl(defs, instance, DAYS)
    lake = data_dir / "lake" / settings.lake_prefix() / "observations"
    first, second, third = ({f.name: f.read_text() for f in (lake / f"day={d}").glob("*.json")} for d in DAYS)
    moved = sorted(first)[0]

    # An image delivered again on the second day, then withdrawn from the first: the crawl of the first
    # re-judges the second, which now holds it.
    redeliver(defs, DAYS[1], {**second, moved: first[moved]})
    land_and_crawl(defs, instance, [DAYS[1]], assets=["observations"])
    redeliver(defs, DAYS[0], {n: t for n, t in first.items() if n != moved})
    land_and_crawl(defs, instance, [DAYS[0]], assets=["observations"])
    expected = rows_by_raw_files(data_dir)
    assert expected[DAYS[1]] == len(second) + 1 and expected[DAYS[0]] == len(first) - 1  # the setup moved it
    for day in DAYS:
        assert latest_counts(instance, day) == (expected[day], sum(expected.values())), day

    # The third day retracted whole: its partition holds nothing, the table the other days' rows.
    redeliver(defs, DAYS[2], {})
    land_and_crawl(defs, instance, [DAYS[2]], assets=["observations"])
    expected = rows_by_raw_files(data_dir)
    assert DAYS[2] not in expected and sum(expected.values()) == len(first) + len(second)
    assert latest_counts(instance, DAYS[2]) == (0, sum(expected.values()))


def test_a_day_landed_by_a_run_then_redelivered_through_upload_checks_against_what_was_crawled(defs, instance,
                                                                                               data_dir, monkeypatch):
    """The landing's row count is of the files it landed: a re-delivery through `zfish upload` (no landing
    run) with more lines, two of them truncated, is checked against the crawl's count of its own files, and
    the crawl's blocking check no longer fails the re-crawl on the former landing's count."""
    monkeypatch.setenv("ZFISH_QUARANTINE_MAX_RATE", "0.5")  # 2 of 16 lines: the run goes on
    day = DAYS[0]
    land_and_crawl(defs, instance, [day])
    folder = data_dir / "lake" / settings.lake_prefix() / "observations" / f"day={day}"
    files = {f.name: f.read_text() for f in folder.glob("*.json")}
    first, second = sorted(files)[:2]
    extra = {**json.loads(files[first]), "image_id": "one-more-image"}
    redelivered = {**files, first: files[first][:30] + "\n", second: files[second][:12] + "\n",
                   "more.json": json.dumps(extra) + "\n"}
    redeliver(defs, day, redelivered)
    (crawl,) = land_and_crawl(defs, instance, [day], assets=["observations"], raise_on_error=False)
    assert crawl.success, crawl.error
    kept = len(redelivered) - 2  # every file one line; the two truncated quarantined
    assert latest_counts(instance, day) == (kept, kept)
    checks = {c.name: c for c in run_checks(defs, instance, ["observations"], {"dagster/partition": day}).checks}
    assert checks["rows_match_landed"].passed, checks["rows_match_landed"].description
