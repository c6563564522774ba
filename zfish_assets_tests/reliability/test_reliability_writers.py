"""Two writers of joined_fish_data at once, outside the daemon's run queue: one writes, the other waits or refuses.

A child process runs the production job (`crash_child.py join`) and is held inside its commit
(the completed instant never written), so it holds the table's lease for as long as the test
wants. The test's own job, started meanwhile with no wait, is refused naming the child (its pid);
one started with a wait goes on once the child is SIGKILLed (a dead holder frees the table at
once), rolls the child's half-made commit back and ends with the table the raw files make: every
labeled image once, with its fish's latest label, nothing lost.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, replace

import pytest

from glue_scripts.joined_fish_data import run
from glue_scripts.zfish_etl.lease import TableBusy
from zfish_assets.partitions import days_between
from zfish_assets.resources.data_catalog import LocalCatalog
from zfish_assets.resources.lake import LocalLake
from zfish_assets_tests.support.tables import as_expected, raw_expected, table_rows
from zfish_assets_tests.support.crash import (
    HUDI_CRASH_POINTS,
    hold_then_kill,
    job_args,
    land_and_crawl,
    start_child,
    timeline,
)

DAYS = days_between("2025-04-05", "2025-04-09")


def test_a_second_writer_is_refused_or_waits_naming_the_first_and_no_row_is_lost(tmp_path, spark, reliability):
    from zfish_assets_tests.support.crash_child import compile_hold_fs

    lake, catalog = LocalLake(root=str(tmp_path / "lake")), LocalCatalog(root=str(tmp_path / "catalog"))
    table = tmp_path / "processed" / "joined_fish_data"
    args = replace(job_args(str(tmp_path / "catalog"), table, DAYS[0], DAYS[-1]), writer="run-one:joined_fish_data")
    go = tmp_path / "go"
    env = {"ZFISH_CRASH_HOLD": HUDI_CRASH_POINTS["before completed instant"],
           "ZFISH_CRASH_SIGNAL": str(tmp_path / "held"), "ZFISH_CRASH_GO": str(go),
           "JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}
    classes = compile_hold_fs(tmp_path / "java")
    child = start_child(["join", json.dumps(asdict(args)), str(classes)], env, tmp_path / "child")
    for day in DAYS:
        for raw in ("observations", "outcomes"):
            land_and_crawl(lake, catalog, raw, day)
    go.touch()
    while not (tmp_path / "held").exists():  # the child is inside its commit, holding the lease
        assert child.poll() is None, (tmp_path / "child" / "stderr").read_text()[-3000:]
        time.sleep(0.2)

    second = replace(args, writer="run-two:joined_fish_data")
    with pytest.raises(TableBusy) as refused:
        run(spark, second)
    assert "run run-one:joined_fish_data (host " in str(refused.value) and f"pid {child.pid}," in str(refused.value)
    assert not [n for n in timeline(table) if n.endswith(".commit")]  # the refused run wrote nothing

    said: list[str] = []
    waiting = threading.Thread(target=lambda: said.append(run(spark, replace(second, writer_wait_s=300), said.append)))
    waiting.start()
    time.sleep(3)
    assert waiting.is_alive() and "run run-one:joined_fish_data" in said[0], said  # it waits, naming the holder
    hold_then_kill(child, tmp_path / "held", tmp_path / "child")
    waiting.join(300)
    assert not waiting.is_alive() and said[-1].commit_instant, said

    expected = raw_expected(tmp_path / "lake" / "use-cases/fish-demo")
    stored = as_expected(table_rows(f"file://{table}"))
    assert stored == expected and len(expected) == 3 * 15  # fish of 04-05..04-07 are labeled (2-day delay)
    reliability.add("writers", "two joins at once: second refused, then waits", rows_in=len(expected),
                    rows_out=len(stored), quarantined=0, lost=len(set(expected) - set(stored)),
                    duplicates=len(stored) - len(set(stored) & set(expected)))


def test_two_landings_of_a_day_at_once_each_report_what_they_landed_and_the_last_wins_whole(tmp_path):
    """Two `zfish upload`s of one day at once (no Spark): the second exchange lands right after the
    first, before the first reports. The first used to count its bytes from the day folder, whose files
    were by then the second's: it reported their bytes, or failed with FileNotFoundError (a traceback,
    exit 1) when they were replaced while it counted, though it had landed. Each now reports its own
    files, and the day holds the last one whole."""
    lake = LocalLake(root=str(tmp_path / "lake"))
    first = {f"a{n}.json": "{}\n" * (n + 1) for n in range(3)}
    second = {f"b{n}.json": "{}\n" for n in range(2)}

    def writer(files: dict[str, str]):
        return lambda folder: [(folder / name).write_text(text) for name, text in files.items()]

    inner = []
    landed = lake.land_day("observations", DAYS[0], writer(first), stored=lambda _: inner.append(
        lake.land_day("observations", DAYS[0], writer(second))))
    assert (landed.files, landed.bytes) == (3, sum(len(t) for t in first.values()))
    assert (inner[0].files, inner[0].bytes) == (2, sum(len(t) for t in second.values()))
    assert sorted(o.name for o in lake.list_day("observations", DAYS[0])) == sorted(second)


def test_landings_of_a_day_at_once_all_succeed_and_the_day_is_one_of_them_whole(tmp_path):
    """Four landings of one day at once, each released from one barrier once its files are staged (no
    Spark), on days never landed and on days landed before, some of the landings empty (a retraction).
    Whether the day folder exists changes between one landing's look and its rename or exchange: two
    first landings of a new day failed with ENOTEMPTY (a rename onto the folder the other had just
    made). Every landing now succeeds, and the day holds one landing's files whole, or is gone."""
    lake = LocalLake(root=str(tmp_path / "lake"))
    deliveries = [{f"w{i}-{n}.json": "{}\n" * (n + 1) for n in range(i)} for i in range(4)]  # the first is empty
    for day in days_between("2025-04-05", "2025-05-04"):
        if day.endswith(("0", "5")):
            lake.land_day("observations", day, lambda folder: (folder / "old.json").write_text("{}\n"))
        failed = land_at_once(lake, day, deliveries, meet_within_s=30, kept_apart=False)
        assert not failed, (day, failed)
        held = {o.name: (lake.local_day_dir("observations", day) / o.name).read_text()
                for o in lake.list_day("observations", day)}
        assert held in deliveries, (day, sorted(held))


