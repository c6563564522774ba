"""Reading a day of one-object files from S3 at 50 ms per request: objects/s by executor slots, and the crawl's reads.

`.venv/bin/python benchmarks/s3_read.py [--objects 2400] [--latency-ms 50] [--slots 1 2 4] [--ways ...]` starts
moto's S3 server in its own process, puts `--objects` observation objects of one day (the
simulator's, one row each) and `--history-days` small earlier days into a bucket, and puts a
loopback proxy in front of moto that holds every request `--latency-ms` before forwarding it
(`zfish_assets_tests/support/aws_proxy.py`). Everything timed goes through the proxy:

- crawl (the Dagster machine): `crawl_day` of the day, as the asset runs it (S3Lake: listing, the
  day's GETs into the cache, the other days' keys, the ledger and keys written), with the lake's
  `read_threads` at 1 and at its default; a fresh cache each time;
- driver fetch: how `read_days` fetches a small read (`read.placement`): the driver GETs every
  object (`files.read_files`, 16 threads; `--driver-threads` for others);
- executors: `read_days` of the day, past the driver's share (the driver lists, each executor task
  fetches and judges its slice of the keys), in a fresh process per slot count (`local[N]`), after
  one untimed read that starts the executors' Python workers; `--reads` timed reads each, the best kept;
- rig: the same GETs without Spark, from `--rig` PROCESSESxTHREADS client processes (4 threads a
  process, as a task fetches): what moto and the proxy serve at that many requests in flight on
  this machine, and the CPU milliseconds moto, the proxy and the clients spend per GET.

Every way must end with the same rows: the crawl's `recordCount`. `--ways` measures some of them
only (all but the executors start no JVM); the results file is then named after them.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import harness

BUCKET = "zfish-bench-s3-read"
PREFIX = "bench/s3-read"
REGION = "us-east-1"
DAY = harness.day(40)  # after the history days
TABLE = "observations"
WAYS = ("crawl", "driver", "executors", "rig")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# moto's server with the list of its own service modules read once: moto 5.x lists its package
# folder and stats each of its ~180 entries on every request, twice, under the dispatcher's one
# lock (half of its app's CPU per GET, profiled: 1.0 of 2.1 ms). The objects and answers are moto's.
_MOTO_MODULES_ONCE = ("import sys; import moto.backends as b; found = tuple(b.list_of_moto_modules()); "
                      "b.list_of_moto_modules = lambda: found; from moto.server import main; main(sys.argv[1:])")


def start_moto(modules_once: bool) -> tuple[subprocess.Popen, str]:
    """moto's server in its own process (its own core's worth of GIL), once it answers; `modules_once`:
    with its module list read once (see `_MOTO_MODULES_ONCE`)."""
    port = _free_port()
    launch = ["-c", _MOTO_MODULES_ONCE] if modules_once else ["-m", "moto.server"]
    process = subprocess.Popen([sys.executable, *launch, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("moto's server did not start within 60 s")


def put_days(moto: str, objects: int, history_days: int, scratch: Path) -> int:
    """The simulator's observation files of DAY (`objects` of them, one row each) and of `history_days`
    earlier days (3 each), put straight into moto (not timed, not through the proxy). Returns DAY's files."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import date

    import boto3

    from zfish_assets.synthetic import SimSettings, write_day

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto)
    s3.create_bucket(Bucket=BUCKET)
    days = [(DAY, math.ceil(objects / 3))] + [(harness.day(i), 1) for i in range(history_days)]
    puts = []
    for day, fish in days:
        folder = scratch / f"day={day}"
        write_day(SimSettings(start=harness.SIM_START, fish_per_day=fish, images_per_fish=3), TABLE,
                  date.fromisoformat(day), folder)
        puts += [(f"{PREFIX}/{TABLE}/day={day}/{p.name}", p) for p in sorted(folder.iterdir())]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kp: s3.put_object(Bucket=BUCKET, Key=kp[0], Body=kp[1].read_bytes()), puts))
    return sum(1 for key, _ in puts if f"/day={DAY}/" in key)


def lake(endpoint: str, cache: Path, read_threads: int | None = None) -> Any:
    from zfish_assets.resources.aws_connection import AWSConnection
    from zfish_assets.resources.lake import S3Lake

    extra = {"read_threads": read_threads} if read_threads else {}
    return S3Lake(bucket=BUCKET, prefix=PREFIX, aws=AWSConnection(region_name=REGION, endpoint_url=endpoint),
                  cache_dir=str(cache), **extra)


