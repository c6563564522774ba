"""Nothing zfish or its tests start listens beyond loopback: a Hudi write on the session's Spark (in
process, or the warm engine with `--spark-connect`), moto's server and the AWS proxy. Trino's server is
checked in `resources/test_trino.py` (its module starts it), the warm engine's own ports in
`test_closed_engine.py`; every test of the suite is watched as well (the conftest's `loopback_only`)."""

from __future__ import annotations

import socket
import urllib.request
from datetime import datetime, timezone

from glue_scripts.zfish_etl.hudi import upsert
from zfish_assets_tests.support.listening import Watch, is_loopback, listening


def test_the_watch_sees_a_socket_listening_on_every_interface(listen_watch):
    """The check below is not vacuous: a socket this process binds to every interface is reported (and taken
    from the session's watch, which may have seen it too, so that it fails no test)."""
    watch = Watch(interval_s=0.05).start()
    with socket.socket(socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET) as wide:
        wide.bind(("", 0))
        wide.listen()
        port = wide.getsockname()[1]
        watch.sample()
    watch.stop()
    assert [line for line in watch.found if line.split(" by ")[0].endswith(f":{port}")], watch.found
    assert all(line.split(" by ")[0].endswith(f":{port}") for line in listen_watch.unreported())


def test_a_hudi_write_listens_on_loopback_only(spark, tmp_path):
    """Hudi starts an HTTP server (its embedded timeline server) for each write on every interface unless told
    not to: the write's driver (this process's JVM, or the warm engine's) must open nothing beyond loopback."""
    schema = "image_id string, timestamp timestamp, day string"
    rows = [(f"img_{i}", datetime(2025, 5, 1, 9, i, tzinfo=timezone.utc), f"2025-05-0{1 + i % 2}") for i in range(6)]
    watch = Watch(interval_s=0.05).start()
    try:
        for _ in range(2):  # an insert, then an upsert that merges into the files the first wrote
            assert upsert(spark.createDataFrame(rows, schema), (tmp_path / "t").as_uri(), "t", "default") is not None
    finally:
        watch.stop()
    assert watch.found == []


def test_moto_and_the_aws_proxy_listen_on_loopback_only(proxy):
    for url in (proxy.url, proxy.upstream):
        port = int(url.rpartition(":")[2])
        bound = [address for address in listening().values() if address.endswith(f":{port}")]
        assert bound and all(is_loopback(address) for address in bound), (url, bound)
        urllib.request.urlopen(f"{url}/moto-api/", timeout=10).close()  # and each answers there