def test_landings_of_a_day_at_once_on_s3_all_succeed_and_the_day_is_one_of_them_whole(aws):
    """Three landings of one day at once on S3 (moto's server, no Spark), on a day landed before and on a
    new one, one of them empty (a retraction). Each deleted the files and the previous copies the others
    had just written: the day ended empty with one landing reported landed, or the marker stayed and
    every landing failed. Each now lands in turn (the day's lease), all succeed, and the day holds one
    landing's files whole, with no marker and no copy left."""
    import boto3

    from zfish_assets.deployments import resources_for
    from zfish_assets_tests.support.moto import BUCKET, REGION

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws)
    deliveries = [{f"w{i}-{n}.json": "{}\n" * (n + 1) for n in range(i)} for i in range(3)]  # the first is empty
    with resources_for()["lake"].process_config_and_initialize_cm() as lake:
        lake.land_day("observations", DAYS[0], lambda folder: (folder / "old.json").write_text("{}\n"))
        for day in DAYS[:2]:
            failed = land_at_once(lake, day, deliveries, meet_within_s=1, kept_apart=True)
            assert not failed, (day, failed)
            held = {o.name: s3.get_object(Bucket=BUCKET, Key=f"use-cases/fish-demo/observations/day={day}/{o.name}")
                    ["Body"].read().decode() for o in lake.list_day("observations", day)}
            assert held in deliveries, (day, sorted(held))
            landing = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="use-cases/fish-demo/_zfish/landing/")
                       .get("Contents", []) if f"day={day}" in o["Key"]]
            assert landing == [f"use-cases/fish-demo/_zfish/landing/observations/day={day}.lease"], landing


@pytest.mark.parametrize("nth_get", [1, 2, 3])
def test_a_crawls_download_racing_a_landing_of_the_day_is_one_upload_whole(aws, nth_get):
    """A reader downloading a day on S3 (the crawl, DuckDB) while a landing replaces it: the landing runs
    (whole) just before the reader's n-th GET, one file at a time (moto's server, no Spark). The reader
    used to fetch the files it had listed by name, getting some of the old upload and some of the new
    (and recording the old ETags for them); it now holds one upload whole, the newer one here."""
    from zfish_assets.deployments import resources_for

    def upload(version: int):
        return lambda folder: [(folder / n).write_text(f'{{"v": {version}}}\n') for n in ("a.json", "b.json", "c.json")]

    with resources_for()["lake"].process_config_and_initialize_cm() as reader, \
            resources_for()["lake"].process_config_and_initialize_cm() as landing:
        reader = reader.model_copy(update={"read_threads": 1})
        reader.land_day("observations", DAYS[0], upload(1))
        gets: list[int] = []

        def before_get(**_) -> None:
            gets.append(1)
            if len(gets) == nth_get:
                landing.land_day("observations", DAYS[0], upload(2))

        reader.client().meta.events.register("before-call.s3.GetObject", before_get)
        folder = reader.local_day_dir("observations", DAYS[0])
        held = {p.name: p.read_text() for p in folder.iterdir() if p.suffix == ".json"}
        assert held == {n: '{"v": 2}\n' for n in ("a.json", "b.json", "c.json")}, held
        assert reader.local_day_dir("observations", DAYS[0]) == folder  # the manifest names what it holds
        assert {p.name: p.read_text() for p in folder.iterdir() if p.suffix == ".json"} == held


def land_at_once(lake, day: str, deliveries: list[dict[str, str]], meet_within_s: float,
                 kept_apart: bool) -> list[Exception]:
    """Land each delivery (file name -> text) of observations `day` from a thread of its own, all writing
    their files, then meeting before the landing goes on; the failures, collected (the caller's assertion
    names each). `kept_apart`: landings may take turns (the S3 lease), so a landing that waits for the
    others in vain goes on after `meet_within_s`; else they must all meet."""
    barrier, failed = threading.Barrier(len(deliveries)), []

    def land(files: dict[str, str]) -> None:
        def write(folder) -> None:
            for name, text in files.items():
                (folder / name).write_text(text)
            try:
                barrier.wait(timeout=meet_within_s)
            except threading.BrokenBarrierError:
                if not kept_apart:
                    raise
        try:
            lake.land_day("observations", day, write)
        except (OSError if not kept_apart else Exception) as exc:
            failed.append(exc)

    threads = [threading.Thread(target=land, args=(files,)) for files in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failed
