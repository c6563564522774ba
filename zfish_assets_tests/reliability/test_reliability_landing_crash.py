"""Crashes of a landing and of a crawl: a day killed while it lands (locally, and before each S3 request of
the landing on moto's server), or after it landed and before its crawl registered it.

A landing is all or nothing for readers: the lake shows the old day or the new one, never a mix, and
the next landing or crawl finishes or undoes what the killed one left. As in `test_reliability_crash`
(the Hudi commit killed), a child process holds at a known point and is killed with SIGKILL; the
parent checks what readers see from the files and the catalog.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zfish_assets.domain.crawl import crawl_day
from zfish_assets.partitions import days_between
from zfish_assets.resources.data_catalog import LocalCatalog
from zfish_assets.resources.lake import STAGING, LocalLake
from zfish_assets_tests.support.crash import SIM, hold_then_kill, land_and_crawl, simulator, start_child

FIRST_DAYS = days_between("2025-04-05", "2025-04-08")
NEW_DAY = "2025-04-09"


# ---------------------------------------------------------------------------------------------
# Landing crash points, local: killed while a day lands (a new day, or one replaced), or after it
# landed and before its crawl


def lake_state(root: Path) -> dict[str, Any]:
    """What a reader can see: every file of the lake outside staging folders (bytes), and the catalog.

    Catalog timestamps and the crawl's file fingerprint (it includes modification times) are left
    out: they differ between any two runs, interrupted or not.
    """
    lake = root / "lake"
    files = {str(p.relative_to(lake)): p.read_bytes() for p in sorted(lake.rglob("*"))
             if p.is_file() and not any(part.startswith(STAGING) for part in p.relative_to(lake).parts)}

    def steady(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: steady(v) for k, v in value.items() if not k.endswith("Time") and "fingerprint" not in k}
        if isinstance(value, list):
            return [steady(v) for v in value]
        return value

    catalog = {str(p.relative_to(root)): steady(json.loads(p.read_text()))
               for p in sorted((root / "catalog").rglob("*.json"))}
    return {"files": files, "catalog": catalog}


def orphans(root: Path) -> list[str]:
    """Staging folders a killed landing left behind (invisible to readers; the next landing removes them)."""
    return sorted(str(p.relative_to(root)) for p in (root / "lake").rglob(f"{STAGING}*"))


def registered_records(catalog: LocalCatalog, table: str, day: str) -> list[dict[str, Any]]:
    """The JSON objects in the registered partition `day` (none when it is not registered): what queries read."""
    found = catalog.get_table(table)
    location = found.partitions.get(day) if found else None
    if location is None:
        return []
    folder = Path(location.removeprefix("file://"))
    return [json.loads(line) for f in sorted(folder.glob("*.json"))
            for line in f.read_text().splitlines() if line.strip()]


def old_version(folder: Path) -> None:
    """An earlier delivery of NEW_DAY: the simulator's files without the first, plus an image of its own."""
    simulator().write_day("observations", NEW_DAY, folder)
    first = sorted(folder.glob("*.json"))[0]
    record = json.loads(first.read_text())
    first.unlink()
    (folder / "old-only.json").write_text(json.dumps({**record, "image_id": "old-only-image"}))


def fresh_lake(root: Path, replaced: bool) -> tuple[LocalLake, LocalCatalog]:
    """FIRST_DAYS of observations landed and crawled at `root` (always the same path: locations are
    absolute), and with `replaced` an earlier delivery of NEW_DAY."""
    shutil.rmtree(root, ignore_errors=True)
    lake, catalog = LocalLake(root=str(root / "lake")), LocalCatalog(root=str(root / "catalog"))
    for day in FIRST_DAYS:
        land_and_crawl(lake, catalog, "observations", day)
    if replaced:
        lake.land_day("observations", NEW_DAY, old_version)
        crawl_day(lake, catalog, "observations", NEW_DAY)
    return lake, catalog


