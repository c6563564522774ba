"""`zfish dev` (what `make dev` runs, less the warm engine) listens on loopback only: Dagster's webserver, its
daemon and the code server it starts, with no host given (Dagster's defaults, which the UI has no login to
make up for). The warm engine's sockets are `backends/test_closed_engine.py`'s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from zfish_assets.settings import REPO_ROOT
from zfish_assets.backends.ports import socket_holders
from zfish_assets_tests.support.listening import descends_from, is_loopback, listening
from zfish_assets_tests.support.ports import free_port


def _sockets_of(root: int) -> list[str]:
    sockets = listening()
    return [sockets[inode] for inode, pid in socket_holders(set(sockets)).items() if descends_from(pid, root)]


def test_zfish_dev_listens_on_loopback_only(tmp_path):
    port = free_port()
    env = {**os.environ, "ZFISH_DATA_DIR": str(tmp_path / "zfish"), "ZFISH_DEPLOYMENT": "local", "ZFISH_SPARK_REMOTE": ""}
    with open(tmp_path / "dev.log", "wb") as log:
        dev = subprocess.Popen([str(Path(sys.executable).parent / "zfish"), "dev", "--", "-p", str(port)], cwd=REPO_ROOT,
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert dev.poll() is None and time.monotonic() < deadline, (tmp_path / "dev.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5).close()
                break
            except OSError:
                time.sleep(1)
        time.sleep(3)  # the daemon and the code server are up with the webserver: a moment for any late listener
        bound = _sockets_of(dev.pid)
        assert f"127.0.0.1:{port}" in bound and all(is_loopback(address) for address in bound), bound
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        dev.wait(60)