def _fetch_when_told(uris: list[str], threads: int, endpoint: str, go: Any, done: Any) -> None:
    """A client process of the rig probe: GET `uris` `threads` at a time once `go` is set; (count, CPU s) to `done`."""
    from glue_scripts.zfish_etl import aws
    from glue_scripts.zfish_etl.files import read_files

    settings = aws.ClientSettings(endpoint, REGION, ("testing", "testing", None))
    aws.client_for("s3", settings, threads)  # made (tens of ms) before the clock starts
    go.wait()
    cpu = time.process_time()
    fetched = sum(1 for _, content in read_files(uris, threads=threads, settings=settings) if content is not None)
    done.put((fetched, time.process_time() - cpu))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of process `pid` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def replicate(source: str, replicas: list[str]) -> None:
    """Every object of the bucket in moto `source` put into each of `replicas` (not timed, not through the proxy)."""
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=source)
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in page.get("Contents", [])]
    bodies = {key: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}
    for replica in replicas:
        copy = boto3.client("s3", region_name=REGION, endpoint_url=replica)
        copy.create_bucket(Bucket=BUCKET)
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda key: copy.put_object(Bucket=BUCKET, Key=key, Body=bodies[key]), keys))


def probe_rig(uris: list[str], processes: int, threads: int, endpoint: str, moto_pids: list[int]) -> dict[str, Any]:
    """GETs of `uris` by `processes` client processes of `threads` threads each (no Spark): what moto and
    the proxy serve at that many requests in flight, and the CPU seconds each part spent per request."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    go, done = context.Event(), context.Queue()
    workers = [context.Process(target=_fetch_when_told, args=(uris[i::processes], threads, endpoint, go, done))
               for i in range(processes)]
    for worker in workers:
        worker.start()
    time.sleep(5)  # imports and clients made (each waits on `go`)
    parts = {"moto": moto_pids, "proxy": [os.getpid()]}
    cpu = {part: sum(map(_cpu_seconds, pids)) for part, pids in parts.items()}
    began = time.perf_counter()
    go.set()
    answers = [done.get() for _ in workers]
    seconds = time.perf_counter() - began
    for worker in workers:
        worker.join()
    fetched = sum(n for n, _ in answers)
    per_get = {part: 1000 * (sum(map(_cpu_seconds, pids)) - cpu[part]) / fetched for part, pids in parts.items()}
    per_get["clients"] = 1000 * sum(c for _, c in answers) / fetched
    return {"seconds": seconds, "rows": fetched, "cpu_ms_per_get": {k: round(v, 2) for k, v in per_get.items()}}


def measure_executors(slots: int, endpoint: str, catalog_root: str, reads: int) -> dict[str, Any]:
    """`read_days` of DAY on `local[slots]` (in a fresh process): the best of `reads` timed reads."""
    from dataclasses import replace

    from glue_scripts.zfish_etl import aws
    from glue_scripts.zfish_etl.read import OBJECTS_PER_TASK, Where, day_files, placement, read_days, slices_for
    from zfish_assets.resources.data_catalog import LocalCatalog
    from zfish_assets.backends.spark_session import SparkSettings, get_spark_session

    spark = get_spark_session(replace(SparkSettings.from_env(), master=f"local[{slots}]", with_s3a=False))
    aws.use_endpoint(endpoint, REGION)
    table = LocalCatalog(root=catalog_root).get_table(TABLE)
    listed = day_files(table, [DAY])
    where = placement(len(listed), sum(size for *_, size in listed), remote=True)
    if where is not Where.EXECUTORS:
        raise RuntimeError(f"{len(listed)} objects: a read the driver fetches ({where.value}); ask for more --objects")
    seconds, rows = [], 0
    for attempt in range(reads + 1):  # the first starts the Python workers: untimed
        began = time.perf_counter()
        read = read_days(spark, table, [DAY])
        rows = int(read.count())
        read.unpersist()
        if attempt:
            seconds.append(time.perf_counter() - began)
    return {"seconds": min(seconds), "all_seconds": [round(s, 2) for s in seconds], "rows": rows,
            "tasks": slices_for(len(listed), OBJECTS_PER_TASK, spark)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2400, help="objects of the day read (one row each)")
    parser.add_argument("--history-days", type=int, default=30, help="earlier days (3 objects each) the crawl reads the keys of")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="what the proxy adds to every request")
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 2, 4], help="executor slots: local[N]")
    parser.add_argument("--motos", type=int, default=1,
                        help="moto server processes the reads are spread over (after the crawl: copies of its bucket)")
    parser.add_argument("--moto-modules-once", action="store_true",
                        help="moto's server with its service-module list read once, not on every request")
    parser.add_argument("--reads", type=int, default=2, help="timed reads per slot count (the best is kept)")
    parser.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS), help="what to measure")
    parser.add_argument("--rig", nargs="+", default=["1x4", "2x4", "4x4"],
                        help="rig probe: PROCESSESxTHREADS client GETs without Spark (4 threads a process as a task has)")
    parser.add_argument("--driver-threads", type=int, nargs="+", default=[16],
                        help="driver fetch: threads (16 is what read_days had; fewer show what the rig serves at "
                             "the executors' requests in flight)")
    args = parser.parse_args()

    from glue_scripts.zfish_etl.files import READ_THREADS
    from glue_scripts.zfish_etl.read import FETCH_THREADS
    from zfish_assets.resources.lake import S3Lake
    from zfish_assets_tests.support.aws_proxy import AwsProxy

    name = "s3_read" if set(args.ways) == set(WAYS) else "s3_read-" + "-".join(w for w in WAYS if w in args.ways)
    results = harness.Results(name, {**vars(args), "fetch_threads_per_task": FETCH_THREADS,
                                     "driver_read_threads": READ_THREADS})
    table: list[dict[str, Any]] = []

    def add(way: str, setting: str, objects: int, seconds: float, rows: int, **extra: Any) -> None:
        row = {"way": way, "setting": setting, "objects": objects, "seconds": round(seconds, 2),
               "objects/s": round(objects / seconds, 1), "rows": rows, **extra}
        table.append(row)
        results.add(row)
        results.write()  # after each figure: a run stopped midway keeps what it measured
        print(row, flush=True)

    motos = [start_moto(args.moto_modules_once) for _ in range(args.motos)]
    moto_url, moto_pids = motos[0][1], [process.pid for process, _ in motos]
    proxy = reader = AwsProxy(moto_url)

    def delay(request: Any) -> None:
        time.sleep(args.latency_ms / 1000)  # then forwarded (None)

    proxy.handlers["s3"] = delay
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
    try:
        with harness.scratch_data_dir(**credentials, ZFISH_CLOCK=f"{DAY}T18:00:00Z") as scratch:
            from glue_scripts.zfish_etl import aws
            from glue_scripts.zfish_etl.files import read_files
            from glue_scripts.zfish_etl.read import day_files
            from zfish_assets.domain.crawl import crawl_day
            from zfish_assets.resources.data_catalog import LocalCatalog

            objects = put_days(moto_url, args.objects, args.history_days, scratch / "delivered")
            catalog = LocalCatalog(root=str(scratch / "catalog"))
            for offset in range(args.history_days):  # the earlier days' keys files and partitions
                crawl_day(lake(proxy.url, scratch / "cache-setup"), catalog, TABLE, harness.day(offset))

            default_threads = S3Lake.model_fields["read_threads"].default
            for threads in (1, default_threads) if "crawl" in args.ways else (default_threads,):
                began = time.perf_counter()
                crawled = crawl_day(lake(proxy.url, scratch / f"cache-{threads}", threads), catalog, TABLE, DAY)
                if "crawl" in args.ways:
                    add("crawl (Dagster machine)", f"read_threads={threads}", objects, time.perf_counter() - began,
                        crawled.rows, history_days=args.history_days)
            rows = crawled.rows

            if len(motos) > 1:  # the reads below are spread over copies of the bucket
                replicate(moto_url, [url for _, url in motos[1:]])
                reader = AwsProxy(moto_url, replicas=[url for _, url in motos[1:]])
                reader.handlers["s3"] = delay
            aws.use_endpoint(reader.url, REGION)
            uris = [uri for _, _, uri, _ in day_files(LocalCatalog(root=str(scratch / "catalog")).get_table(TABLE), [DAY])]
            for threads in args.driver_threads if "driver" in args.ways else ():
                began = time.perf_counter()
                fetched = sum(1 for _, content in read_files(uris, threads=threads) if content is not None)
                add("driver fetch (small reads)", f"{threads} threads, any slots", objects,
                    time.perf_counter() - began, fetched)

            for shape in args.rig if "rig" in args.ways else ():
                processes, threads = (int(n) for n in shape.split("x"))
                found = probe_rig(uris, processes, threads, reader.url, moto_pids)
                add("rig: GETs without Spark", f"{processes} processes x {threads} threads", len(uris),
                    found["seconds"], found["rows"], cpu_ms_per_get=found["cpu_ms_per_get"])

            for slots in args.slots if "executors" in args.ways else ():
                found = harness.in_fresh_process(measure_executors, slots, reader.url, str(scratch / "catalog"),
                                                 args.reads)
                if found["rows"] != rows:
                    raise RuntimeError(f"local[{slots}] read {found['rows']} rows, the crawl registered {rows}")
                add("executors (read_days)", f"local[{slots}], {FETCH_THREADS} GETs per task", objects,
                    found["seconds"], found["rows"], tasks=found["tasks"], all_seconds=found["all_seconds"])
    finally:
        for each in {id(p): p for p in (proxy, reader)}.values():
            each.close()
        for process, _ in motos:
            process.terminate()
            process.wait()

    harness.print_table(table, f"one day of {objects} objects on moto's S3, {args.latency_ms:g} ms added per request")
    by_slots = {r["setting"].split(",")[0]: r["objects/s"] for r in table if r["way"].startswith("executors")}
    if len(args.slots) > 1 and f"local[{args.slots[0]}]" in by_slots:
        first, last = by_slots[f"local[{args.slots[0]}]"], by_slots[f"local[{args.slots[-1]}]"]
        ratio = round(last / first, 2)
        print(f"\nexecutors: local[{args.slots[-1]}] / local[{args.slots[0]}] = {ratio}x objects/s (target >= 3x)")
        results.document["summary"] = {"scaling": ratio, "slots": [args.slots[0], args.slots[-1]]}
    results.write()


if __name__ == "__main__":
    main()