def kill_landing(lake: LocalLake, catalog: LocalCatalog, table: str, crash: str, tmp_path: Path, request) -> None:
    """Land (and crawl) NEW_DAY in a child process held at `crash`, then kill it there."""
    signal_file = tmp_path / "held"
    spec = {"lake_root": lake.root, "catalog_root": catalog.root, "table": table, "day": NEW_DAY,
            "signal": str(signal_file), "crash": crash, "simulator": SIM}
    killed = hold_then_kill(start_child(["land", json.dumps(spec)], {}, tmp_path / "child"), signal_file,
                            tmp_path / "child")
    request.node.user_properties.append(("held_on", killed.held_on))


def day_files(state: dict[str, Any], prefix: str) -> dict[str, bytes]:
    return {k: v for k, v in state["files"].items() if k.startswith(prefix)}


LOCAL_LANDINGS = [("mid-landing", False), ("before-registering", False), ("mid-landing", True),
                  ("before-swap", True), ("after-swap", True), ("before-registering", True)]


@pytest.mark.parametrize(("crash", "replaced"), LOCAL_LANDINGS,
                         ids=[f"{c}-{'replaced' if r else 'new'}" for c, r in LOCAL_LANDINGS])
def test_landing_killed(crash: str, replaced: bool, tmp_path, reliability, request) -> None:
    """Kill the landing of NEW_DAY at each step: readers see one whole version of the day; a rerun completes it
    and removes what the killed landing left."""
    table, root = "observations", tmp_path / "data"
    lake, catalog = fresh_lake(root, replaced)
    land_and_crawl(lake, catalog, table, NEW_DAY)
    uninterrupted = lake_state(root)
    expected = registered_records(catalog, table, NEW_DAY)
    assert expected

    lake, catalog = fresh_lake(root, replaced)
    before = lake_state(root)
    old_records = registered_records(catalog, table, NEW_DAY)
    assert bool(old_records) == replaced
    kill_landing(lake, catalog, table, crash, tmp_path, request)
    at_kill = lake_state(root)
    request.node.user_properties.append(("orphans", json.dumps(orphans(root))))

    # The catalog is untouched. Queries read the registered partition, the accepted rows of the day's
    # last crawl: the old day whole, before the exchange and after it (a new day: nothing, as it is not
    # registered yet); the new day once it is crawled.
    assert at_kill["catalog"] == before["catalog"]
    assert registered_records(catalog, table, NEW_DAY) == old_records
    day_prefix = f"{lake.prefix}/{table}/day={NEW_DAY}/"
    if crash in ("mid-landing", "before-swap"):
        # The new files are all in staging: the lake shows exactly what it showed before.
        assert at_kill["files"] == before["files"] and (NEW_DAY in lake.list_days(table)) == replaced
        assert orphans(root), "the killed landing wrote its files into a staging folder"
    else:
        # The day is in the lake whole (the exchange is one step), only not registered yet.
        assert day_files(at_kill, day_prefix) == day_files(uninterrupted, day_prefix)
        assert NEW_DAY in lake.list_days(table)
        assert bool(orphans(root)) == (crash == "after-swap")  # the old day, swapped out, not yet removed

    # The rerun (landing again, then the crawl) ends where the uninterrupted run ended, staging removed.
    land_and_crawl(lake, catalog, table, NEW_DAY)
    assert lake_state(root) == uninterrupted and orphans(root) == []
    got = registered_records(catalog, table, NEW_DAY)
    got_ids = [r["image_id"] for r in got]
    reliability.add("crash", f"local {'re-' if replaced else ''}landing: {crash}", rows_in=len(expected),
                    rows_out=len(got), quarantined=0, lost=len({r["image_id"] for r in expected} - set(got_ids)),
                    duplicates=len(got_ids) - len(set(got_ids)))


