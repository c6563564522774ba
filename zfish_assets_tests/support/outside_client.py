"""Run by test_closed_engine inside a network namespace of its own (`unshare -n`): give loopback a
second, non-loopback address (10.200.0.1), start a warm engine bound to every interface, and
connect, with the secret, once from 10.200.0.1 and once from 127.0.0.1. Prints one JSON line.

Nothing outside the namespace can reach the server: the namespace has no link to the host.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from zfish_assets.backends import connect_guard, connect_server
from zfish_assets.backends.spark_session import SparkSettings, StaleEngineError, remote_session

OUTSIDE = "10.200.0.1"


def main(home: Path) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{OUTSIDE}/32", "dev", "lo"], check=True)
    spark_settings = replace(SparkSettings.from_env(), extra_conf=((connect_guard.BIND_CONF, "0.0.0.0"),))
    state = connect_server.start(home=home, spark_settings=spark_settings)
    try:
        with socket.create_connection((OUTSIDE, state.port)) as probe:
            peer = probe.getsockname()[0]  # the address the server sees for a client from OUTSIDE
        seen: dict[str, object] = {"peer": peer}
        try:
            spark = remote_session(state.url.replace("127.0.0.1", OUTSIDE))
            seen["outside"] = f"served {int(spark.range(7).count())} rows"
        except StaleEngineError as exc:
            seen["outside"] = str(exc)
        spark = remote_session(state.url)
        seen["loopback"] = int(spark.range(7).count())
        spark.stop()
        print(json.dumps(seen))
    finally:
        connect_server.stop(home)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
