"""The table's lease (glue_scripts/zfish_etl/lease.py) on a local disk and on S3 (moto's server), no Spark.

A second writer is refused naming the holder (its run, host and pid), or waits for it; a holder
SIGKILLed frees the table at once on its host; an S3 lease of another host binds until it
expires and is taken over then; a writer whose lease was taken over stops before its next commit;
and writers racing in threads never hold it two at a time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from glue_scripts.zfish_etl import aws, lease
from glue_scripts.zfish_etl.lease import Holder, LeaseLost, TableBusy, hold
from zfish_assets_tests.support.moto import REGION

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "zfish-lease-test"
HOLDER_CODE = """
import sys, time
from glue_scripts.zfish_etl.lease import hold
with hold(sys.argv[1], "run-of-the-child:joined_fish_data", 0):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture(params=["local", "s3"])
def table(request, tmp_path, monkeypatch) -> Iterator[str]:
    """A table path on each store: a local folder, or a key in a fresh bucket of moto's server."""
    if request.param == "local":
        yield f"file://{tmp_path}/processed/joined_fish_data"
        return
    import boto3

    url = request.getfixturevalue("moto_url")
    for name, value in {"AWS_ENDPOINT_URL": url, "AWS_DEFAULT_REGION": REGION,
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    aws.use_endpoint(url, REGION)
    s3 = boto3.client("s3", endpoint_url=url, region_name=REGION)
    bucket = f"{BUCKET}-{os.getpid()}-{time.monotonic_ns()}"
    s3.create_bucket(Bucket=bucket)
    yield f"s3a://{bucket}/use-cases/fish-demo/processed/joined_fish_data"
    aws.use_endpoint("", "")


def holding_child(table: str) -> subprocess.Popen:
    """Another process holding the table's lease (as a job would), once it has said so."""
    child = subprocess.Popen([sys.executable, "-c", HOLDER_CODE, table], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_frees_the_table(table):
    child = holding_child(table)
    try:
        started = time.monotonic()
        with pytest.raises(TableBusy) as refused:
            with hold(table, "run-two:joined_fish_data", wait_s=1.0, log=lambda _: None):
                raise AssertionError("two writers held the table")
        assert 1.0 <= time.monotonic() - started < 10
        message = str(refused.value)
        for named in ("run run-of-the-child:joined_fish_data", f"host {socket.gethostname()}", f"pid {child.pid}",
                      table):
            assert named in message, message
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    started = time.monotonic()
    with hold(table, "run-three", wait_s=0):
        assert time.monotonic() - started < 5  # no expiry to wait out: the holder's process is gone


def test_a_waiting_writer_goes_on_when_the_holder_finishes_and_says_whom_it_waited_for(table):
    said: list[str] = []
    held, done = threading.Event(), threading.Event()

    def first() -> None:
        with hold(table, "run-one", wait_s=0):
            held.set()
            time.sleep(1.5)
        done.set()

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(10)
    with hold(table, "run-two", wait_s=30, log=said.append):
        assert done.is_set()
    thread.join()
    assert len(said) == 1 and "run run-one" in said[0] and "waiting up to 30 s" in said[0], said


def test_writers_racing_never_hold_the_table_two_at_a_time(table):
    holding, most, entered = [0], [0], []
    lock = threading.Lock()

    def writer(number: int) -> None:
        for turn in range(3):
            with hold(table, f"run-{number}-{turn}", wait_s=60, log=lambda _: None):
                with lock:
                    holding[0] += 1
                    most[0] = max(most[0], holding[0])
                    entered.append(number)
                time.sleep(0.05)
                with lock:
                    holding[0] -= 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert most[0] == 1 and len(entered) == 12


def put_lease(table: str, holder: Holder) -> None:
    bucket, _, key = table.removeprefix("s3a://").partition("/")
    aws.client("s3").put_object(Bucket=bucket, Key=key + lease.SUFFIX, Body=holder.to_bytes())


@pytest.mark.parametrize("table", ["s3"], indirect=True)
def test_an_s3_lease_of_another_host_binds_until_it_expires(table):
    elsewhere = replace(Holder.me("glue-run-jr_0123"), host="ip-10-0-0-1.glue.internal", pid=7)
    put_lease(table, replace(elsewhere, expires=time.time() + 60))
    with pytest.raises(TableBusy, match="run glue-run-jr_0123 .host ip-10-0-0-1.glue.internal, pid 7"):
        with hold(table, "run-two", wait_s=0):
            pass
    put_lease(table, replace(elsewhere, expires=time.time() - 1))
    with hold(table, "run-two", wait_s=0):
        pass


@pytest.mark.parametrize("table", ["s3"], indirect=True)
def test_a_writer_whose_s3_lease_was_taken_over_stops_before_its_next_commit(table, monkeypatch):
    monkeypatch.setattr(lease, "RENEW_EVERY_S", 0.2)
    with hold(table, "run-one", wait_s=0) as mine:
        mine.check()
        put_lease(table, replace(Holder.me("run-two"), host="elsewhere", expires=time.time() + 60))
        deadline = time.monotonic() + 10
        while mine.lost is None and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(LeaseLost, match="taken over by run run-two .host elsewhere"):
            mine.check()