@pytest.mark.parametrize("crash", ["crawl-before-registering", "crawl-before-cleanup"])
def test_crawl_killed(crash: str, tmp_path, reliability, request) -> None:
    """Kill the crawl of a re-delivered NEW_DAY after it wrote the day's accepted rows, and after it pointed the
    partition at them: queries read one whole version (the old day, then the new one), never both, never
    none; the rerun ends where the uninterrupted run ended, the replaced version gone."""
    table, root = "observations", tmp_path / "data"
    lake, catalog = fresh_lake(root, replaced=True)
    land_and_crawl(lake, catalog, table, NEW_DAY)
    uninterrupted, expected = lake_state(root), registered_records(catalog, table, NEW_DAY)

    lake, catalog = fresh_lake(root, replaced=True)
    old_records = registered_records(catalog, table, NEW_DAY)
    assert old_records and old_records != expected
    kill_landing(lake, catalog, table, crash, tmp_path, request)
    accepted = lake.list_keys(f"_zfish/accepted/{table}/day={NEW_DAY}")
    assert len(accepted) == 2, accepted  # the old version and the new one, both whole
    assert registered_records(catalog, table, NEW_DAY) == (old_records if crash == "crawl-before-registering"
                                                           else expected)

    land_and_crawl(lake, catalog, table, NEW_DAY)
    assert lake_state(root) == uninterrupted
    got = registered_records(catalog, table, NEW_DAY)
    got_ids = [r["image_id"] for r in got]
    reliability.add("crash", f"local crawl: {crash}", rows_in=len(expected), rows_out=len(got), quarantined=0,
                    lost=len({r["image_id"] for r in expected} - set(got_ids)), duplicates=len(got_ids) - len(set(got_ids)))


# ---------------------------------------------------------------------------------------------
# Landing crash points, S3 (moto's server): killed before each request of the landing


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


S3_BUCKET, S3_REGION = "zfish-crash", "us-east-1"
DAY_KEY = rf"observations/day={NEW_DAY}"
LANDING_KEY = rf"_zfish/landing/observations/day={NEW_DAY}"
# Each step of S3Lake.land_day: (operation, key pattern under the prefix, which matching request).
S3_STEPS = {
    "copying the old day aside": ("CopyObject", rf"{LANDING_KEY}/[0-9a-f]{{32}}\.previous/[^/]+$", 2),
    "writing the marker": ("PutObject", rf"{LANDING_KEY}\.json$", 1),
    "uploading into place": ("PutObject", rf"{DAY_KEY}/[^/]+$", 2),
    "deleting files the delivery dropped": ("DeleteObjects", rf"{DAY_KEY}/[^/]+$", 1),
    "deleting the marker": ("DeleteObject", rf"{LANDING_KEY}\.json$", 1),
    "removing the copy": ("DeleteObjects", rf"{LANDING_KEY}/", 1),
}
AFTER_COMMIT = ("removing the copy",)  # the marker is gone: the new day is what readers read
S3_LANDINGS = [(step, True) for step in S3_STEPS] + [
    (step, False) for step in ("writing the marker", "uploading into place", "deleting the marker")]


def written(write) -> dict[str, bytes]:
    """name -> bytes of what `write(folder)` puts in a folder."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp))
        return {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir())}


def what_readers_see(lake, catalog: LocalCatalog, table: str) -> dict[str, Any]:
    """NEW_DAY as each reader sees it: listed (the sensor), downloaded (the crawl, DuckDB), through the job's
    read path (`readable_folders`), and registered after a crawl (catalog records)."""
    from glue_scripts.zfish_etl.files import join, list_folders, read_files
    from glue_scripts.zfish_etl.landing import readable_folders
    from zfish_assets.domain.crawl import fingerprint

    listed = lake.list_day(table, NEW_DAY)
    local = lake.local_day_dir(table, NEW_DAY)
    (folder,) = readable_folders([lake.day_uri(table, NEW_DAY)])
    names = list_folders([folder])[0] if folder else []
    by_job = {uri.rsplit("/", 1)[1]: data for uri, data in read_files([join(folder, n) for n in names])} if folder else {}
    crawl_day(lake, catalog, table, NEW_DAY)
    found = catalog.get_table(table)
    registered = NEW_DAY in (found.partitions if found else {})
    return {"listed": NEW_DAY in lake.list_days(table), "fingerprint": fingerprint(listed),
            "downloaded": {p.name: p.read_bytes() for p in sorted(local.iterdir()) if p.name.endswith(".json")},
            "job": by_job, "registered": registered,
            "records": int(catalog.partition_parameters(table).get(NEW_DAY, {}).get("recordCount", 0))}


@pytest.mark.parametrize(("step", "replaced"), S3_LANDINGS,
                         ids=[f"{s.replace(' ', '-')}-{'replaced' if r else 'new'}" for s, r in S3_LANDINGS])
def test_s3_landing_killed(step: str, replaced: bool, s3_endpoint, tmp_path, monkeypatch, reliability, request):
    """Kill S3Lake.land_day before one of its requests: every reader sees the old day whole (none, for a new
    day) until the marker is deleted, then the new one; the next landing (the dead one's lease taken over)
    completes and leaves no copy or marker."""
    import boto3

    from zfish_assets.resources.aws_connection import AWSConnection
    from zfish_assets.resources.lake import S3Lake

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": S3_REGION, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)  # the child and the job's own boto3 client (files.py) resolve these
    s3 = boto3.client("s3", region_name=S3_REGION, endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=S3_BUCKET)
    prefix = f"crash-{request.node.callspec.id}"
    settings = {"bucket": S3_BUCKET, "prefix": prefix, "endpoint_url": s3_endpoint, "region": S3_REGION}
    lake = S3Lake(bucket=S3_BUCKET, prefix=prefix, cache_dir=str(tmp_path / "cache"),
                  aws=AWSConnection(region_name=S3_REGION, endpoint_url=s3_endpoint))
    catalog = LocalCatalog(root=str(tmp_path / "catalog"))
    table = "observations"
    old, new = written(old_version), written(lambda f: simulator().write_day(table, NEW_DAY, f))
    if replaced:
        lake.land_day(table, NEW_DAY, old_version)
    before = what_readers_see(lake, catalog, table)
    assert before["downloaded"] == before["job"] == (old if replaced else {})

    operation, key, nth = S3_STEPS[step]
    signal_file = tmp_path / "held"
    spec = {**settings, "cache_dir": str(tmp_path / "child-cache"), "table": table, "day": NEW_DAY,
            "simulator": SIM, "signal": str(signal_file), "operation": operation, "key": f"^{prefix}/{key}", "nth": nth}
    killed = hold_then_kill(start_child(["land-s3", json.dumps(spec)], {}, tmp_path / "child"), signal_file,
                            tmp_path / "child")
    request.node.user_properties.append(("held_on", killed.held_on))
    keys = sorted(o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET, Prefix=prefix)
                  for o in page.get("Contents", []))
    request.node.user_properties.append(("keys_at_kill", json.dumps(keys)))

    at_kill = what_readers_see(lake, catalog, table)
    if step in AFTER_COMMIT:
        assert at_kill["downloaded"] == at_kill["job"] == new and at_kill["listed"] and at_kill["registered"]
    else:
        # The old day whole, or no day: what every reader saw before, the sensor's fingerprint included.
        assert at_kill == before, (at_kill.keys(), step)
    if replaced or step != "writing the marker":  # the copy aside, or the marker, is left for the next landing
        assert any(k.startswith(f"{prefix}/_zfish/landing/") for k in keys), keys

    # The next landing completes the day and removes every staging key and the marker.
    lake.land_day(table, NEW_DAY, lambda f: simulator().write_day(table, NEW_DAY, f))
    after = what_readers_see(lake, catalog, table)
    assert after["downloaded"] == after["job"] == new and after["listed"] and after["registered"]
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=S3_BUCKET, Prefix=f"{prefix}/").get("Contents", [])]
    assert not [k for k in left if "/_zfish/landing/" in k and not k.endswith(".lease")], left  # the day's lease, released
    assert sorted(k.rsplit("/", 1)[1] for k in left if k.startswith(f"{prefix}/{table}/day={NEW_DAY}/")) == sorted(new)
    rows_in = len(new)
    reliability.add("crash", f"s3 {'re-' if replaced else ''}landing: {step}", rows_in=rows_in,
                    rows_out=after["records"], quarantined=0, lost=len(set(new) - set(after["job"])),
                    duplicates=after["records"] - len(after["job"]))
